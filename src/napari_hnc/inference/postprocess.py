"""From probabilities on the model grid to labels on the label (CT) grid.

Probabilities are interpolated (linearly) onto the label grid *before* the
argmax, as the issue and seed 004 ask, but only where a lesion class can win:
class ``c`` needs ``p_c >= 1 / K`` at a label voxel, and a linearly
interpolated value is a weighted mean of its 8 model-grid neighbours, so the
model voxels with some ``p_c >= 1 / K``, dilated by one voxel, bound every
voxel that can become a lesion. Each such region is interpolated on its own
box of the label grid; everything else stays background. Because the model
grid shares the label grid's axes (re-ordered, re-scaled), the interpolation is
separable (:mod:`.gridmap`).
"""

from __future__ import annotations

import logging
import numpy as np
from scipy import ndimage

from ..geometry import Volume
from .gridmap import AxisMap, interpolate
from .preprocess import Grid

log = logging.getLogger(__name__)


def lesion_boxes(probs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Model-grid index boxes (lo, hi inclusive) of the regions where a lesion class can win."""
    classes = probs.shape[0]
    possible = probs[1:].max(axis=0) >= (1.0 / classes) - 1e-6
    if not possible.any():
        return []
    possible = ndimage.binary_dilation(possible, np.ones((3, 3, 3), bool))
    labelled, _ = ndimage.label(possible)
    return [
        (np.array([s.start for s in found]), np.array([s.stop - 1 for s in found]))
        for found in ndimage.find_objects(labelled)
        if found is not None
    ]


def probabilities_to_labels(probs: np.ndarray, grid: Grid, label_grid: Volume, *, min_region_ml: float = 0.0,
                            region: tuple[slice, slice, slice] | None = None) -> np.ndarray:
    """Labels (uint8) on ``label_grid`` (or on its ``region``) from model-grid probabilities (K, *grid.shape).

    A label voxel takes the class of the highest interpolated probability;
    connected regions smaller than ``min_region_ml`` are then removed.
    """
    amap = AxisMap.between(grid.affine, label_grid.affine)
    region = region or tuple(slice(0, s) for s in label_grid.shape)
    origin = np.array([s.start for s in region])
    region_shape = tuple(s.stop - s.start for s in region)
    labels = np.zeros(region_shape, np.uint8)
    boxes = []
    for lo, hi in lesion_boxes(probs):
        box = amap.source_box_to_target(lo, hi, label_grid.shape)
        box = tuple(slice(max(b.start, r.start), min(b.stop, r.stop)) for b, r in zip(box, region))
        if any(b.stop <= b.start for b in box):
            continue
        fg = interpolate(probs[1:], amap, box)  # type: ignore[arg-type]
        scores = np.concatenate([1.0 - fg.sum(axis=0, keepdims=True), fg])
        local = tuple(slice(b.start - o, b.stop - o) for b, o in zip(box, origin))
        labels[local] = np.maximum(labels[local], scores.argmax(axis=0).astype(np.uint8))
        boxes.append(local)
    if min_region_ml > 0 and boxes:
        union = tuple(slice(min(b[d].start for b in boxes), max(b[d].stop for b in boxes)) for d in range(3))
        remove_small_regions(labels[union], label_grid.voxel_volume_ml, min_region_ml)
    return labels


def remove_small_regions(labels: np.ndarray, voxel_ml: float, min_ml: float) -> np.ndarray:
    """Set connected regions (per class, 26-connected) smaller than ``min_ml`` to 0, in place.

    >>> a = np.zeros((5, 5, 5), np.uint8); a[0, 0, 0] = 1; a[2:5, 2:5, 2:5] = 2
    >>> int(remove_small_regions(a, voxel_ml=0.01, min_ml=0.05).sum())
    54
    """
    min_voxels = min_ml / voxel_ml
    for value in np.unique(labels):
        if value == 0:
            continue
        components, count = ndimage.label(labels == value, np.ones((3, 3, 3), bool))
        sizes = np.bincount(components.ravel())
        small = np.flatnonzero(sizes < min_voxels)
        small = small[small > 0]
        if small.size:
            labels[np.isin(components, small)] = 0
            log.debug("removed %d region(s) of class %d below %.3g ml", small.size, value, min_ml)
    return labels
