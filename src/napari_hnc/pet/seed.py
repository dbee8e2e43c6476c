"""One click (a seed voxel) to one lesion mask, on any PET array: the grid-agnostic entry point.

:func:`segment_from_seed` is what the click-guided refinement falls back to on
its region of interest, and what :func:`napari_hnc.delineate` runs per click.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import ClickError, HncWarning
from .grow import Index, bounding_slices, check_index, grow_region
from .params import ParameterError, SeedParams
from .thresholds import adaptive_region, ball_window, percent_region, snap_to_peak, threshold_region

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeedResult:
    """A lesion grown from one seed, and how it was found.

    ``faces`` says, per array face (axis 0 low, axis 0 high, axis 1 low, ...),
    whether the lesion touches it: a caller that passed a crop of a larger image
    grows the crop when a lesion touches an inner face.
    """

    mask: np.ndarray
    method: str
    seed: Index
    peak: Index
    suv_max: float
    threshold: float
    background: float | None
    hit_bound: bool
    faces: tuple[bool, ...]

    def bound_warning(self, radius_mm: float) -> str:
        return (
            f"the {self.method} region from the click reached the {radius_mm:g} mm bound around it "
            f"(threshold {self.threshold:.2f} SUV) and was cut there: it probably leaks into "
            "neighbouring uptake. Raise the threshold, or pass a larger max_radius_mm if the lesion "
            "really is that large"
        )


def segment_from_seed(
    pet: np.ndarray,
    seed: Sequence[int],
    spacing: Sequence[float],
    *,
    method: str = "percent",
    **params: Any,
) -> np.ndarray:
    """The lesion around a seed voxel, as a bool mask of ``pet``'s shape.

    The seed snaps to the hottest voxel within ``snap_mm`` (7 mm), the rule's
    threshold is applied, and the lesion is the 26-connected region above it that
    holds the (snapped) seed, never further than ``max_radius_mm`` (50 mm) from the
    seed. A region cut by that bound gives an :class:`~napari_hnc.errors.HncWarning`.

    Parameters
    ----------
    pet : numpy.ndarray
        3D SUV values (any grid; NaN marks voxels outside the PET's field of view).
    seed : (i, j, k)
        Voxel index of the click in ``pet``.
    spacing : sequence of 3 floats
        Voxel size in mm along each axis of ``pet``.
    method : {"percent", "fixed", "adaptive", "grow"}
        The rule; see :mod:`napari_hnc.pet.params` for each one's parameters.
    **params
        ``threshold``, ``percent``, ``fraction``, ``shell_mm``, ``lower``, ``upper``,
        ``snap_mm``, ``max_radius_mm``, ``min_suv`` (those that apply to ``method``).

    Returns
    -------
    numpy.ndarray of bool

    Raises
    ------
    ClickError
        The seed lies outside ``pet``, or on a region with no uptake.
    ParameterError
        An unknown method or parameter.

    Examples
    --------
    >>> import numpy as np
    >>> pet = np.full((20, 20, 20), 0.8, np.float32)
    >>> pet[8:12, 8:12, 8:12] = 6.0
    >>> int(segment_from_seed(pet, (9, 9, 9), (2.0, 2.0, 2.0), method="fixed", threshold=2.5).sum())
    64
    >>> segment_from_seed(pet, (1, 1, 1), (2.0, 2.0, 2.0), snap_mm=3)
    Traceback (most recent call last):
    ...
    napari_hnc.errors.ClickError: no uptake at the click: the hottest voxel within 3 mm of it has SUV 0.80, below min_suv = 2. Click on a hot lesion (or lower min_suv to delineate a faint one)
    """
    config = SeedParams.create(method, **params)
    result = seed_region(pet, seed, spacing, config)
    if result.hit_bound:
        warnings.warn(result.bound_warning(config.max_radius_mm), HncWarning, stacklevel=2)
    return result.mask


def seed_region(pet: np.ndarray, seed: Sequence[int], spacing: Sequence[float], params: SeedParams) -> SeedResult:
    """:func:`segment_from_seed` with validated parameters, returning the details (no warning)."""
    pet, spacing_t = _checked_inputs(pet, spacing)
    index = check_index(seed, pet.shape)
    radius = params.max_radius_mm
    window = ball_window(pet.shape, index, spacing_t, radius + params.margin_mm)
    sub = pet[window]
    local: Index = tuple(c - w.start for c, w in zip(index, window))  # type: ignore[assignment]
    distance2 = _distance2(sub.shape, local, spacing_t)
    within = distance2 <= radius**2
    region, peak, suv_max, threshold, background = _apply_rule(sub, local, spacing_t, within, params)
    edge = max(radius - max(spacing_t), 0.0)
    hit = bool(np.any(region & (distance2 > edge**2)))
    mask = np.zeros(pet.shape, bool)
    mask[window] = region
    peak_global: Index = tuple(p + w.start for p, w in zip(peak, window))  # type: ignore[assignment]
    log.debug("%s seed %s -> peak %s SUVmax %.2f threshold %.2f, %d voxels", params.method, index,
              peak_global, suv_max, threshold, int(region.sum()))
    return SeedResult(mask, params.method, index, peak_global, suv_max, threshold, background, hit,
                      _faces(region, window, pet.shape))


def _apply_rule(sub: np.ndarray, seed: Index, spacing: tuple[float, ...], within: np.ndarray, p: SeedParams):
    if p.method == "grow":
        peak = snap_to_peak(sub, seed, spacing, p.snap_mm, lower=p.lower, upper=p.upper)
        region = grow_region(sub, [peak], p.lower, p.upper, within=within)
        return region, peak, _region_max(sub, region), p.lower, None
    peak = snap_to_peak(sub, seed, spacing, p.snap_mm)
    value = float(sub[peak])
    _check_uptake(value, p)
    if p.method == "fixed":
        region = threshold_region(sub, peak, p.threshold, within)
        return region, peak, _region_max(sub, region), p.threshold, None
    if p.method == "percent":
        region, suv_max, peak = percent_region(sub, peak, p.percent, within)
        return region, peak, suv_max, p.percent / 100.0 * suv_max, None
    region, threshold, suv_max, background = adaptive_region(sub, peak, spacing, p.fraction, p.shell_mm, within)
    return region, peak, suv_max, threshold, background


def _check_uptake(value: float, p: SeedParams) -> None:
    near = f"within {p.snap_mm:g} mm of it" if p.snap_mm > 0 else "at it"
    if not math.isfinite(value):
        raise ClickError("the click lies outside the PET's field of view (no PET values there); click inside the PET")
    limit, name = (p.threshold, "the threshold") if p.method == "fixed" else (p.min_suv, "min_suv")
    if value < limit:
        fix = "lower the threshold" if p.method == "fixed" else "lower min_suv to delineate a faint one"
        raise ClickError(
            f"no uptake at the click: the hottest voxel {near} has SUV {value:.2f}, below {name} = {limit:g}. "
            f"Click on a hot lesion (or {fix})"
        )


def _region_max(pet: np.ndarray, region: np.ndarray) -> float:
    box = bounding_slices(region)
    return float(np.max(pet[box][region[box]])) if box is not None else float("nan")


def _checked_inputs(pet: Any, spacing: Sequence[float]) -> tuple[np.ndarray, tuple[float, ...]]:
    pet = np.asarray(pet)
    if pet.ndim != 3:
        raise ParameterError(f"the PET must be a 3D array, got shape {pet.shape}")
    if not np.issubdtype(pet.dtype, np.number) or np.issubdtype(pet.dtype, np.complexfloating):
        raise ParameterError(f"the PET must hold real SUV values, got dtype {pet.dtype}")
    values = tuple(float(s) for s in np.asarray(spacing, dtype=float).ravel())
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise ParameterError(f"spacing must be 3 positive voxel sizes in mm, got {spacing!r}")
    return pet, values


def _distance2(shape: Sequence[int], center: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    axes = [(((np.arange(n) - c) * s) ** 2).astype(np.float32) for n, c, s in zip(shape, center, spacing)]
    return axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]


def _faces(region: np.ndarray, window: tuple[slice, ...], shape: Sequence[int]) -> tuple[bool, ...]:
    box = bounding_slices(region)
    if box is None:
        return (False,) * 6
    out = []
    for b, w, n, m in zip(box, window, region.shape, shape):
        out += [b.start == 0 and w.start == 0, b.stop == n and w.stop == m]
    return tuple(out)
