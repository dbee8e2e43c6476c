"""Clicks in world coordinates to lesions on a study's label grid: :func:`delineate`.

Each positive click grows one lesion with a PET rule (:mod:`napari_hnc.pet.seed`)
from the PET values around it only: the box around the click starts small and
grows while the lesion touches its sides, up to the bound, so a click costs the
same on a 512x512x150 CT as on a small crop.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict
from typing import Any, Iterable

import numpy as np

from ..clicks import Click, as_clicks
from ..errors import ClickError, GeometryError, HncWarning
from ..geometry import Volume
from ..io.nifti import as_label_array
from .components import lesion_at
from .grow import Index
from .params import SeedParams
from .sampling import PetSampler, pet_sampler
from .seed import SeedResult, seed_region
from .thresholds import ball_window

log = logging.getLogger(__name__)

#: Radius (mm) of the first box read around a click; it doubles while the lesion touches its sides.
START_RADIUS_MM = 20.0


def delineate(study, clicks: Iterable[Any], method: str = "percent", *, labels: Any = None, **params: Any) -> Volume:
    """Delineate the lesions under clicks with a PET rule; labels on the study's label grid.

    Parameters
    ----------
    study : napari_hnc.Study
        Needs a PET (in SUV); the labels go on the CT grid, or the PET grid for a PET-only study.
    clicks : iterable of Click, "x,y,z[:primary|node][:neg]" or (x, y, z)
        World RAS+ millimetres. A positive click adds the lesion under it with the
        click's class (it wins over labels already there); a negative click removes
        the lesion (connected component of one class) it lies in.
    method : {"percent", "fixed", "adaptive", "grow"}
        The PET rule; see :mod:`napari_hnc.pet.params`.
    labels : Volume or numpy.ndarray, optional
        Labels on the label grid to add the lesions to (a copy; they are kept
        elsewhere). Pass ``study.labels`` to edit the study's labels; default: empty.
    **params
        The rule's parameters: ``percent=41``, ``threshold=2.5``, ``fraction=0.5``,
        ``shell_mm=(10, 20)``, ``lower=2.5``, ``upper=inf``, ``snap_mm=7``,
        ``max_radius_mm=50``, ``min_suv=2``.

    Returns
    -------
    Volume
        uint8 labels (1 primary tumour, 2 lymph node) on ``study.grid``.

    Raises
    ------
    ClickError
        A click outside the image or the PET, or on a region with no uptake.

    Examples
    --------
    A PET-only study with a 12 mm hot cube (labels go on the PET grid):

    >>> import numpy as np
    >>> from napari_hnc import Click, Study, Volume
    >>> pet = np.full((30, 30, 30), 1.0, np.float32)
    >>> pet[10:16, 10:16, 10:16] = 8.0
    >>> study = Study(ct=None, pet=Volume(pet, np.diag([2.0, 2.0, 2.0, 1.0])))
    >>> labels = delineate(study, [Click((26.0, 26.0, 26.0), label=2)], method="percent")
    >>> int((labels.array == 2).sum()), labels.array.dtype.name
    (216, 'uint8')

    On files, with the click's class in the text::

        study = napari_hnc.load_study("CHUM-001__CT.nii.gz")
        labels = napari_hnc.delineate(study, ["12.5,-30,4:node"], method="adaptive")
        napari_hnc.save_labels(labels, study.grid, "CHUM-001.nii.gz")
    """
    config = SeedParams.create(method, **params)
    clicks = as_clicks(clicks)
    grid = study.grid
    out = _start_labels(grid, labels)
    sampler = pet_sampler(study)
    for click in (c for c in clicks if c.positive):
        index = click_index(study, click)
        result, box = lesion_from_click(sampler, index, config)
        if result.hit_bound:
            warnings.warn(result.bound_warning(config.max_radius_mm), HncWarning, stacklevel=2)
        out[box][result.mask] = click.label
    for click in (c for c in clicks if not c.positive):
        _remove_at(out, grid.world_to_index(click.world, what="negative click"), click)
    meta = {"method": config.method, "params": asdict(config), "clicks": [c.world for c in clicks]}
    return grid.with_array(out, role="labels", path=None, delineation=meta)


def lesion_from_click(sampler: PetSampler, index: Index, params: SeedParams) -> tuple[SeedResult, tuple[slice, ...]]:
    """The lesion grown from voxel ``index`` of the sampler's grid, reading as little PET as needed.

    Returns the result, whose mask and indices refer to the box of the grid it
    was computed in, and that box.
    """
    spacing = tuple(float(s) for s in sampler.spacing)
    radius = min(params.max_radius_mm, max(START_RADIUS_MM, 2.0 * params.snap_mm))
    while True:
        box = ball_window(sampler.shape, index, spacing, radius + params.margin_mm)
        local = tuple(i - b.start for i, b in zip(index, box))
        full = radius >= params.max_radius_mm
        try:
            result = seed_region(sampler.box(box), local, spacing, params)
        except ClickError:
            if full:
                raise
        else:
            if full or not _needs_more(result, box, sampler.shape, spacing, params.margin_mm):
                return result, box
        radius = min(params.max_radius_mm, 2.0 * radius)


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


def _start_labels(grid: Volume, labels: Any) -> np.ndarray:
    if labels is None:
        return np.zeros(grid.shape, np.uint8)
    if isinstance(labels, Volume):
        if not labels.same_grid(grid):
            raise GeometryError(
                f"the labels (shape {labels.shape}) are not on the study's label grid {grid.shape}; "
                "resample them first: napari_hnc.resample_to(labels, study.grid, 'nearest')"
            )
        labels = labels.array
    array = np.asarray(labels)
    if array.shape != grid.shape:
        raise GeometryError(f"labels of shape {array.shape} do not fit the label grid {grid.shape}")
    return np.array(as_label_array(array), copy=True)


def _remove_at(out: np.ndarray, index: Index, click: Click) -> None:
    mask = lesion_at(out, index)
    if not mask.any():
        warnings.warn(
            f"the negative click at world RAS {np.round(click.world, 1).tolist()} mm lies on no lesion; "
            "it was ignored (click inside the lesion to remove)",
            HncWarning,
            stacklevel=3,
        )
        return
    log.info("negative click removed a lesion of %d voxels", int(mask.sum()))
    out[mask] = 0
