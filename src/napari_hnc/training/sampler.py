"""Patch sampling from cached cases: lesions oversampled, everything drawn from a numpy Generator.

A patch is cut around a centre voxel; parts outside the volume are filled
with the case's padding values (the bottom of the CT window, PET 0 scaled),
which is what the sliding window sees at a volume's border too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .cache import CachedCase


def extract(array: np.ndarray, centre: Sequence[int], size: Sequence[int], fill: float | Sequence[float] = 0.0) -> np.ndarray:
    """The box of ``size`` voxels of ``array`` (C, X, Y, Z) whose voxel ``size // 2`` is ``centre``; padded.

    Examples
    --------
    >>> a = np.arange(5, dtype=float).reshape(1, 5, 1, 1)
    >>> extract(a, (0, 0, 0), (4, 1, 1), fill=-1.0)[0, :, 0, 0].tolist()
    [-1.0, -1.0, 0.0, 1.0]
    """
    size = np.asarray(size, int)
    start = np.asarray(centre, int) - size // 2
    shape = np.asarray(array.shape[1:])
    lo, hi = np.maximum(start, 0), np.minimum(start + size, shape)
    channels = array.shape[0]
    fills = np.broadcast_to(np.asarray(fill, np.float32), (channels,))
    out = np.empty((channels, *size), np.float32)
    out[:] = fills[:, None, None, None]
    if np.all(hi > lo):
        src = (slice(None), *(slice(a, b) for a, b in zip(lo, hi)))
        dst = (slice(None), *(slice(a - s, b - s) for a, b, s in zip(lo, hi, start)))
        out[dst] = array[src]
    return out


def random_lesion_voxel(case: CachedCase, lesion_id: int, rng: np.random.Generator) -> np.ndarray:
    """A random voxel of lesion ``lesion_id`` (an id of ``case.components``)."""
    lesion = next(l for l in case.lesions if l["id"] == lesion_id)
    radius = int(np.ceil(np.cbrt(lesion["voxels"]) * 2)) + 2
    centre = np.asarray(lesion["centre"])
    lo = np.maximum(centre - radius, 0)
    hi = np.minimum(centre + radius + 1, case.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    points = np.argwhere(np.asarray(case.components[box]) == lesion_id)
    if len(points) == 0:  # a very elongated lesion: search the whole volume
        points, lo = np.argwhere(np.asarray(case.components) == lesion_id), np.zeros(3, int)
    return points[rng.integers(len(points))] + lo


def choose_centre(case: CachedCase, rng: np.random.Generator, patch: int, foreground_fraction: float) -> np.ndarray:
    """A patch centre: near a random lesion (chosen uniformly, so nodes count as much as primaries)
    with probability ``foreground_fraction``, else anywhere in the volume."""
    if case.lesions and rng.random() < foreground_fraction:
        lesion = case.lesions[rng.integers(len(case.lesions))]
        voxel = random_lesion_voxel(case, lesion["id"], rng)
        return voxel + rng.integers(-(patch // 4), patch // 4 + 1, size=3)
    return np.array([rng.integers(0, n) for n in case.shape])
