"""What proposes a lesion's mask from its clicks: a click-guided network, or the PET threshold tools
(:mod:`napari_hnc.pet`) when no click-guided model is installed.

Both engines work on a :class:`~.roi.Roi` and return a boolean mask on the
ROI's label voxels; the session decides what is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from scipy import ndimage

from ..errors import ModelError, StudyError
from ..models.weights_io import Model
from ..pet import SeedParams
from ..study import Study
from .device import DeviceConfig, run_with_fallback
from .encoding import click_map
from .ensemble import EnsemblePredictor
from .preprocess import PetStats, image_channels, require_images, stack_inputs
from .roi import Roi, roi_around

log = logging.getLogger(__name__)

_FULL = np.ones((3, 3, 3), bool)


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


class Engine(Protocol):
    name: str

    def check_study(self, study: Study) -> None: ...


class ModelEngine:
    """A click-guided network: inputs CT, PET, positive/negative click maps and the previous mask."""

    def __init__(self, model: Model, config: DeviceConfig, *, keep_clicked_only: bool = True) -> None:
        if not model.card.is_click_guided:
            raise ModelError(
                f"model {model.card.name!r} is not click-guided (inputs {list(model.card.inputs)}); use a card whose "
                "inputs include positive_clicks, negative_clicks and previous_mask, or model=None for PET thresholds"
            )
        self.model, self.config, self.keep_clicked_only = model, config, keep_clicked_only
        self.name = f"model {model.card.name}"
        self._stats: dict[int, PetStats] = {}
        config.activate()
        model.to(config.device)

    def check_study(self, study: Study) -> None:
        require_images(study, self.model.card)

    def roi_for(self, study: Study, world: np.ndarray) -> Roi:
        card = self.model.card
        return roi_around(study.grid, world, card.spacing_mm, card.patch_size)

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
        card = self.model.card
        inputs = stack_inputs(card, {**self._images(study, lesion), **self._guidance(lesion)})
        batch = torch.from_numpy(inputs)[None]
        divisor = self.model.divisor
        if any(s % divisor for s in batch.shape[2:]):
            raise ModelError(f"model {card.name!r}: patch_size {card.patch_size} is not a multiple of {divisor}")

        def run(device: torch.device, _batch: int) -> np.ndarray:
            self.model.to(device)
            with DeviceConfig(device, self.config.threads).context():
                probs = EnsemblePredictor(self.model.networks, device)(batch)[0]
                return (1.0 - probs[0]).float().cpu().numpy()

        foreground = run_with_fallback(run, self.config.device, 1)
        if self.keep_clicked_only:
            foreground = _keep_clicked(foreground, lesion)
        if reaches_edge(foreground > 0.5):
            side = " x ".join(f"{n * s / 10:g}" for n, s in zip(card.patch_size, card.spacing_mm))
            log.warning("the lesion reaches the edge of model %s's region (%s cm around the first click) and may be "
                        "cut there; extend it with the brush or a PET rule", card.name, side)
        return lesion.roi.to_label(foreground) > 0.5


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

    A lesion is solid: a cavity it encloses (a necrotic core, cold on PET) is filled. A click inside such
    a cavity, or within ``NEAR_VOXELS`` of the nearest part when it touches none, picks that part.
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
    if not keep:
        log.info("the model found no lesion at the positive click(s)")
        return np.where(foreground <= 0.5, foreground, 0.0).astype(np.float32)
    kept = np.isin(components, list(keep))
    solid = ndimage.binary_fill_holes(kept)
    out = np.where(kept | (foreground <= 0.5), foreground, 0.0)
    out[solid & ~kept] = 1.0
    return out.astype(np.float32)


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
    """The parts that enclose one of ``points`` in a cavity, else those within ``NEAR_VOXELS`` of one."""
    found: set[int] = set()
    for label, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        inside = [p for p in points if all(s.start <= v < s.stop for v, s in zip(p, box))]
        if inside:
            filled = ndimage.binary_fill_holes(components[box] == label)
            if any(filled[tuple(int(v) - s.start for v, s in zip(p, box))] for p in inside):
                found.add(label)
    if found:
        return found
    distance, nearest = ndimage.distance_transform_edt(components == 0, return_indices=True)
    for point in points:
        if distance[tuple(point)] <= NEAR_VOXELS:
            found.add(int(components[tuple(nearest[:, point[0], point[1], point[2]])]))
    return found
