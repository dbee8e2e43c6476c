"""Preprocessing per model card: the model grid, the field of view, resampling and intensities.

The **model grid** has the card's spacing and the voxel axes of the label grid
(the CT) re-ordered to RAS (``Volume.reoriented``), so networks always see
arrays in the same anatomical order, whatever the files' orientation, and the
mapping back to the CT grid is a per-axis scaling (see :mod:`.resample`).
Image channels are resampled onto it linearly (CT filled with the bottom of the
card's window, PET with 0) and scaled as the card says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from itertools import product
from typing import Sequence

import numpy as np

from ..errors import StudyError
from ..geometry import Volume, resample_to
from ..models.card import ModelCard, Preprocessing
from ..study import Study

log = logging.getLogger(__name__)

CANONICAL = ("R", "A", "S")
BODY_HU = -500.0
BODY_MARGIN_MM = 10.0


@dataclass(frozen=True, eq=False)
class Grid:
    """A voxel grid without data: its 4x4 voxel-to-world affine and shape.

    >>> g = Grid(np.diag([2.0, 2.0, 2.0, 1.0]), (4, 4, 4))
    >>> g.spacing.tolist()
    [2.0, 2.0, 2.0]
    """

    affine: np.ndarray
    shape: tuple[int, int, int]

    @property
    def spacing(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @cached_property
    def reference(self) -> Volume:
        """A 1-voxel Volume carrying the affine, for :func:`napari_hnc.resample_to` with ``shape=``."""
        return Volume(np.zeros((1, 1, 1), np.uint8), self.affine)

    def corners_world(self) -> np.ndarray:
        ijk = np.array(list(product(*[(0, s - 1) for s in self.shape])), dtype=float)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]


def _axes(like: Volume, spacing: Sequence[float]) -> tuple[Volume, np.ndarray]:
    canonical = like.reoriented(CANONICAL)
    rotation = canonical.affine[:3, :3] / canonical.spacing
    return canonical, rotation @ np.diag(np.asarray(spacing, dtype=float))


def grid_around(like: Volume, spacing: Sequence[float], centre_world: Sequence[float], shape: Sequence[int]) -> Grid:
    """A model grid of ``shape`` voxels centred on a world point, aligned with ``like``'s axes."""
    _, linear = _axes(like, spacing)
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = np.asarray(centre_world, float) - linear @ ((np.asarray(shape, float) - 1) / 2.0)
    return Grid(affine, tuple(int(s) for s in shape))


def grid_over_box(like: Volume, spacing: Sequence[float], lo_ijk: Sequence[float], hi_ijk: Sequence[float]) -> Grid:
    """A model grid covering the box ``lo_ijk..hi_ijk`` (voxel indices of ``like`` re-oriented to RAS)."""
    canonical, linear = _axes(like, spacing)
    lo, hi = np.asarray(lo_ijk, float), np.asarray(hi_ijk, float)
    extent = (hi - lo) * canonical.spacing
    shape = np.maximum(np.ceil(extent / np.asarray(spacing)).astype(int) + 1, 1)
    centre = canonical.voxel_to_world((lo + hi) / 2.0)
    return grid_around(like, spacing, centre, shape)


