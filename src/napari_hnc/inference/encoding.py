"""Click encodings: input channels for positive / negative clicks on a model grid.

Two encodings (Rokuss et al. 2025 found distance-based maps better than
Gaussians for PET):

* ``"edt"``: ``max(0, 1 - d / radius)``, with ``d`` the distance in mm to the
  nearest click -- 1 on the click, falling linearly to 0 at ``radius``;
* ``"disk"``: 1 within ``radius`` mm of a click, 0 elsewhere.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..models.card import ClickEncoding

#: Above this many points the map is computed with a distance transform instead of point by point.
_DIRECT_LIMIT = 32


def distance_to_points(shape, spacing, points) -> np.ndarray:
    """Distance (mm) from every voxel of a grid to the nearest of ``points`` (voxel coordinates, (N, 3)).

    >>> d = distance_to_points((5, 1, 1), (2.0, 1.0, 1.0), [[1, 0, 0]])
    >>> d[:, 0, 0].tolist()
    [2.0, 0.0, 2.0, 4.0, 6.0]
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    spacing = np.asarray(spacing, dtype=np.float64)
    if len(points) > _DIRECT_LIMIT:
        return _distance_transform(shape, spacing, points)
    axes = [np.arange(n, dtype=np.float64) * s for n, s in zip(shape, spacing)]
    best = np.full(shape, np.inf, dtype=np.float64)
    for point in points * spacing:
        d2 = (
            ((axes[0] - point[0]) ** 2)[:, None, None]
            + ((axes[1] - point[1]) ** 2)[None, :, None]
            + ((axes[2] - point[2]) ** 2)[None, None, :]
        )
        np.minimum(best, d2, out=best)
    return np.sqrt(best)


def _distance_transform(shape, spacing, points) -> np.ndarray:
    marks = np.ones(shape, dtype=bool)
    idx = np.rint(points).astype(int)
    inside = np.all((idx >= 0) & (idx < np.asarray(shape)), axis=1)
    if not inside.any():
        return np.full(shape, np.inf)
    marks[tuple(idx[inside].T)] = False
    return ndimage.distance_transform_edt(marks, sampling=spacing)


def click_map(shape, spacing, points, encoding: ClickEncoding) -> np.ndarray:
    """One click channel (float32) for ``points`` (voxel coordinates on the grid; may be empty).

    >>> from napari_hnc.models.card import ClickEncoding
    >>> m = click_map((5, 1, 1), (2.0, 1.0, 1.0), [[1, 0, 0]], ClickEncoding("edt", radius_mm=4.0))
    >>> m[:, 0, 0].tolist()
    [0.5, 1.0, 0.5, 0.0, 0.0]
    >>> float(click_map((3, 1, 1), (1.0, 1.0, 1.0), [], ClickEncoding()).sum())
    0.0
    """
    if len(points) == 0:
        return np.zeros(shape, np.float32)
    distance = distance_to_points(shape, spacing, points)
    if encoding.kind == "disk":
        return (distance <= encoding.radius_mm).astype(np.float32)
    return np.clip(1.0 - distance / encoding.radius_mm, 0.0, 1.0).astype(np.float32)
