"""Maps between grids whose axes are parallel (a model grid and the label grid), and separable
linear interpolation between them: three 1D passes instead of a general 3D resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import GeometryError


@dataclass(frozen=True)
class AxisMap:
    """Target-grid voxel index ``i`` along axis ``d`` -> source-grid index ``scale[d] * i + offset[d]``
    along source axis ``source_axis[d]``, for two grids whose axes are parallel."""

    source_axis: tuple[int, int, int]
    scale: np.ndarray
    offset: np.ndarray

    @classmethod
    def between(cls, source_affine: np.ndarray, target_affine: np.ndarray) -> "AxisMap":
        """The map from ``target`` voxel indices to ``source`` voxel indices."""
        mapping = np.linalg.inv(source_affine) @ target_affine
        linear = mapping[:3, :3]
        axes = np.abs(linear).argmax(axis=0)
        scale = linear[axes, np.arange(3)]
        residual = linear.copy()
        residual[axes, np.arange(3)] = 0.0
        if len(set(axes.tolist())) != 3 or np.abs(residual).max() > 1e-6 * np.abs(scale).max():
            raise GeometryError("the two grids' axes are not parallel; build model grids with grid_over_box/grid_around")
        return cls(tuple(int(a) for a in axes), scale, mapping[axes, 3])  # type: ignore[arg-type]

    def source_box_to_target(self, lo: np.ndarray, hi: np.ndarray, shape) -> tuple[slice, slice, slice]:
        """Target-grid slices covering source indices ``lo..hi`` (per source axis), clipped to ``shape``."""
        out = []
        for d in range(3):
            a = self.source_axis[d]
            ends = (np.array([lo[a], hi[a]], float) - self.offset[d]) / self.scale[d]
            start = max(int(np.floor(ends.min())), 0)
            stop = min(int(np.ceil(ends.max())) + 1, shape[d])
            out.append(slice(start, max(start, stop)))
        return tuple(out)  # type: ignore[return-value]


def interpolate(source: np.ndarray, amap: AxisMap, box: tuple[slice, slice, slice]) -> np.ndarray:
    """Linear interpolation of ``source`` (C, *source grid) onto a box of the target grid; 0 outside.

    >>> src = np.arange(4, dtype=np.float32)[None, :, None, None] * np.ones((1, 4, 1, 1), np.float32)
    >>> amap = AxisMap((0, 1, 2), np.array([0.5, 1.0, 1.0]), np.zeros(3))
    >>> interpolate(src, amap, (slice(0, 7), slice(0, 1), slice(0, 1)))[0, :, 0, 0].tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    """
    order = [amap.source_axis[d] for d in range(3)]
    data = np.transpose(source, [0] + [a + 1 for a in order]).astype(np.float32, copy=False)
    passes = sorted(range(3), key=lambda d: (box[d].stop - box[d].start) / max(data.shape[d + 1], 1))
    for d in passes:
        index = np.arange(box[d].start, box[d].stop, dtype=np.float64) * amap.scale[d] + amap.offset[d]
        data = _linear_along(data, d + 1, index)
    return data


def _linear_along(data: np.ndarray, axis: int, coords: np.ndarray) -> np.ndarray:
    size = data.shape[axis]
    padded = np.concatenate(
        [np.zeros_like(np.take(data, [0], axis=axis)), data, np.zeros_like(np.take(data, [0], axis=axis))], axis=axis
    )
    coords = np.clip(coords + 1.0, 0.0, size + 1.0)
    low = np.minimum(np.floor(coords).astype(np.intp), size)
    weight = (coords - low).astype(np.float32)
    shape = [1] * data.ndim
    shape[axis] = -1
    weight = weight.reshape(shape)
    return np.take(padded, low, axis=axis) * (1.0 - weight) + np.take(padded, low + 1, axis=axis) * weight
