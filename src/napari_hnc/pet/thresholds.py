"""The threshold rules behind a click: snapping, fixed SUV, percent of SUVmax, background-adapted.

All functions work on a PET array (SUV) with its voxel spacing in mm; regions are
26-connected and confined to a ``within`` mask (the bound around the click).
NaN voxels (outside the PET's field of view) never belong to a region.

Examples
--------
>>> import numpy as np
>>> pet = np.ones((9, 9, 9), np.float32)
>>> pet[3:6, 3:6, 3:6] = 10.0
>>> pet[4, 4, 4] = 20.0
>>> snap_to_peak(pet, (3, 3, 3), (1.0, 1.0, 1.0), 2.0)
(4, 4, 4)
>>> region, suv_max, peak = percent_region(pet, (4, 4, 4), 41.0)
>>> int(region.sum()), float(suv_max)
(27, 20.0)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import ClickError
from .grow import Index, bounding_slices, flood_component

#: Most iterations of the SUVmax / background refinements (they converge in 2-3).
MAX_ITERATIONS = 10
#: Voxel size (mm) of the grid the background shell is sampled on.
SHELL_GRID_MM = 2.0
#: A lesion's SUVmax is a hotter voxel only if the click's peak joins it at this fraction of it (the same hill).
HILL = 0.6


def ball(shape: Sequence[int], center: Sequence[float], spacing: Sequence[float], radius_mm: float) -> np.ndarray:
    """Voxels of an array of ``shape`` whose centres lie within ``radius_mm`` of ``center`` (an index).

    >>> int(ball((5, 5, 5), (2, 2, 2), (1.0, 1.0, 1.0), 1.0).sum())
    7
    """
    axes = [((np.arange(n) - c) * s) ** 2 for n, c, s in zip(shape, center, spacing)]
    return (axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]) <= radius_mm**2


def ball_window(shape: Sequence[int], center: Sequence[int], spacing: Sequence[float], radius_mm: float) -> tuple[slice, ...]:
    """The box (clipped to ``shape``) holding the ball of ``radius_mm`` around ``center``.

    >>> ball_window((100, 100, 10), (50, 2, 5), (1.0, 1.0, 3.0), 4.0)
    (slice(46, 55, None), slice(0, 7, None), slice(4, 7, None))
    """
    reach = [int(math.floor(radius_mm / s + 1e-9)) for s in spacing]
    return tuple(slice(max(c - r, 0), min(c + r + 1, n)) for c, r, n in zip(center, reach, shape))


def snap_to_peak(
    pet: np.ndarray,
    seed: Index,
    spacing: Sequence[float],
    radius_mm: float,
    *,
    lower: float = -np.inf,
    upper: float = np.inf,
) -> Index:
    """The hottest voxel within ``radius_mm`` of ``seed`` whose SUV lies in ``[lower, upper]``.

    ``radius_mm`` = 0 returns ``seed`` itself. Raises :class:`ClickError` when no
    voxel qualifies (the neighbourhood lies outside the PET, or outside the interval).
    """
    if radius_mm <= 0:
        return seed
    box = ball_window(pet.shape, seed, spacing, radius_mm)
    values = np.array(pet[box], dtype=np.float64)
    local = [c - s.start for c, s in zip(seed, box)]
    allowed = ball(values.shape, local, spacing, radius_mm) & (values >= lower) & (values <= upper)
    if not allowed.any():
        where = "has no PET values (outside the PET's field of view)" if np.isnan(values).all() else (
            f"has no voxel with SUV in [{lower:g}, {upper:g}]")
        raise ClickError(f"the neighbourhood ({radius_mm:g} mm) of the click {where}; click on the lesion")
    values[~allowed] = -np.inf
    flat = int(np.argmax(values))
    return tuple(int(v + s.start) for v, s in zip(np.unravel_index(flat, values.shape), box))  # type: ignore[return-value]


def threshold_region(pet: np.ndarray, peak: Index, threshold: float, within: np.ndarray | None = None,
                     box: tuple[slice, ...] | None = None, also: Sequence[Index] = ()) -> np.ndarray:
    """The 26-connected region with SUV >= ``threshold`` holding ``peak`` (and ``also``), inside ``within`` and ``box``.

    ``also`` are further seeds (the clicked voxel): a part they hold joins when they are above the threshold.
    """
    box = box or tuple(slice(0, n) for n in pet.shape)
    allowed = pet[box] >= threshold
    if within is not None:
        allowed &= within[box]
    out = np.zeros(pet.shape, bool)
    for seed in (peak, *also):
        local = tuple(p - s.start for p, s in zip(seed, box))
        if all(0 <= v < n for v, n in zip(local, allowed.shape)) and allowed[local] and not out[box][local]:
            out[box] |= flood_component(allowed, local)  # type: ignore[arg-type]
    return out


def percent_region(pet: np.ndarray, peak: Index, percent: float, within: np.ndarray | None = None,
                   background: float = 0.0, floor: float = 0.0, also: Sequence[Index] = ()) -> tuple[np.ndarray, float, Index]:
    """Region at ``percent`` % of the lesion's SUVmax: ``(mask, suv_max, index of suv_max)``.

    With a ``background``, the level is ``background + percent % (SUVmax - background)``;
    it is never below ``floor`` (the least SUV that counts as uptake: for a faint
    lesion 41 % of SUVmax would be background).
    The lesion's SUVmax is found by iterating: the region at that level of the
    hottest voxel found so far, then the hottest voxel of that region, until it
    stops rising. Each pass only looks inside the previous region (the level only
    rises), and only climbs to a hotter voxel that ``peak`` joins at :data:`HILL`
    (60 %) of it: a hotter structure joined at a lower level (a touching hotter
    lesion, physiological uptake) never sets the lesion's SUVmax or pulls the
    lesion away from the click.

    >>> pet = np.zeros((1, 1, 9), np.float32)
    >>> pet[0, 0, :] = [1, 5, 9, 5, 3, 8, 20, 8, 1]   # the click's lesion (9), joined at 3 to a hotter one (20)
    >>> region, suv_max, _ = percent_region(pet, (0, 0, 2), 41.0)
    >>> region[0, 0].astype(int).tolist(), float(suv_max)   # 20 lies beyond a dip: 41 % of 9
    ([0, 1, 1, 1, 0, 0, 0, 0, 0], 9.0)
    """
    start = peak
    suv_max = float(pet[peak])
    fraction = percent / 100.0

    def level(top: float) -> float:
        return min(max(background + fraction * (top - background), floor), top)

    region = threshold_region(pet, peak, level(suv_max), within, also=also)
    for _ in range(MAX_ITERATIONS):
        box = bounding_slices(region)
        values = np.where(region[box], pet[box], -np.inf)
        top = float(values.max())
        if top <= suv_max:
            break
        hottest = tuple(int(v + s.start) for v, s in zip(np.unravel_index(int(np.argmax(values)), values.shape), box))
        same_hill = threshold_region(pet, hottest, HILL * top, within, box)  # type: ignore[arg-type]
        if not same_hill[start]:
            break  # a hotter lesion (or a hot spot of another part) beyond a dip: not this lesion's SUVmax
        higher = threshold_region(pet, hottest, level(top), within, box, also)  # type: ignore[arg-type]
        suv_max, peak, region = top, hottest, higher  # type: ignore[assignment]
    return region, suv_max, peak


def shell_background(pet: np.ndarray, lesion: np.ndarray, spacing: Sequence[float],
                     shell_mm: tuple[float, float]) -> float:
    """Median SUV of the voxels between ``shell_mm[0]`` and ``shell_mm[1]`` mm from ``lesion``.

    The shell is taken on a grid of about 2 mm (every second voxel of a 1 mm CT
    grid): the median of a centimetre-thick shell does not need more, and the
    distance transform costs a quarter. Raises :class:`ClickError` when the shell
    holds no PET values (the lesion fills the array).
    """
    from scipy import ndimage

    inner, outer = shell_mm
    pad = [int(math.ceil(outer / s)) + 1 for s in spacing]
    box = bounding_slices(lesion, pad)
    if box is None:
        raise ClickError("an empty lesion has no background shell")
    stride = [max(1, int(SHELL_GRID_MM // s)) for s in spacing]
    step = tuple(slice(b.start, b.stop, k) for b, k in zip(box, stride))
    coarse = [s * k for s, k in zip(spacing, stride)]
    distance = ndimage.distance_transform_edt(~lesion[step], sampling=coarse)
    shell = (distance > inner) & (distance <= outer)
    values = pet[step][shell]
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ClickError(
            f"no PET values lie {inner:g}-{outer:g} mm around the lesion to estimate the background; "
            "give a larger region around the click, or use method='percent'"
        )
    return float(np.median(values))


def adaptive_region(pet: np.ndarray, peak: Index, spacing: Sequence[float], fraction: float,
                    shell_mm: tuple[float, float], within: np.ndarray | None = None, also: Sequence[Index] = ()
                    ) -> tuple[np.ndarray, float, float, float]:
    """Background-adapted region T = bg + f (SUVmax - bg): ``(mask, threshold, suv_max, background)``.

    The lesion starts as the region at ``fraction`` of SUVmax; bg is the median SUV
    in the shell around it, and the two are refined together until the threshold
    moves by less than 0.5 %. SUVmax is found as in :func:`percent_region` (never
    leaving the click's peak). Raises :class:`ClickError` when the lesion is not
    hotter than its background.
    """
    region, suv_max, top = percent_region(pet, peak, 100.0 * fraction, within, also=also)
    threshold = fraction * suv_max
    background = float("nan")
    for _ in range(MAX_ITERATIONS):
        background = shell_background(pet, region, spacing, shell_mm)
        check_hotter(suv_max, background, shell_mm)
        region, suv_max, top = percent_region(pet, peak, 100.0 * fraction, within, background, also=also)
        new = background + fraction * (suv_max - background)
        done = abs(new - threshold) <= 0.005 * threshold
        threshold = new
        if done:
            break
    return region, threshold, suv_max, background


def check_hotter(suv: float, background: float, shell_mm: tuple[float, float]) -> None:
    """:class:`ClickError` when a lesion's uptake ``suv`` is not above its ``background``."""
    if background >= suv:
        raise ClickError(
            f"the lesion (SUVmax {suv:.2f}) is not hotter than its surroundings (median SUV "
            f"{background:.2f} {shell_mm[0]:g}-{shell_mm[1]:g} mm around it): there is no uptake to "
            "delineate here; click on a hot lesion"
        )
