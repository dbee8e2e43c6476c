"""The training samples: a torch ``Dataset`` whose item ``i`` of epoch ``e`` is a pure function of
``(seed, e, i)``, so a run resumed at an epoch boundary (or spread over more processes by a
``DistributedSampler``) draws exactly the same patches.

Automatic models get a patch (lesions oversampled), its soft targets, augmented.
Click-guided models get a patch centred on a click in one lesion, that lesion's
targets only, and a simulated interaction: a first click (centre of mass or
anywhere in the lesion) and either no previous mask, or a perturbed earlier mask
with corrective clicks, or a request to the trainer to let the model itself
produce the previous masks (``model_rounds`` > 0).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from ..inference.engines import zoom_for
from ..models.card import ModelCard
from .augment import SpatialParams, apply_spatial, crop_size, jitter_intensity
from .cache import TARGET_SCALE, CachedCase
from .clicksim import error_click, guidance, perturb_mask
from .config import TrainConfig
from .losses import targets_with_background
from .sampler import choose_centre, extract, random_lesion_voxel

#: Largest number of clicks a training sample carries (the rest of the fixed-size arrays is unused).
MAX_CLICKS = 8
#: Shares of click-training interactions: first click only, perturbed earlier mask, model rounds.
CLICK_MODES = (0.4, 0.3, 0.3)


class PatchDataset(Dataset):
    """``len`` = samples per epoch; call :meth:`set_epoch` before each epoch (as for a DistributedSampler)."""

    def __init__(self, cases: Sequence[CachedCase], card: ModelCard, config: TrainConfig, samples: int) -> None:
        if not cases:
            raise ValueError("no training cases")
        self.cases, self.card, self.config, self.samples = list(cases), card, config, int(samples)
        self.with_lesions = [i for i, c in enumerate(self.cases) if c.lesions]
        if config.clicks and not self.with_lesions:
            raise ValueError("click-guided training needs cases with lesions; none of the training cases has one")
        self.epoch = 0
        self._extents: dict[tuple[str, int], list[int]] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self.rng(index)
        return self._click_sample(rng) if self.config.clicks else self._auto_sample(rng)

    # ----------------------------------------------------------------- automatic
    def _auto_sample(self, rng: np.random.Generator) -> dict[str, Any]:
        case = self.cases[rng.integers(len(self.cases))]
        patch = self.config.patch_size
        centre = choose_centre(case, rng, patch, self.config.foreground_fraction)
        params = SpatialParams.draw(self.config, rng)
        image, target, _ = self._crop(case, centre, params)
        return {"image": jitter_intensity(image, self.config, rng), "target": targets_with_background(target[None])[0]}

    def _crop(self, case: CachedCase, centre: np.ndarray, params: SpatialParams, lesion_id: int | None = None):
        patch = self.config.patch_size
        size = (crop_size(patch, params),) * 3
        image = extract(case.image, centre, size, case.pad_values)
        target = extract(case.target, centre, size, 0.0) / TARGET_SCALE
        parts = [image, target]
        if lesion_id is not None:
            parts.append(extract(case.components[None], centre, size, 0.0) == lesion_id)
        stacked = apply_spatial(torch.from_numpy(np.concatenate(parts).astype(np.float32)), patch, params)
        n_image, n_target = image.shape[0], target.shape[0]
        lesion = stacked[n_image + n_target] > 0.5 if lesion_id is not None else None
        return stacked[:n_image], stacked[n_image:n_image + n_target].clamp(0.0, 1.0), lesion

    # ----------------------------------------------------------------- click-guided
    def _click_sample(self, rng: np.random.Generator) -> dict[str, Any]:
        case = self.cases[self.with_lesions[rng.integers(len(self.with_lesions))]]
        lesion = case.lesions[rng.integers(len(case.lesions))]
        click = np.asarray(lesion["centre"]) if rng.random() < 0.5 else random_lesion_voxel(case, lesion["id"], rng)
        jitter = rng.integers(-2, 3, size=3)
        params = SpatialParams.draw(self.config, rng)
        zoom = self.zoom(case, lesion)
        if zoom > 1.0:  # seen as the engine sees a large lesion: the same patch over more millimetres
            params = SpatialParams(params.angles, params.scale * zoom, params.flips)
        image, target, truth = self._crop(case, click + jitter, params, lesion["id"])
        patch = self.config.patch_size
        first = _flipped(np.full(3, patch // 2) - np.round(jitter / params.scale).astype(int), params.flips, patch)
        truth_np = truth.numpy()
        if not truth_np[first]:  # resampling moved the lesion's edge off the click: click its nearest voxel
            first = _nearest(truth_np, first)
        near = torch.from_numpy(ndimage.binary_dilation(truth_np, np.ones((3, 3, 3), bool)))
        fractions = torch.zeros_like(target)
        fractions[lesion["class"] - 1] = target[lesion["class"] - 1] * near
        positive, negative, previous, rounds = self._interaction(truth_np, first, rng)
        return {
            "image": jitter_intensity(image, self.config, rng),
            "target": targets_with_background(fractions[None])[0],
            "truth": truth,
            "guidance": torch.from_numpy(guidance(truth_np.shape, self.card.spacing_mm, positive, negative, previous,
                                                  self.card.click_encoding)),
            "positive": _pack(positive), "negative": _pack(negative),
            "n_positive": len(positive), "n_negative": len(negative), "model_rounds": rounds,
        }

    def zoom(self, case: CachedCase, lesion: dict[str, Any]) -> float:
        """How much coarser than the card's spacing the click engine sees ``lesion`` (1: not coarser).

        As at inference (:func:`~napari_hnc.inference.engines.zoom_for`, within the card's
        ``max_region_mm``). The cache is on the card's grid: its voxels are the card's spacing.
        """
        extent = lesion.get("extent")
        if extent is None:  # a cache written before lesions recorded their extent
            key = (case.case_id, lesion["id"])
            if key not in self._extents:
                found = ndimage.find_objects(case.components, max_label=lesion["id"])[lesion["id"] - 1]
                self._extents[key] = [s.stop - s.start for s in found] if found else [0, 0, 0]
            extent = self._extents[key]
        extent_mm = np.asarray(extent, float) * np.asarray(self.card.spacing_mm, float)
        return zoom_for(self.card, extent_mm, self.card.max_region_mm)

    def _interaction(self, truth: np.ndarray, first: tuple[int, int, int], rng: np.random.Generator):
        mode = rng.choice(3, p=CLICK_MODES)
        positive, negative = [first], []
        if mode == 0 or not truth.any():
            return positive, negative, None, 0
        if mode == 2:
            return positive, negative, None, int(rng.integers(1, 3))
        previous = perturb_mask(truth, rng)
        extra = int(rng.integers(0, 3))
        for number in range(extra):
            found = error_click(previous, truth, self.card.spacing_mm)
            if found is None:
                break
            (positive if found[1] else negative).append(found[0])
            if number + 1 < extra:  # an earlier click fixed its error; the last one points at an error still shown
                previous = previous ^ _component_at(truth ^ previous, found[0])
        return positive, negative, previous, 0


def _flipped(point: np.ndarray, flips: tuple[int, ...], size: int) -> tuple[int, int, int]:
    out = [int(v) for v in point]
    for axis in flips:
        out[axis] = size - 1 - out[axis]
    return tuple(out)  # type: ignore[return-value]


def _nearest(mask: np.ndarray, point: tuple[int, int, int]) -> tuple[int, int, int]:
    points = np.argwhere(mask)
    if len(points) == 0:
        return point
    return tuple(int(v) for v in points[np.argmin(((points - np.asarray(point)) ** 2).sum(axis=1))])  # type: ignore


def _component_at(mask: np.ndarray, point: tuple[int, int, int]) -> np.ndarray:
    components, _ = ndimage.label(mask, np.ones((3, 3, 3), bool))
    return components == components[point] if components[point] else np.zeros_like(mask)


def _pack(points: list[tuple[int, int, int]]) -> torch.Tensor:
    out = torch.full((MAX_CLICKS, 3), -1, dtype=torch.long)
    if points:
        out[: min(len(points), MAX_CLICKS)] = torch.as_tensor(points[:MAX_CLICKS], dtype=torch.long)
    return out
