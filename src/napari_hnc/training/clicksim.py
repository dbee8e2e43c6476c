"""Simulated clicks and previous masks, for training and evaluating click-guided models.

The protocol is that of autoPET IV's interactive track (and of seed 002): the
first click lies at the lesion's centre of mass (the lesion voxel nearest to
it), every further click at the centre of the largest error region -- positive
in a missed part, negative in a false one -- where the centre is the region's
voxel farthest from its border. Earlier masks are simulated by perturbing the
truth (grown, shrunk, shifted, cut) or, in training, by the model's own output.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from ..inference.encoding import click_map
from ..inference.engines import touching_parts
from ..models.card import ClickEncoding

_FULL = np.ones((3, 3, 3), bool)
Point = tuple[int, int, int]


def region_centre(mask: np.ndarray, spacing: Sequence[float]) -> Point:
    """The voxel of ``mask`` farthest (in mm) from its border (of several, the one nearest their middle).

    >>> m = np.zeros((7, 3, 3), bool); m[1:6, :, :] = True
    >>> region_centre(m, (1.0, 1.0, 1.0))
    (3, 1, 1)
    """
    found = ndimage.find_objects(mask.astype(np.uint8))[0]
    padded = np.pad(mask[found], 1)
    depth = ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]
    deepest = np.argwhere(depth >= depth.max() - 1e-6)
    best = deepest[np.argmin(((deepest - deepest.mean(axis=0)) ** 2).sum(axis=1))]
    return tuple(int(b) + s.start for b, s in zip(best, found))  # type: ignore[return-value]


def error_click(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float]) -> tuple[Point, bool] | None:
    """The next click: the centre of the largest 26-connected error region, positive when it was missed.

    None when the prediction equals the truth.

    >>> truth = np.zeros((9, 9, 9), bool); truth[2:7, 2:7, 2:7] = True
    >>> pred = truth.copy(); pred[2:7, 2:7, 2:4] = False
    >>> error_click(pred, truth, (1.0, 1.0, 1.0))
    ((4, 4, 2), True)
    """
    best: tuple[int, np.ndarray, bool] | None = None
    for errors, positive in ((truth & ~pred, True), (pred & ~truth, False)):
        if not errors.any():
            continue
        components, _ = ndimage.label(errors, _FULL)
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        largest = int(np.argmax(sizes))
        if best is None or sizes[largest] > best[0]:
            best = (int(sizes[largest]), components == largest, positive)
    if best is None:
        return None
    return region_centre(best[1], spacing), best[2]


def perturb_mask(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An earlier, imperfect mask of a lesion: the truth grown, shrunk, shifted or cut by a plane."""
    kind, steps = rng.integers(4), int(rng.integers(1, 3))
    cross = ndimage.generate_binary_structure(3, 1)
    if kind == 1:
        for iterations in range(steps, 0, -1):
            shrunk = ndimage.binary_erosion(truth, cross, iterations=iterations)
            if shrunk.any():
                return shrunk
        kind = 0  # too small to shrink: grow it instead
    if kind == 0:
        return ndimage.binary_dilation(truth, cross, iterations=steps)
    if kind == 2:
        shift = rng.integers(-3, 4, size=3)
        return ndimage.shift(truth.astype(np.uint8), shift, order=0, mode="constant").astype(bool)
    points = np.argwhere(truth)
    if len(points) == 0:
        return truth.copy()
    normal = rng.normal(size=3)
    offset = (points - points.mean(axis=0)) @ normal
    cut = np.zeros_like(truth)
    keep = offset <= np.quantile(offset, rng.uniform(0.4, 0.8))
    cut[tuple(points[keep].T)] = True
    return cut


def keep_touching(mask: np.ndarray, points: Sequence[Point]) -> np.ndarray:
    """The 26-connected parts of ``mask`` that hold or touch one of ``points``: the session's first rule
    (it also takes a part that encloses a click or lies within 5 mm of it, and fills cavities; validation
    during training keeps to this one)."""
    if not len(points) or not mask.any():
        return mask if not len(points) else np.zeros_like(mask)
    components, _ = ndimage.label(mask, _FULL)
    return np.isin(components, list(touching_parts(components, np.asarray(points))))


def guidance(shape: Sequence[int], spacing: Sequence[float], positive: Sequence[Point], negative: Sequence[Point],
             previous: np.ndarray | None, encoding: ClickEncoding) -> np.ndarray:
    """The click-model channels (positive clicks, negative clicks, previous mask), float32 (3, X, Y, Z).

    >>> g = guidance((5, 5, 5), (2.5,) * 3, [(2, 2, 2)], [], None, ClickEncoding("edt", 10.0))
    >>> g.shape, float(g[0, 2, 2, 2]), float(g[1].max()), float(g[2].max())
    ((3, 5, 5, 5), 1.0, 0.0, 0.0)
    """
    shape = tuple(int(s) for s in shape)
    maps = [click_map(shape, spacing, np.asarray(points, float).reshape(-1, 3), encoding)
            for points in (positive, negative)]
    maps.append(np.zeros(shape, np.float32) if previous is None else np.asarray(previous, np.float32))
    return np.stack(maps)
