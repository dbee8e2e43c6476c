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
from .edge import edge_region
from .grow import Index, bounding_slices, check_index, confidence_region, fill_cavities, grow_region
from .params import ParameterError, SeedParams
from .peaks import find_peak
from .thresholds import adaptive_region, ball_window, percent_region, threshold_region

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
    start: Index | None = None  # the voxel the lesion grew from (the snapped click, or its rim's peak)
    enclosed: bool = False  # the click lay in a cold cavity of the lesion (its rim surrounded it)

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

    The seed snaps to the hottest voxel within ``snap_mm`` (7 mm); a seed in the
    cold centre of a lesion whose hot rim surrounds it starts from that rim
    (:mod:`napari_hnc.pet.peaks`). The rule is applied from there, the lesion is
    the 26-connected region it selects that holds that voxel, with the cavities it
    encloses filled (``fill_holes``), never further than ``max_radius_mm`` (200 mm)
    from the seed; a region cut by that bound gives an
    :class:`~napari_hnc.errors.HncWarning`.

    Parameters
    ----------
    pet : numpy.ndarray
        3D SUV values (any grid; NaN marks voxels outside the PET's field of view).
    seed : (i, j, k)
        Voxel index of the click in ``pet``.
    spacing : sequence of 3 floats
        Voxel size in mm along each axis of ``pet``.
    method : {"percent", "edge", "fixed", "adaptive", "grow"}
        The rule (41 % of SUVmax here by default; :func:`napari_hnc.delineate`
        defaults to the measured best, ``"edge"``); see :mod:`napari_hnc.pet.params`
        for each one's parameters.
    **params
        ``threshold``, ``percent``, ``fraction``, ``inner``, ``outer``, ``shell_mm``,
        ``multiplier``, ``lower``, ``upper``, ``snap_mm``, ``max_radius_mm``,
        ``min_suv``, ``fill_holes`` (those that apply to ``method``).

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
    napari_hnc.errors.ClickError: no uptake at the click: the hottest voxel within 3 mm of it has SUV 0.80, below min_suv = 2, and no lesion rim surrounds it. Click on a hot lesion (or lower min_suv to delineate a faint one)
    """
    config = SeedParams.create(method, **params)
    result = seed_region(pet, seed, spacing, config)
    if result.hit_bound:
        warnings.warn(result.bound_warning(config.max_radius_mm), HncWarning, stacklevel=2)
    return result.mask


def seed_region(pet: np.ndarray, seed: Sequence[int], spacing: Sequence[float], params: SeedParams, *,
                peak: Sequence[int] | None = None, enclosed: bool = False) -> SeedResult:
    """:func:`segment_from_seed` with validated parameters, returning the details (no warning).

    ``peak`` (an index of ``pet``) skips the search for the voxel the lesion grows
    from (:func:`~napari_hnc.pet.peaks.find_peak`), for a caller that found it on
    a wider box; ``enclosed`` then says whether the click lay in a cold cavity.
    """
    pet, spacing_t = _checked_inputs(pet, spacing)
    index = check_index(seed, pet.shape)
    if peak is None:
        peak, enclosed = find_peak(pet, index, spacing_t, params)
    peak = check_index(peak, pet.shape)
    radius = params.max_radius_mm
    window = ball_window(pet.shape, index, spacing_t, radius + params.margin_mm)
    sub = pet[window]
    local: Index = tuple(c - w.start for c, w in zip(index, window))  # type: ignore[assignment]
    local_peak: Index = tuple(c - w.start for c, w in zip(peak, window))  # type: ignore[assignment]
    distance2 = _distance2(sub.shape, local, spacing_t)
    within = distance2 <= radius**2
    if not within[local_peak]:
        raise ClickError(f"the lesion's peak lies beyond the {radius:g} mm bound around the click; raise max_radius_mm")
    region, top, suv_max, threshold, background = _apply_rule(sub, local_peak, spacing_t, within, params, local)
    if params.fill_holes:
        region = fill_cavities(region)
    edge = max(radius - max(spacing_t), 0.0)
    hit = bool(np.any(region & (distance2 > edge**2)))
    mask = np.zeros(pet.shape, bool)
    mask[window] = region
    top_global: Index = tuple(p + w.start for p, w in zip(top, window))  # type: ignore[assignment]
    log.debug("%s seed %s -> peak %s SUVmax %.2f threshold %.2f, %d voxels%s", params.method, index,
              top_global, suv_max, threshold, int(region.sum()), " (cold centre)" if enclosed else "")
    return SeedResult(mask, params.method, index, top_global, suv_max, threshold, background, hit,
                      _faces(region, window, pet.shape), peak, enclosed)


def _apply_rule(sub: np.ndarray, peak: Index, spacing: tuple[float, ...], within: np.ndarray, p: SeedParams,
                click: Index | None = None):
    """``(region, index of its SUVmax, SUVmax, threshold or edge level, background)`` of one rule.

    The region grows from ``peak`` and from the ``click`` itself when that has the
    uptake the rule asks for (a lesion on the slope of a hotter one keeps its part).
    """
    also = () if click is None else (click,)
    if p.method == "grow":
        if math.isfinite(p.lower):
            region = grow_region(sub, [peak], p.lower, p.upper, within=within)
        else:
            # the interval never admits voxels colder than min_suv: background is no lesion
            region = confidence_region(sub, peak, p.multiplier, lower=p.min_suv, upper=p.upper, within=within)
        top, suv_max = _region_max(sub, region)
        return region, top, suv_max, float(np.min(sub[region])), None
    if p.method == "fixed":
        region = threshold_region(sub, peak, p.threshold, within, also=also)
        top, suv_max = _region_max(sub, region)
        return region, top, suv_max, p.threshold, None
    if p.method == "percent":
        region, suv_max, top = percent_region(sub, peak, p.percent, within, floor=p.min_suv, also=also)
        return region, top, suv_max, max(p.percent / 100.0 * suv_max, min(p.min_suv, suv_max)), None
    if p.method == "edge":
        region, level, _, background = edge_region(sub, peak, spacing, p.inner, p.outer, p.shell_mm, within, p.min_suv,
                                                   also)
        top, suv_max = _region_max(sub, region)
        return region, top, suv_max, level, background
    region, threshold, suv_max, background = adaptive_region(sub, peak, spacing, p.fraction, p.shell_mm, within, also)
    top, _ = _region_max(sub, region)
    return region, top, suv_max, threshold, background


def _region_max(pet: np.ndarray, region: np.ndarray) -> tuple[Index, float]:
    """The index of the hottest voxel of ``region`` and its SUV."""
    box = bounding_slices(region)
    values = np.where(region[box], np.nan_to_num(pet[box], nan=-np.inf), -np.inf)
    flat = int(np.argmax(values))
    index = tuple(int(v + b.start) for v, b in zip(np.unravel_index(flat, values.shape), box))
    return index, float(values.ravel()[flat])  # type: ignore[return-value]


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
