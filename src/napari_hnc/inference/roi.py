"""A region of interest for click refinement: a box of the label grid and the model grid over it.

The model grid (the card's spacing and patch size, about 64^3 voxels) is
centred on the first click of a lesion; the ROI's label-grid slices are the
label voxels whose centres lie inside it. Everything a refinement writes stays
inside these slices.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np

from ..geometry import Volume
from .gridmap import AxisMap, interpolate
from .preprocess import Grid, grid_around


@dataclass(frozen=True, eq=False)
class Roi:
    """Slices of the label grid, the affine of that crop, and the model grid covering it."""

    slices: tuple[slice, slice, slice]
    label_affine: np.ndarray
    grid: Grid

    @property
    def start(self) -> np.ndarray:
        return np.array([s.start for s in self.slices])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(s.stop - s.start for s in self.slices)  # type: ignore[return-value]

    @property
    def label_grid(self) -> Grid:
        return Grid(self.label_affine, self.shape)

    def contains(self, index: Sequence[int]) -> bool:
        """True when a label-grid voxel index lies in the ROI."""
        return all(s.start <= int(i) < s.stop for s, i in zip(self.slices, index))

    def contains_box(self, box: Sequence[slice]) -> bool:
        return all(r.start <= b.start and b.stop <= r.stop for r, b in zip(self.slices, box))

    def local(self, index: Sequence[int]) -> tuple[int, int, int]:
        """A label-grid index in ROI coordinates."""
        return tuple(int(i) - int(s.start) for i, s in zip(index, self.slices))  # type: ignore[return-value]

    def to_model(self, local_points: np.ndarray) -> np.ndarray:
        """ROI voxel coordinates (N, 3) -> model-grid voxel coordinates."""
        pts = np.asarray(local_points, float).reshape(-1, 3)
        mapping = np.linalg.inv(self.grid.affine) @ self.label_affine
        return pts @ mapping[:3, :3].T + mapping[:3, 3]

    @cached_property
    def _to_model_map(self) -> AxisMap:
        return AxisMap.between(self.label_affine, self.grid.affine)

    @cached_property
    def _to_label_map(self) -> AxisMap:
        return AxisMap.between(self.grid.affine, self.label_affine)

    def mask_to_model(self, mask: np.ndarray) -> np.ndarray:
        """A ROI mask (label grid) as a float map on the model grid (linear interpolation)."""
        full = tuple(slice(0, n) for n in self.grid.shape)
        return interpolate(mask[None].astype(np.float32), self._to_model_map, full)[0]  # type: ignore[arg-type]

    def to_label(self, values: np.ndarray) -> np.ndarray:
        """A model-grid map (X, Y, Z) interpolated onto the ROI's label voxels (0 outside the model grid)."""
        full = tuple(slice(0, n) for n in self.shape)
        return interpolate(values[None], self._to_label_map, full)[0]  # type: ignore[arg-type]


def roi_around(label_grid: Volume, centre_world: Sequence[float], spacing: Sequence[float], shape: Sequence[int]) -> Roi:
    """The ROI whose model grid (``shape`` voxels of ``spacing`` mm) is centred on a world point.

    >>> import numpy as np
    >>> from napari_hnc.geometry import Volume
    >>> ct = Volume(np.zeros((100, 100, 40), np.int16), np.diag([1.0, 1.0, 2.5, 1.0]))
    >>> roi = roi_around(ct, (50.0, 50.0, 50.0), (2.5, 2.5, 2.5), (8, 8, 8))
    >>> roi.slices
    (slice(42, 59, None), slice(42, 59, None), slice(17, 24, None))
    """
    return roi_over(label_grid, grid_around(label_grid, spacing, centre_world, shape))


def roi_over(label_grid: Volume, grid: Grid) -> Roi:
    """The ROI of the label voxels whose centres lie inside a model grid."""
    corners = label_grid.world_to_voxel(grid.corners_world())
    start = np.clip(np.ceil(corners.min(axis=0) - 1e-6).astype(int), 0, label_grid.shape)
    stop = np.clip(np.floor(corners.max(axis=0) + 1e-6).astype(int) + 1, 0, label_grid.shape)
    stop = np.maximum(stop, start)
    slices = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
    affine = label_grid.affine.copy()
    affine[:3, 3] = label_grid.voxel_to_world(start.astype(float))
    return Roi(slices, affine, grid)  # type: ignore[arg-type]


def grown(label_grid: Volume, roi: Roi, lo: Sequence[int], hi: Sequence[int]) -> Roi:
    """``roi`` with its model grid extended by ``lo`` / ``hi`` model voxels below / above each axis.

    >>> import numpy as np
    >>> from napari_hnc.geometry import Volume
    >>> ct = Volume(np.zeros((100, 100, 40), np.int16), np.diag([1.0, 1.0, 2.5, 1.0]))
    >>> roi = grown(ct, roi_around(ct, (50.0, 50.0, 50.0), (2.5, 2.5, 2.5), (8, 8, 8)), (2, 0, 0), (0, 0, 1))
    >>> roi.grid.shape, roi.slices
    ((10, 8, 9), (slice(37, 59, None), slice(42, 59, None), slice(17, 25, None)))
    """
    affine = roi.grid.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.asarray(lo, float)
    shape = tuple(int(n + a + b) for n, a, b in zip(roi.grid.shape, lo, hi))
    return roi_over(label_grid, Grid(affine, shape))  # type: ignore[arg-type]


def room(label_grid: Volume, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """How many model voxels lie between each side of ``grid`` and the end of the label grid (below, above)."""
    corners = Grid(label_grid.affine, label_grid.shape).corners_world()
    inside = (corners - grid.affine[:3, 3]) @ np.linalg.inv(grid.affine[:3, :3]).T
    lo, hi = inside.min(axis=0), inside.max(axis=0)
    below = np.maximum(np.floor(-lo + 1e-6), 0).astype(int)
    above = np.maximum(np.floor(hi - (np.asarray(grid.shape) - 1) + 1e-6), 0).astype(int)
    return below, above
