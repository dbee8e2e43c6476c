"""What proposes a lesion's mask from its clicks: a click-guided network, or the PET threshold tools
(:mod:`napari_hnc.pet`) when no click-guided model is installed.

Both engines work on a :class:`~.roi.Roi` and return a boolean mask on the
ROI's label voxels; the session decides what is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np
import torch
from scipy import ndimage

from ..errors import ModelError, StudyError
from ..models.card import ModelCard
from ..models.weights_io import Model
from ..pet import SeedParams
from ..pet.grow import cavity_structures, fill_enclosed
from ..study import Study
from .device import DeviceConfig, run_with_fallback
from .encoding import click_map
from .ensemble import EnsemblePredictor
from .growth import GROWTH_OVERLAP, growth_step, plan_growth, touching_sides
from .preprocess import PetStats, image_channels, require_images, stack_inputs
from .roi import Roi, grown, roi_around, room
from .sliding_window import WindowConfig, sliding_window

log = logging.getLogger(__name__)

_FULL = np.ones((3, 3, 3), bool)
#: The part of the region's side a lesion may span before the model sees it at a coarser spacing.
FILL = 0.5
#: The most the model's spacing is coarsened for a large lesion (the bundled click model: 2 mm -> 4 mm).
MAX_ZOOM = 2.0


def zoom_for(card: ModelCard, extent_mm: Sequence[float], max_region_mm: float) -> float:
    """How many times the card's spacing a lesion of ``extent_mm`` is seen at (1: the card's own).

    A lesion spanning more than ``FILL`` of the region's side is seen coarser, up to ``MAX_ZOOM`` and
    within ``max_region_mm``; the click engine and the click model's training samples both use this.
    """
    spacing, patch = np.asarray(card.spacing_mm, float), np.asarray(card.patch_size, float)
    zoom = float(np.max(np.asarray(extent_mm, float) / (FILL * spacing * patch)))
    most = float(np.min(max_region_mm / (spacing * patch)))
    return max(1.0, min(zoom, most, MAX_ZOOM))


@dataclass
class LesionState:
    """What an engine knows about the lesion being refined (owned by the session)."""

    label: int
    roi: Roi
    mask: np.ndarray  # bool, ROI shape: this lesion's voxels
    clicks: list[tuple[tuple[int, int, int], bool]] = field(default_factory=list)  # ROI index, positive
    painted: np.ndarray | None = None  # bool, user strokes that add to the lesion
    erased: np.ndarray | None = None  # bool, user strokes that remove from it
    cache: dict[str, Any] = field(default_factory=dict)
    protected: np.ndarray | None = None  # bool, ROI shape: voxels it had from elsewhere (a positive click keeps them)

    def move_to(self, roi: Roi) -> None:
        """Carry the lesion over to ``roi``, a larger region holding the current one (the region grew)."""
        offset = self.roi.start - roi.start
        inner = tuple(slice(int(o), int(o) + n) for o, n in zip(offset, self.roi.shape))
        if np.any(offset < 0) or any(s.stop > n for s, n in zip(inner, roi.shape)):
            raise ValueError("a lesion's region can only grow: the new one must hold the old one")

        def embed(values: np.ndarray | None) -> np.ndarray | None:
            if values is None:
                return None
            out = np.zeros(roi.shape, values.dtype)
            out[inner] = values
            return out

        self.mask, self.painted, self.erased = embed(self.mask), embed(self.painted), embed(self.erased)
        self.protected = embed(self.protected)
        self.clicks = [(tuple(int(c) + int(o) for c, o in zip(point, offset)), positive)  # type: ignore[misc]
                       for point, positive in self.clicks]
        if self.cache.get("initial") is not None:
            self.cache["initial"] = embed(self.cache["initial"])
        if "peak" in self.cache:
            self.cache["peak"] = tuple(int(c) + int(o) for c, o in zip(self.cache["peak"], offset))
        kept = self.cache.pop("foreground", None)
        self.cache.pop("images", None)
        if kept is not None:  # the last pass's lesion on the new model grid (same spacing and axes)
            start = np.rint(np.linalg.solve(roi.grid.affine, self.roi.grid.affine[:, 3])[:3]).astype(int)
            previous = np.zeros(roi.grid.shape, bool)
            previous[tuple(slice(int(a), int(a) + n) for a, n in zip(start, kept.shape))] = kept
            self.cache["previous"] = previous
        self.roi = roi


class Engine(Protocol):
    name: str

    def check_study(self, study: Study) -> None: ...


class ModelEngine:
    """A click-guided network: inputs CT, PET, positive/negative click maps and the previous mask."""

    def __init__(self, model: Model, config: DeviceConfig, *, keep_clicked_only: bool = True,
                 max_region_mm: float | None = None, zoom_out: bool = True) -> None:
        if not model.card.is_click_guided:
            raise ModelError(
                f"model {model.card.name!r} is not click-guided (inputs {list(model.card.inputs)}); use a card whose "
                "inputs include positive_clicks, negative_clicks and previous_mask, or model=None for PET thresholds"
            )
        self.model, self.config, self.keep_clicked_only = model, config, keep_clicked_only
        self.zoom_out = zoom_out
        self.max_region_mm = float(max_region_mm if max_region_mm is not None else model.card.max_region_mm)
        if not self.max_region_mm > 0:
            raise ModelError(f"max_region_mm must be positive, got {max_region_mm}")
        self.name = f"model {model.card.name}"
        self._stats: dict[int, PetStats] = {}
        config.activate()
        model.to(config.device)

    def check_study(self, study: Study) -> None:
        require_images(study, self.model.card)

    def roi_for(self, study: Study, world: np.ndarray, extent_mm: Sequence[float] | None = None) -> Roi:
        """The region around a click: the card's patch at the card's spacing, or coarser for a large lesion.

        ``extent_mm`` is the lesion's expected size (e.g. the PET rule's lesion from the click). When it
        exceeds ``FILL`` of the region's side, the model sees the region at a coarser spacing (the same
        patch of voxels over more millimetres, up to the bound), so the lesion takes about the part of
        the patch that the lesions it was trained on took.
        """
        card = self.model.card
        return roi_around(study.grid, world, self.spacing_for(extent_mm), card.patch_size)

    def spacing_for(self, extent_mm: Sequence[float] | None) -> tuple[float, float, float]:
        """The model grid's spacing for a lesion of ``extent_mm``: the card's unless the lesion is large."""
        card = self.model.card
        if extent_mm is None or not self.zoom_out:
            return tuple(card.spacing_mm)  # type: ignore[return-value]
        zoom = self.zoom(extent_mm)
        if zoom <= 1.0:
            return tuple(card.spacing_mm)  # type: ignore[return-value]
        return tuple(float(v) for v in np.asarray(card.spacing_mm, float) * zoom)  # type: ignore[return-value]

    def zoom(self, extent_mm: Sequence[float]) -> float:
        """How many times the card's spacing a lesion of ``extent_mm`` is seen at (:func:`zoom_for`; 1: not coarser)."""
        return zoom_for(self.model.card, extent_mm, self.max_region_mm)

    def zoomed(self, roi: Roi) -> bool:
        """Whether ``roi``'s model grid is coarser than the card's spacing (a lesion seen zoomed out)."""
        return bool(np.any(np.asarray(roi.grid.spacing) > np.asarray(self.model.card.spacing_mm) * (1 + 1e-6)))

    def _images(self, study: Study, lesion: LesionState) -> dict[str, np.ndarray]:
        if "images" not in lesion.cache:
            card = self.model.card
            stats = None
            if study.pet is not None and "pet" in card.inputs:
                stats = self._stats.setdefault(id(study.pet), PetStats.of(study.pet))
            lesion.cache["images"] = image_channels(study, card, lesion.roi.grid, stats)
        return lesion.cache["images"]

    def _guidance(self, lesion: LesionState) -> dict[str, np.ndarray]:
        roi, card = lesion.roi, self.model.card
        points = {True: [c for c, p in lesion.clicks if p], False: [c for c, p in lesion.clicks if not p]}
        for strokes, positive in ((lesion.painted, True), (lesion.erased, False)):
            if strokes is not None and strokes.any():
                points[positive] = points[positive] + [tuple(v) for v in _thin(np.argwhere(strokes))]
        spacing = roi.grid.spacing
        maps = {
            name: click_map(roi.grid.shape, spacing, roi.to_model(np.array(points[positive], float)), card.click_encoding)
            for name, positive in (("positive_clicks", True), ("negative_clicks", False))
        }
        maps["previous_mask"] = roi.mask_to_model(lesion.mask)
        return maps

    def propose(self, study: Study, lesion: LesionState) -> np.ndarray:
        """The lesion's mask on its ROI (label grid), from one pass over its region.

        A region of the card's patch size is one forward pass; a grown one is a
        Gaussian-blended sliding window of patch-size tiles. The lesion on the model
        grid is kept in ``lesion.cache["foreground"]`` for :meth:`grow`.
        """
        card = self.model.card
        inputs = stack_inputs(card, {**self._images(study, lesion), **self._guidance(lesion)})
        divisor = self.model.divisor
        if any(s % divisor for s in card.patch_size):
            raise ModelError(f"model {card.name!r}: patch_size {card.patch_size} is not a multiple of {divisor}")
        nets = self.networks_for(lesion)
        if tuple(inputs.shape[1:]) == tuple(card.patch_size):
            foreground = run_with_fallback(lambda device, _: self._forward(nets, torch.from_numpy(inputs)[None], device),
                                           self.config.device, 1)
        else:
            foreground = run_with_fallback(
                lambda device, batch: self._window(nets, torch.from_numpy(inputs), device, batch), self.config.device, 2)
        if self.keep_clicked_only:
            foreground = _keep_clicked(foreground, lesion)
        lesion.cache["foreground"] = foreground > 0.5
        return lesion.roi.to_label(foreground) > 0.5

    def networks_for(self, lesion: LesionState) -> list:
        """The networks that draw ``lesion``: the card's ``zoomed_weights``, when it has them, for a lesion
        known to be large (``lesion.cache["large"]``, set by the session) on a region seen coarser than the
        card's spacing; else its ``weights``."""
        if self.model.zoomed_networks and lesion.cache.get("large") and self.zoomed(lesion.roi):
            return self.model.zoomed_networks
        return self.model.networks

    def _forward(self, nets: list, batch: torch.Tensor, device: torch.device) -> np.ndarray:
        self.model.to(device)
        with DeviceConfig(device, self.config.threads).context():
            probs = EnsemblePredictor(nets, device)(batch)[0]
            return (1.0 - probs[0]).float().cpu().numpy()

    def _window(self, nets: list, image: torch.Tensor, device: torch.device, batch: int) -> np.ndarray:
        card = self.model.card
        config = WindowConfig(card.patch_size, GROWTH_OVERLAP, batch, divisor=self.model.divisor)
        self.model.to(device)
        with DeviceConfig(device, self.config.threads).context():
            probs = sliding_window(image, EnsemblePredictor(nets, device), config,
                                   out_channels=card.out_channels)
            return (1.0 - probs[0]).float().numpy()

    def region_limit(self, spacing: Sequence[float] | None = None) -> np.ndarray:
        """The most model voxels (of ``spacing``, default the card's) the region may span on each axis
        (the bound, never below the patch)."""
        card = self.model.card
        spacing = card.spacing_mm if spacing is None else spacing
        return np.maximum(np.floor(self.max_region_mm / np.asarray(spacing) + 1e-6).astype(int), card.patch_size)

    def bound_mm(self, spacing: Sequence[float] | None = None) -> float:
        """The longest side (mm) a region may grow to (``max_region_mm``, never below the patch)."""
        spacing = self.model.card.spacing_mm if spacing is None else spacing
        return float(max(self.region_limit(spacing) * np.asarray(spacing)))

    def grow(self, study: Study, lesion: LesionState) -> Roi | None:
        """The larger region the lesion needs when its last pass reached a side of its region, else None.

        The sides the bound keeps from growing are left in ``lesion.cache["cut"]``.
        """
        reached = lesion.cache.get("foreground")
        sides = touching_sides(reached) if reached is not None else []
        grid = lesion.roi.grid
        lo, hi, cut = plan_growth(grid.shape, sides, room(study.grid, grid), growth_step(self.model.card.patch_size),
                                  self.region_limit(grid.spacing))
        lesion.cache["cut"] = cut
        if not (lo.any() or hi.any()):
            return None
        return grown(study.grid, lesion.roi, lo, hi)

    def holding(self, study: Study, roi: Roi, box: tuple[slice, ...], margin: int = 2) -> Roi:
        """``roi`` grown (within the bound) to hold a box of the label grid and ``margin`` model voxels around it."""
        grid = roi.grid
        corners = np.array([[b.start if k else b.stop - 1 for b, k in zip(box, bits)]
                            for bits in np.ndindex(2, 2, 2)], float)
        world = study.grid.voxel_to_world(corners)
        inside = (world - grid.affine[:3, 3]) @ np.linalg.inv(grid.affine[:3, :3]).T
        lo = np.maximum(np.ceil(-inside.min(axis=0) - 1e-6).astype(int) + margin, 0)
        hi = np.maximum(np.ceil(inside.max(axis=0) - (np.asarray(grid.shape) - 1) - 1e-6).astype(int) + margin, 0)
        below, above = room(study.grid, grid)
        lo, hi = np.minimum(lo, below), np.minimum(hi, above)
        budget = np.maximum(self.region_limit(grid.spacing) - np.asarray(grid.shape), 0)
        over = lo + hi > budget
        lo = np.where(over, np.minimum(lo, budget - np.minimum(hi, budget // 2)), lo)
        hi = np.where(over, budget - lo, hi)
        return grown(study.grid, roi, lo, hi) if (lo.any() or hi.any()) else roi

    def region_mm(self, lesion: LesionState) -> tuple[float, float, float]:
        """The side lengths (mm) of the lesion's model region."""
        return tuple(float(n * s) for n, s in zip(lesion.roi.grid.shape, lesion.roi.grid.spacing))  # type: ignore[return-value]


class ThresholdEngine:
    """The PET rules (:func:`napari_hnc.pet.delineation.apply_click`), when no click-guided model is used.

    A click works as in :func:`napari_hnc.delineate`: the region grows as far as
    the lesion goes, and what it may change follows :mod:`napari_hnc.annotation`.
    The PET is read on the label grid through the study's cached
    :func:`~napari_hnc.pet.pet_sampler` (NaN outside the PET's field of view).
    """

    def __init__(self, method: str | None = None, **params: Any) -> None:
        self.params = SeedParams.create(method, **params)  # unknown methods or parameters fail here
        self.method = self.params.method
        self.name = f"PET threshold ({self.method})"

    def check_study(self, study: Study) -> None:
        if study.pet is None:
            raise StudyError(
                f"study {study.case_id} has no PET; click refinement by PET threshold needs one "
                "(load the study with pet=...)"
            )


def _thin(points: np.ndarray, limit: int = 64) -> np.ndarray:
    """At most ``limit`` of ``points``, evenly picked (stroke voxels as guidance points)."""
    if len(points) <= limit:
        return points
    return points[np.linspace(0, len(points) - 1, limit).astype(int)]


#: How far (model voxels) a positive click may lie from the lesion the model drew, when it touches none.
NEAR_VOXELS = 2


def _keep_clicked(foreground: np.ndarray, lesion: LesionState) -> np.ndarray:
    """``foreground`` (model grid) with only the connected parts above 0.5 that hold, or touch, a positive
    click or stroke; the rest is set to 0 (a lesion is what was clicked). Done on the coarse model grid,
    which is about 5x smaller than the ROI on the CT grid.

    A lesion is solid (:func:`solid`): a cavity it encloses (a necrotic core, cold on PET) is filled, also
    one it encloses only in slices (a cup-shaped rim open at one end), unless a negative click lies in
    it (the user said that part is not lesion). A click inside such a cavity, or within ``NEAR_VOXELS``
    of the nearest part when it touches none, picks that part. When the region grew, the parts that
    overlap the last pass's lesion (``lesion.cache["previous"]``) stay. A click in a cold centre that no
    part encloses inside the region (the lesion is larger than it) picks the part at the PET peak the
    click's lesion starts from (``lesion.cache["peak"]``, ROI voxels).
    """
    seeds = [c for c, positive in lesion.clicks if positive]
    if lesion.painted is not None and lesion.painted.any():
        seeds += [tuple(v) for v in _thin(np.argwhere(lesion.painted))]
    if not seeds:
        return foreground
    components, count = ndimage.label(foreground > 0.5, _FULL)
    shape = np.array(components.shape)
    points = np.rint(lesion.roi.to_model(np.array(seeds, float))).astype(int)
    keep = touching_parts(components, points)
    inside = points[np.all((points >= 0) & (points < shape), axis=1)]
    if not keep and count and len(inside):
        keep = _enclosing_or_near(components, inside)
    previous = lesion.cache.get("previous")
    if previous is not None and previous.shape == components.shape:
        keep |= set(np.unique(components[previous]).tolist()) - {0}
    if not keep and count and lesion.cache.get("peak") is not None:
        keep = _enclosing_or_near(components, np.rint(lesion.roi.to_model(np.array([lesion.cache["peak"]], float)))
                                  .astype(int).clip(0, shape - 1))
    if not keep:
        log.info("the model found no lesion at the positive click(s)")
        return np.where(foreground <= 0.5, foreground, 0.0).astype(np.float32)
    kept = np.isin(components, list(keep))
    negatives = [c for c, positive in lesion.clicks if not positive]
    excluded = np.rint(lesion.roi.to_model(np.array(negatives, float))).astype(int) if negatives else None
    filled = solid(kept, excluded)
    out = np.where(kept | (foreground <= 0.5), foreground, 0.0)
    out[filled & ~kept] = 1.0
    return out.astype(np.float32)


def solid(mask: np.ndarray, excluded: np.ndarray | None = None) -> np.ndarray:
    """``mask`` with the cavities it encloses filled: in 3D, then in every slice along each axis in turn
    (the PET rules' :func:`~napari_hnc.pet.grow.fill_cavities` fills each axis from the mask alone).

    A necrotic core is cold on PET, and a lesion's rim around it is often open at one end (a cup); in the
    slices across it the rim still encloses the core, which the 2D fills find. A filled cavity (26-connected)
    that holds a point of ``excluded`` (N, 3 voxel indices: negative clicks) stays empty.

    >>> cup = np.zeros((7, 7, 7), bool); cup[1:6, 1:6, 1:6] = True; cup[2:6, 2:5, 2:5] = False  # open on top
    >>> int(cup.sum()), int(solid(cup).sum()), int(solid(cup, np.array([[3, 3, 3]])).sum())
    (89, 125, 89)
    """
    volume, *slices = cavity_structures()
    filled = fill_enclosed(mask, volume, range(3))
    for axis, planar in enumerate(slices):  # in turn, so each axis fills what the last left open
        filled = fill_enclosed(filled, planar, [a for a in range(3) if a != axis])
    if excluded is not None and len(excluded):
        cavities, _ = ndimage.label(filled & ~mask, _FULL)
        shape = np.array(mask.shape)
        inside = [tuple(p) for p in np.asarray(excluded, int).reshape(-1, mask.ndim) if np.all((p >= 0) & (p < shape))]
        dropped = {int(cavities[p]) for p in inside} - {0}
        if dropped:
            filled &= ~np.isin(cavities, list(dropped))
    return filled


def reaches_edge(mask: np.ndarray) -> bool:
    """Whether ``mask`` holds a voxel on a face of its array.

    >>> m = np.zeros((4, 4, 4), bool); m[1:3, 1:3, 1:3] = True
    >>> reaches_edge(m), reaches_edge(m[:, :, 1:])
    (False, True)
    """
    return any(mask.take(index, axis=axis).any() for axis in range(mask.ndim) for index in (0, -1))


def touching_parts(components: np.ndarray, points: np.ndarray) -> set[int]:
    """The labels (> 0) of ``components`` that hold a point of ``points`` (N, 3) or one of its 26 neighbours.

    >>> parts = np.array([[[1, 0, 0, 2]]])
    >>> sorted(touching_parts(parts, np.array([[0, 0, 1]])))
    [1]
    """
    shape = np.array(components.shape)
    found: set[int] = set()
    for point in np.asarray(points, int).reshape(-1, 3):
        lo, hi = np.clip(point - 1, 0, shape), np.clip(point + 2, 0, shape)
        found |= set(np.unique(components[tuple(slice(a, b) for a, b in zip(lo, hi))]).tolist())
    found.discard(0)
    return found


def _enclosing_or_near(components: np.ndarray, points: np.ndarray) -> set[int]:
    """The parts that enclose one of ``points`` in a cavity (:func:`solid`), else those within ``NEAR_VOXELS`` of one."""
    found: set[int] = set()
    for label, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        inside = [p for p in points if all(s.start <= v < s.stop for v, s in zip(p, box))]
        if inside:
            filled = solid(components[box] == label)
            if any(filled[tuple(int(v) - s.start for v, s in zip(p, box))] for p in inside):
                found.add(label)
    if found:
        return found
    distance, nearest = ndimage.distance_transform_edt(components == 0, return_indices=True)
    for point in points:
        if distance[tuple(point)] <= NEAR_VOXELS:
            found.add(int(components[tuple(nearest[:, point[0], point[1], point[2]])]))
    return found
