"""Clicks in world coordinates to lesions on a study's label grid: :func:`delineate`.

Each positive click grows one lesion with a PET rule (:mod:`napari_hnc.pet.seed`)
from the PET values around it only: the box around the click starts small and
grows while the lesion touches its sides, as far as the lesion goes (up to a
safety bound), so a click costs the same on a 512x512x150 CT as on a small crop.
What each click may change follows the rules of :mod:`napari_hnc.annotation`:
a click inside a lesion refines it (its class kept), a click elsewhere starts a
new lesion, no lesion takes another's voxels, and click lesions that touch share
their boundary along the PET watershed between their peaks, whatever the order
of the clicks.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import replace
from typing import Any, Iterable, Sequence

import numpy as np

from ..annotation import Annotation, Change, Claim, labelled_box
from ..clicks import Click, as_clicks
from ..conventions import NODE
from ..errors import ClickError, GeometryError, HncWarning
from ..geometry import Volume
from ..io.nifti import as_label_array
from .edge import analysis_stride
from .grow import Index
from .params import COLD_CENTRE_REACH_MM, SeedParams
from .peaks import find_peak
from .sampling import PetSampler, pet_sampler
from .seed import SeedResult, seed_region
from .thresholds import ball_window

log = logging.getLogger(__name__)

#: Radius (mm) of the first box read around a click; it doubles while the lesion touches its sides.
START_RADIUS_MM = 20.0
#: Smoothing (mm) and slope ratio at which an edge lies between a click and the peak it snapped to (:func:`edge_between`).
EDGE_SIGMA_MM = 2.0
EDGE_RATIO = 2.0


def delineate(study, clicks: Iterable[Any], method: str | None = None, *, labels: Any = None,
              set_class: Iterable[Any] = (), **params: Any) -> Volume:
    """Delineate the lesions under clicks with a PET rule; labels (and lesion instances) on the study's label grid.

    Parameters
    ----------
    study : napari_hnc.Study
        Needs a PET (in SUV); the labels go on the CT grid, or the PET grid for a PET-only study.
    clicks : iterable of Click, "x,y,z[:primary|node][:neg]" or (x, y, z)
        World RAS+ millimetres; give one positive click per lesion, at its
        centre. Each makes one lesion of the click's class; lesions made by these
        clicks that touch share their boundary along the PET watershed between
        their peaks and clicks, so the order of the clicks does not matter. A
        click inside a lesion of ``labels`` refines it and keeps its class (or,
        at a second, separate PET peak of it, divides it); no click takes voxels
        of a lesion of ``labels`` otherwise. A negative click removes the part of
        the lesion it lies in.
    method : {"edge", "percent", "fixed", "adaptive", "grow"}, optional
        The PET rule; default ``"edge"`` (see :mod:`napari_hnc.pet.params`).
    labels : Volume or numpy.ndarray, optional
        Labels on the label grid to add the lesions to (a copy; they are kept
        elsewhere). Pass ``study.labels`` to edit the study's labels (its lesion
        instances come along when it has them); default: empty.
    set_class : iterable of Click or "x,y,z:primary|node"
        After the clicks, give the lesion at each of these points the class named
        (the one way to change a lesion's class).
    **params
        The rule's parameters: ``inner=0.4``, ``outer=0.1``, ``percent=41``,
        ``threshold=2.5``, ``fraction=0.5``, ``shell_mm=(10, 20)``,
        ``multiplier=2.5``, ``lower``, ``upper``, ``snap_mm=7``,
        ``max_radius_mm=200``, ``min_suv=2``, ``fill_holes=True``.

    Returns
    -------
    Volume
        uint8 labels (1 primary tumour, 2 lymph node) on ``study.grid``; its
        ``metadata["instances"]`` (uint16) tells the lesion instances apart and
        ``metadata["provenance"]`` says how each was made. :func:`napari_hnc.save_labels`
        writes both beside the labels, :func:`napari_hnc.quantify` reports per instance.

    Raises
    ------
    ClickError
        A click outside the image or the PET, or on a region with no uptake;
        the message names the click.

    Examples
    --------
    A PET-only study with a 12 mm hot cube (labels go on the PET grid):

    >>> import numpy as np
    >>> from napari_hnc import Click, Study, Volume
    >>> pet = np.full((30, 30, 30), 1.0, np.float32)
    >>> pet[10:16, 10:16, 10:16] = 8.0
    >>> study = Study(ct=None, pet=Volume(pet, np.diag([2.0, 2.0, 2.0, 1.0])))
    >>> labels = delineate(study, [Click((26.0, 26.0, 26.0), label=2)], method="percent")
    >>> int((labels.array == 2).sum()), labels.array.dtype.name, int(labels.metadata["instances"].max())
    (216, 'uint8', 1)

    On files, with the click's class in the text::

        study = napari_hnc.load_study("CHUM-001__CT.nii.gz")
        labels = napari_hnc.delineate(study, ["12.5,-30,4:primary", "40,-22,-10:node"])
        napari_hnc.save_labels(labels, study.grid, "CHUM-001.nii.gz")   # + CHUM-001_instances.nii.gz
    """
    config = SeedParams.create(method, **params)
    clicks = as_clicks(clicks)
    grid = study.grid
    annotation = start_annotation(grid, labels)
    sampler = pet_sampler(study)
    made: set[int] = set()  # one lesion per positive click of this call: they share boundaries, none absorbs another
    for number, click in sorted(enumerate(clicks, start=1), key=lambda item: not item[1].positive):
        try:
            done = apply_click(annotation, sampler, click_index(study, click), click, config, apart=made)
            if done is not None and click.positive:
                made.add(done[1])
        except ClickError as exc:
            raise ClickError(f"click {number} of {len(clicks)} ({describe_click(click)}): {exc}") from None
    for click in as_clicks(set_class):
        lesion = annotation.lesion_at(grid.world_to_index(click.world, what="class change"))
        if not lesion:
            raise ClickError(f"no lesion at {describe_click(click)} to change the class of; point inside a lesion")
        annotation.set_class(lesion, click.label, event={"action": "class", "to": click.label,
                                                         "world_mm": _world(click)})
    meta = {"method": config.method, "params": config.describe(), "clicks": [c.world for c in clicks]}
    return annotated_volume(grid, annotation, delineation=meta)


def annotated_volume(grid: Volume, annotation: Annotation, **metadata: Any) -> Volume:
    """The annotation's labels as a Volume on ``grid``, carrying its instances and provenance."""
    return grid.with_array(annotation.labels, role="labels", path=None, instances=annotation.instances,
                           provenance=annotation.provenance(), **metadata)


def start_annotation(grid: Volume, labels: Any) -> Annotation:
    """An annotation on ``grid`` from existing labels (a Volume with or without instances, or an array), copied."""
    if labels is None:
        return Annotation.empty(grid.shape)
    instances = records = None
    if isinstance(labels, Volume):
        if not labels.same_grid(grid):
            raise GeometryError(
                f"the labels (shape {labels.shape}) are not on the study's label grid {grid.shape}; "
                "resample them first: napari_hnc.resample_to(labels, study.grid, 'nearest')"
            )
        instances = labels.metadata.get("instances")
        records = (labels.metadata.get("provenance") or {}).get("lesions")
        labels = labels.array
    array = np.asarray(labels)
    if array.shape != grid.shape:
        raise GeometryError(f"labels of shape {array.shape} do not fit the label grid {grid.shape}")
    array = np.asarray(as_label_array(array), dtype=np.uint8)
    copied = np.zeros(grid.shape, np.uint8)  # only the box that holds labels is copied (and its pages touched)
    box = labelled_box(array)
    if box is not None:
        copied[box] = array[box]
    return Annotation(copied, instances, records, box=box)  # it reads the instances into its own map


def apply_click(annotation: Annotation, sampler: PetSampler, index: Index, click: Click, params: SeedParams, *,
                lesion: int | None = None, apart: Iterable[int] = (), fresh: bool = False) -> tuple[Change, int] | None:
    """One click with a PET rule, by the rules of :mod:`napari_hnc.annotation`: the change and the lesion's id, or None.

    A positive click on one of the lesions ``apart`` (made by other clicks of the
    same call) starts a lesion of its own, which shares its boundary with that one.
    So does a ``fresh`` click (one meant to start the next lesion) on the cooler
    fringe of a click lesion (:meth:`Annotation.decide`).
    Raises :class:`ClickError` when the click makes nothing (no uptake, or all of
    its region belongs to other lesions); the annotation is then unchanged.
    """
    event = {"action": "click", "world_mm": _world(click), "positive": click.positive,
             "class": click.label, **params.describe()}
    if not click.positive:
        action, owner = annotation.decide(index, False, lesion=lesion)
        if owner is None:
            warnings.warn(f"the negative click at {describe_click(click)} lies on no lesion; it was ignored "
                          "(click inside the lesion to remove from it)", HncWarning, stacklevel=3)
            return None
        return annotation.remove_part(owner, index, event=event), owner
    barrier = FixedLesionsAsNoPet(sampler, annotation, keep=lesion or annotation.lesion_at(index))
    result, box = lesion_from_click(barrier, index, params)
    if result.hit_bound:
        warnings.warn(result.bound_warning(params.max_radius_mm), HncWarning, stacklevel=3)
    claim = claim_of(result, box)
    action, owner = annotation.decide(index, True, peak=claim.peak, lesion=lesion, pet=sampler, fresh=fresh,
                                      label=click.label)
    if lesion is None and owner in set(apart):
        action, owner = "new", None
    return place_claim(annotation, action, owner, claim, click.label, sampler, event, merge=True, seed=index)


class FixedLesionsAsNoPet:
    """A PET sampler that shows no PET (NaN) on the voxels of fixed lesions, other than ``keep``.

    A click's region never reaches into, or through, a lesion that keeps its voxels
    (loaded, proposed, edited by hand, locked): those are negative context.
    Lesions made by clicks are not barriers: they share boundaries along the PET
    watershed instead, so the result does not depend on the order of the clicks.
    """

    def __init__(self, sampler: PetSampler, annotation: Annotation, keep: int | None = None) -> None:
        self.sampler, self.shape, self.spacing = sampler, sampler.shape, sampler.spacing
        fixed = [r.id for r in annotation.records() if not r.shares_boundary and r.id != keep]
        self._lookup = np.zeros(max(fixed, default=0) + 1, bool)
        self._lookup[fixed] = True
        self._instances = annotation.instances

    def box(self, box: Sequence[slice]) -> np.ndarray:
        values = self.sampler.box(box)
        if len(self._lookup) == 1:
            return values
        ids = self._instances[tuple(box)]
        blocked = self._lookup[np.minimum(ids, len(self._lookup) - 1)] & (ids < len(self._lookup))
        return np.where(blocked, np.float32(np.nan), values) if blocked.any() else values


def place_claim(annotation: Annotation, action: str, owner: int | None, claim: Claim, label: int, pet,
                event: dict, *, merge: bool, seed: Index | None = None) -> tuple[Change, int]:
    """Give a click's claim to a new, refined or divided lesion: the change and the lesion's id.

    :class:`ClickError` (nothing changed) when the lesion gets no voxel.
    """
    if action == "refine":
        lesion_id = owner
        change = annotation.place(owner, claim, pet, event=event, merge=merge, seed=seed)  # type: ignore[arg-type]
    else:
        record = annotation.new_lesion(label, origin="click", event=event)
        lesion_id = record.id
        if action == "divide":
            change = annotation.divide(owner, record.id, claim, pet, seed=seed)  # type: ignore[arg-type]
        else:
            change = annotation.place(record.id, claim, pet, seed=seed)
    if lesion_id not in annotation or annotation.record(lesion_id).box is None:
        annotation.undo(change)
        raise ClickError("every voxel of the lesion at the click already belongs to other lesions; "
                         "click on a part that is not labelled, or remove the lesion there first")
    return change, lesion_id  # type: ignore[return-value]


def claim_of(result: SeedResult, box: tuple[slice, ...]) -> Claim:
    """A PET rule's result as a claim on the label grid; its peak is where the lesion grew from (the click's peak)."""
    from .grow import bounding_slices

    start = result.start if result.start is not None else result.peak
    peak = tuple(int(b.start + v) for b, v in zip(box, start))
    tight = bounding_slices(result.mask) or tuple(slice(v - b.start, v - b.start + 1) for v, b in zip(peak, box))
    region = tuple(slice(b.start + t.start, b.start + t.stop) for b, t in zip(box, tight))
    return Claim(region, result.mask[tight], peak)  # type: ignore[arg-type]


def lesion_from_click(sampler: PetSampler, index: Index, params: SeedParams) -> tuple[SeedResult, tuple[slice, ...]]:
    """The lesion grown from voxel ``index`` of the sampler's grid, reading as little PET as needed.

    Returns the result, whose mask and indices refer to the box of the grid it
    was computed in, and that box.
    """
    peak, enclosed = _click_peak(sampler, index, params)
    result, box = _grow_from(sampler, index, peak, enclosed, params)
    local = tuple(i - b.start for i, b in zip(index, box))
    if (peak != tuple(index) and not enclosed and params.snap_mm > 0 and not result.mask[local]
            and edge_between(sampler, index, peak)):
        # The snap climbed over an edge out of the clicked structure (a cooler node on
        # the slope of a hotter lesion): when the click has uptake, its lesion grows from
        # the click. A click on the blurred rim of a lesion (on its edge) keeps that lesion.
        unsnapped = replace(params, snap_mm=0.0)
        try:
            own, own_enclosed = _click_peak(sampler, index, unsnapped)
        except ClickError:
            return result, box
        again, again_box = _grow_from(sampler, index, own, own_enclosed, unsnapped)
        if again.mask[tuple(i - b.start for i, b in zip(index, again_box))]:
            return again, again_box
    return result, box


def edge_between(sampler: PetSampler, click: Index, peak: Index, sigma_mm: float = EDGE_SIGMA_MM,
                 ratio: float = EDGE_RATIO) -> bool:
    """Whether a PET edge lies between ``click`` and ``peak``: the slope on the way rises to ``ratio`` x the click's.

    A click on the blurred rim of a lesion is on its edge already (its slope is
    near the steepest). A cooler node on the slope of a hotter lesion is flat
    compared with the hotter lesion's edge, which lies between it and the peak the
    snap climbed to.
    """
    from scipy import ndimage

    spacing = tuple(float(s) for s in sampler.spacing)
    pad = [int(math.ceil(3.0 * sigma_mm / s)) + 1 for s in spacing]
    window = tuple(slice(max(min(c, p) - k, 0), min(max(c, p) + k + 1, n))
                   for c, p, k, n in zip(click, peak, pad, sampler.shape))
    values = np.nan_to_num(np.asarray(sampler.box(window), np.float64), nan=0.0)
    slope = ndimage.gaussian_gradient_magnitude(values, [sigma_mm / s for s in spacing], mode="nearest")
    start = np.asarray([c - w.start for c, w in zip(click, window)], float)
    end = np.asarray([p - w.start for p, w in zip(peak, window)], float)
    steps = int(np.abs(end - start).max() * 2) + 1
    path = np.rint(start + np.linspace(0.0, 1.0, steps + 1)[:, None] * (end - start)).astype(int)
    along = slope[tuple(path.T)]
    return bool(along.max() >= ratio * max(float(along[0]), 1e-6))


def _grow_from(sampler: PetSampler, index: Index, peak: Index, enclosed: bool,
               params: SeedParams) -> tuple[SeedResult, tuple[slice, ...]]:
    """The rule's region from ``peak`` in a box around the click that grows until the lesion fits."""
    spacing = tuple(float(s) for s in sampler.spacing)
    away = math.sqrt(sum(((p - i) * s) ** 2 for p, i, s in zip(peak, index, spacing)))
    radius = min(params.max_radius_mm, max(START_RADIUS_MM, 2.0 * params.snap_mm, away + 10.0))
    while True:
        box = _aligned(ball_window(sampler.shape, index, spacing, radius + params.margin_mm), analysis_stride(spacing))
        local = tuple(i - b.start for i, b in zip(index, box))
        local_peak = tuple(p - b.start for p, b in zip(peak, box))
        full = radius >= params.max_radius_mm
        result = seed_region(sampler.box(box), local, spacing, params, peak=local_peak, enclosed=enclosed)
        if full or not _needs_more(result, box, sampler.shape, spacing, params.margin_mm):
            return result, box
        radius = min(params.max_radius_mm, 2.0 * radius)


def _aligned(box: tuple[slice, ...], stride: Sequence[int]) -> tuple[slice, ...]:
    """``box`` started on a multiple of ``stride`` (so a rule thinning the grid sees the same voxels in any box)."""
    return tuple(slice(b.start - b.start % k, b.stop) for b, k in zip(box, stride))


def _click_peak(sampler: PetSampler, index: Index, params: SeedParams) -> tuple[Index, bool]:
    """Where the click's lesion starts (grid index) and whether the click lay in its cold centre."""
    spacing = tuple(float(s) for s in sampler.spacing)
    reaches = (params.snap_mm + 2.0 * max(spacing), COLD_CENTRE_REACH_MM + 2.0 * max(spacing))
    for number, reach in enumerate(reaches):
        box = ball_window(sampler.shape, index, spacing, reach)
        local = tuple(i - b.start for i, b in zip(index, box))
        try:
            peak, enclosed = find_peak(sampler.box(box), local, spacing, params)  # type: ignore[arg-type]
        except ClickError:
            if number == len(reaches) - 1:
                raise
            continue
        return tuple(int(p + b.start) for p, b in zip(peak, box)), enclosed  # type: ignore[return-value]
    raise AssertionError("unreachable")


def _needs_more(result: SeedResult, box, shape, spacing, margin_mm: float) -> bool:
    """True when the lesion (plus the margin the rule reads) reaches a side of the box inside the image."""
    from .grow import bounding_slices

    extent = bounding_slices(result.mask)
    if extent is None:
        return False
    for e, b, n, s in zip(extent, box, shape, spacing):
        pad = int(math.ceil(margin_mm / s))
        length = b.stop - b.start
        if (b.start > 0 and e.start - pad <= 0) or (b.stop < n and e.stop + pad >= length):
            return True
    return False


def click_index(study, click: Click) -> Index:
    """The label-grid voxel of a click; :class:`ClickError` outside the image or the PET."""
    index = study.grid.world_to_index(click.world, what="click")
    pet = study.pet
    if pet is not None:
        voxel = pet.world_to_voxel(click.world)
        if np.any(voxel < -0.5) or np.any(voxel > np.asarray(pet.shape) - 0.5):
            lo, hi = pet.world_bounds()
            raise ClickError(
                f"the click at world RAS {np.round(click.world, 1).tolist()} mm lies outside the PET's field of "
                f"view ({np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm); click where the PET has values"
            )
    return index


def describe_click(click: Click) -> str:
    """A click as a user writes it: ``x,y,z:class[:neg]`` (world RAS mm)."""
    xyz = ",".join(f"{v:.1f}" for v in click.world)
    if not click.positive:
        return f"{xyz}:neg"
    return f"{xyz}:{'node' if click.label == NODE else 'primary'}"


def _world(click: Click) -> list[float]:
    return [round(float(v), 2) for v in click.world]
