"""Where a click's lesion starts: the hottest voxel near the click, or the hot rim around a cold centre.

A click at the centre of a large lesion often lands in its necrotic core, which
is cold on PET: the hottest voxel within the snapping distance is background-like.
:func:`find_peak` then looks along rays in every direction from the click for the
lesion's rim: when most rays meet one connected hot structure, the click lies in
its cavity and the lesion starts at that structure's hottest voxel near the click.
A click in air or cold tissue meets no such rim and is refused.

Examples
--------
A hot shell (SUV 8) around a cold core (SUV 0.5), clicked at the centre:

>>> import numpy as np
>>> from napari_hnc.pet.params import SeedParams
>>> z, y, x = np.indices((41, 41, 41)) - 20
>>> r = np.sqrt(x**2 + y**2 + z**2)
>>> pet = np.where(r <= 15, 8.0, 1.0).astype(np.float32)
>>> pet[r <= 10] = 0.5
>>> peak, enclosed = find_peak(pet, (20, 20, 20), (1.0, 1.0, 1.0), SeedParams.create("percent"))
>>> enclosed, float(pet[peak])
(True, 8.0)
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np

from ..errors import ClickError
from .grow import Index
from .params import COLD_CENTRE_REACH_MM, SeedParams
from .thresholds import ball, ball_window, snap_to_peak

#: Rays cast from a cold click, and the share of them that must meet one hot structure.
RAYS = 98
ENCLOSED_FRACTION = 0.7


@lru_cache(maxsize=4)
def ray_directions(n: int = RAYS) -> np.ndarray:
    """``n`` unit vectors spread evenly over the sphere (a Fibonacci lattice), (n, 3).

    >>> d = ray_directions(10)
    >>> d.shape, bool(np.allclose(np.linalg.norm(d, axis=1), 1.0))
    ((10, 3), True)
    """
    i = np.arange(n) + 0.5
    phi, z = np.pi * (1.0 + 5.0**0.5) * i, 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z**2)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def find_peak(pet: np.ndarray, seed: Index, spacing: Sequence[float], params: SeedParams) -> tuple[Index, bool]:
    """The voxel a click's lesion grows from, and whether the click lay in a cold cavity of it.

    The peak of the click's own lesion within ``params.snap_mm``
    (:func:`local_peak`: uphill from the click, so a hotter neighbour that is
    nearer than the snapping distance does not take the click); else the hottest
    voxel within ``snap_mm``; either when it has uptake (at least
    :attr:`SeedParams.uptake_limit`). Failing both, the hottest voxel near the
    click of the hot rim that encloses it (:func:`enclosing_peak`). Raises
    :class:`ClickError` (with the reason) when there is none.
    """
    limit, name = params.uptake_limit
    peak = local_peak(pet, seed, spacing, params.snap_mm)
    if math.isfinite(float(pet[peak])) and float(pet[peak]) >= limit:
        return peak, False
    peak = snap_to_peak(pet, seed, spacing, params.snap_mm)
    value = float(pet[peak])
    if not math.isfinite(value):
        raise ClickError("the click lies outside the PET's field of view (no PET values there); click inside the PET")
    if value >= limit:
        return peak, False
    rim = enclosing_peak(pet, seed, spacing, limit)
    if rim is not None:
        return rim, True
    near = f"within {params.snap_mm:g} mm of it" if params.snap_mm > 0 else "at it"
    fix = "lower the threshold" if params.method == "fixed" else f"lower {name} to delineate a faint one"
    raise ClickError(
        f"no uptake at the click: the hottest voxel {near} has SUV {value:.2f}, below {name} = {limit:g}, "
        f"and no lesion rim surrounds it. Click on a hot lesion (or {fix})"
    )


#: Smoothing (mm, Gaussian sigma) of the PET the uphill search from a click follows (noise makes false tops).
CLIMB_SIGMA_MM = 1.5


def local_peak(pet: np.ndarray, seed: Index, spacing: Sequence[float], radius_mm: float) -> Index:
    """The top of the hill the click is on: uphill from ``seed`` (on the PET lightly smoothed), within ``radius_mm``.

    The hottest voxel within 2 mm of where the climb ends is returned. ``radius_mm``
    = 0 returns ``seed``. On a flat neighbourhood the climb does not move.

    >>> x = np.arange(30.0)
    >>> pet = (6 * np.exp(-(x - 10) ** 2 / 8) + 9 * np.exp(-(x - 17) ** 2 / 8))[None, None, :].astype(np.float32)
    >>> local_peak(pet, (0, 0, 11), (1.0, 1.0, 1.0), 7.0)  # the hotter peak 6 mm away does not take the click
    (0, 0, 10)
    """
    from scipy import ndimage

    if radius_mm <= 0:
        return seed
    spacing = np.asarray(spacing, float)
    box = ball_window(pet.shape, seed, spacing, radius_mm + 2.0 * CLIMB_SIGMA_MM)
    values = np.asarray(pet[box], np.float64)
    missing = ~np.isfinite(values)
    raw = np.where(missing, -np.inf, values)
    smooth = ndimage.gaussian_filter(np.where(missing, 0.0, values), CLIMB_SIGMA_MM / spacing, mode="nearest")
    local = [int(c - b.start) for c, b in zip(seed, box)]
    smooth[missing | ~ball(smooth.shape, local, spacing, radius_mm)] = -np.inf
    top = climb(smooth, tuple(local))  # type: ignore[arg-type]
    near = ball(raw.shape, top, spacing, 2.0) & np.isfinite(smooth)
    best = np.unravel_index(int(np.argmax(np.where(near, raw, -np.inf))), raw.shape)
    return tuple(int(v + b.start) for v, b in zip(best, box))  # type: ignore[return-value]


def enclosing_peak(pet: np.ndarray, seed: Index, spacing: Sequence[float], limit: float,
                   reach_mm: float = COLD_CENTRE_REACH_MM) -> Index | None:
    """The hottest voxel of the hot structure (SUV >= ``limit``) that encloses a cold ``seed``, or None.

    Enclosed means: of the :data:`RAYS` rays from ``seed`` (up to ``reach_mm``),
    at least :data:`ENCLOSED_FRACTION` meet the same 26-connected hot structure
    first. The peak returned is that structure's hottest voxel within the
    farthest hit distance (plus a voxel) of the seed, so a rim that joins distant
    uptake does not carry the lesion there.
    """
    from scipy import ndimage

    spacing = np.asarray(spacing, float)
    box = ball_window(pet.shape, seed, spacing, reach_mm)
    sub = np.asarray(pet[box])
    origin = np.array([s.start for s in box])
    hot = np.nan_to_num(sub, nan=-np.inf) >= limit
    if not hot.any():
        return None
    parts, _ = ndimage.label(hot, structure=np.ones((3, 3, 3), bool))
    local = np.asarray(seed) - origin
    hits, distances = _first_hits(parts, local, spacing, reach_mm)
    if not hits.size:
        return None
    labels, counts = np.unique(hits, return_counts=True)
    if counts.max() < ENCLOSED_FRACTION * RAYS:
        return None
    rim = parts == labels[int(np.argmax(counts))]
    near = ball(sub.shape, local, spacing, float(distances.max()) + float(spacing.max()))
    values = np.where(rim & near, sub, -np.inf)
    best = np.unravel_index(int(np.argmax(values)), sub.shape)
    return tuple(int(v + o) for v, o in zip(best, origin))  # type: ignore[return-value]


def _first_hits(parts: np.ndarray, origin: np.ndarray, spacing: np.ndarray, reach_mm: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """For each ray from ``origin``, the label of the first labelled voxel it meets and at what distance (mm)."""
    step = 0.5 * float(spacing.min())
    t = np.arange(step, reach_mm + step, step)
    points = origin[None, None, :] + t[None, :, None] * ray_directions()[:, None, :] / spacing[None, None, :]
    index = np.rint(points).astype(int)
    inside = np.all((index >= 0) & (index < np.array(parts.shape)), axis=2)
    clipped = np.clip(index, 0, np.array(parts.shape) - 1)
    labels = np.where(inside, parts[clipped[..., 0], clipped[..., 1], clipped[..., 2]], 0)
    met = labels > 0
    first = np.argmax(met, axis=1)
    found = met[np.arange(len(first)), first]
    return labels[np.arange(len(first)), first][found], t[first][found]


def climb(pet: np.ndarray, index: Index) -> Index:
    """The local maximum reached from ``index`` by steepest ascent over the 26 neighbours (NaN never wins).

    >>> pet = np.zeros((1, 1, 7), np.float32); pet[0, 0] = [0, 1, 2, 3, 9, 4, 0]
    >>> climb(pet, (0, 0, 1))
    (0, 0, 4)
    """
    values = np.nan_to_num(np.asarray(pet, np.float64), nan=-np.inf)
    here = tuple(int(i) for i in index)
    shape = np.array(values.shape)
    for _ in range(int(shape.sum()) * 2):
        lo = np.maximum(np.array(here) - 1, 0)
        hi = np.minimum(np.array(here) + 2, shape)
        near = values[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        best = np.unravel_index(int(np.argmax(near)), near.shape)
        step = tuple(int(b + l) for b, l in zip(best, lo))
        if near[best] <= values[here]:
            break
        here = step
    return here  # type: ignore[return-value]