def body_box(study: Study, within: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The body's bounding box (RAS-ordered voxel indices of the label grid), within the PET's extent.

    The body is the largest connected region above -500 HU on a ~4 mm
    sub-sample of the CT (the couch is usually a separate region), plus a 10 mm
    margin. Without a CT the whole label grid is used. ``within`` (lo, hi
    voxel indices of the re-oriented label grid, e.g. the head-and-neck region)
    limits the search to that box: only its part of the CT is read.
    """
    canonical = study.grid.reoriented(CANONICAL)
    lo, hi = np.zeros(3), np.asarray(canonical.shape, float) - 1
    if within is not None:
        lo, hi = np.maximum(lo, np.floor(within[0])), np.minimum(hi, np.ceil(within[1]))
    if study.ct is not None and within is None:
        lo, hi = _largest_region_box(canonical, lo, hi)
    elif study.ct is not None:
        start = lo.astype(int)
        crop = canonical.crop(tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi)))
        box_lo, box_hi = _largest_region_box(crop, np.zeros(3), hi - lo)
        lo, hi = box_lo + start, box_hi + start
    if study.pet is not None:
        corners = canonical.world_to_voxel(Grid(study.pet.affine, study.pet.shape).corners_world())
        lo, hi = np.maximum(lo, corners.min(axis=0)), np.minimum(hi, corners.max(axis=0))
    if np.any(hi < lo):
        raise StudyError(f"study {study.case_id}: the CT body and the PET do not overlap; check the files belong together")
    return lo, hi


def _largest_region_box(ct: Volume, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage

    stride = np.maximum(1, np.round(4.0 / ct.spacing).astype(int))
    coarse = np.asarray(ct.array[:: stride[0], :: stride[1], :: stride[2]]) > BODY_HU
    labels, count = ndimage.label(coarse)
    if count == 0:
        log.warning("no body found in the CT (nothing above %g HU); using the whole field of view", BODY_HU)
        return lo, hi
    sizes = np.bincount(labels.ravel())[1:]
    found = ndimage.find_objects(labels)[int(np.argmax(sizes))]
    margin = BODY_MARGIN_MM / ct.spacing
    box_lo = np.array([s.start for s in found]) * stride - margin
    box_hi = (np.array([s.stop for s in found]) - 1) * stride + stride - 1 + margin
    return np.maximum(lo, box_lo), np.minimum(hi, box_hi)


def resample_onto(volume: Volume, grid: Grid, interpolation: str = "linear", fill: float = 0.0) -> np.ndarray:
    """``volume`` resampled onto ``grid`` (only the part of it the grid covers is read)."""
    corners = volume.world_to_voxel(grid.corners_world())
    start = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 2, volume.shape)
    if np.any(stop <= start):
        return np.full(grid.shape, fill, np.float32)
    cropped = volume.crop(tuple(slice(a, b) for a, b in zip(start, stop)))
    out = resample_to(cropped, grid.reference, interpolation, fill=fill, shape=grid.shape)  # type: ignore[arg-type]
    return np.asarray(out.array, dtype=np.float32)


@dataclass(frozen=True)
class PetStats:
    """PET statistics for intensity scaling (SUV over the voxels above 0)."""

    mean: float
    std: float
    max: float

    @classmethod
    def of(cls, pet: Volume) -> "PetStats":
        step = max(1, int(round(np.prod(pet.shape) ** (1 / 3) / 64)))
        sample = np.asarray(pet.array[::step, ::step, ::step], dtype=np.float64)
        positive = sample[sample > 0]
        values = positive if positive.size else sample.ravel()
        return cls(float(values.mean()), float(values.std()) or 1.0, float(np.max(pet.array)) or 1.0)


def scale_ct(hu: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Clip HU to the card's window and map it linearly onto its range.

    >>> scale_ct(np.array([-2000.0, 0.0, 2000.0]), Preprocessing()).tolist()
    [-1.0, 0.0, 1.0]
    """
    (w0, w1), (r0, r1) = pre.ct_window, pre.ct_range
    return ((np.clip(hu, w0, w1) - w0) * ((r1 - r0) / (w1 - w0)) + r0).astype(np.float32)


def scale_pet(suv: np.ndarray, pre: Preprocessing, stats: PetStats) -> np.ndarray:
    """Scale SUV as the card says ("zscore", "minmax" or "suv")."""
    if pre.pet_clip is not None:
        suv = np.minimum(suv, pre.pet_clip)
    if pre.pet == "zscore":
        out = (suv - stats.mean) / stats.std
    elif pre.pet == "minmax":
        out = suv / (min(stats.max, pre.pet_clip) if pre.pet_clip else stats.max)
    else:
        out = suv / pre.pet_scale
    return np.asarray(out, dtype=np.float32)


def require_images(study: Study, card: ModelCard) -> None:
    """Raise :class:`StudyError` when the study lacks an image the model needs."""
    for role in card.needs:
        if getattr(study, role) is None:
            raise StudyError(
                f"study {study.case_id} has no {role.upper()}, but model {card.name!r} needs "
                f"{' and '.join(r.upper() for r in card.needs)}. Open its {role.upper()} too (in napari: File > Open; "
                f"in Python: load_study(..., {role}=...)), or use a model whose card lists only the images you have"
            )


def image_channels(study: Study, card: ModelCard, grid: Grid, stats: PetStats | None) -> dict[str, np.ndarray]:
    """The card's image inputs (``"ct"``, ``"pet"``) on ``grid``, scaled."""
    require_images(study, card)
    pre, out = card.preprocessing, {}
    if "ct" in card.inputs:
        out["ct"] = scale_ct(resample_onto(study.ct, grid, fill=pre.ct_window[0]), pre)  # type: ignore[arg-type]
    if "pet" in card.inputs:
        stats = stats or PetStats.of(study.pet)  # type: ignore[arg-type]
        out["pet"] = scale_pet(resample_onto(study.pet, grid, fill=0.0), pre, stats)  # type: ignore[arg-type]
    return out


def stack_inputs(card: ModelCard, channels: dict[str, np.ndarray]) -> np.ndarray:
    """Channels in the card's input order, as one float32 array (C, X, Y, Z)."""
    missing = [name for name in card.inputs if name not in channels]
    if missing:
        raise StudyError(f"model {card.name!r} needs the inputs {missing}, which were not prepared")
    return np.stack([channels[name] for name in card.inputs]).astype(np.float32, copy=False)
