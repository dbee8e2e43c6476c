"""Lesions as connected components, and the operations a reader applies to them.

A **lesion** is a 26-connected component of the voxels of one class (1 primary
tumour, 2 lymph node) in a labels array. The operations follow the
post-processing of Rainio et al. 2024 (keep the components a click lies in) and
Nikulin et al. 2023 (drop regions under 0.1 ml). Every function returns a new
array; the input is never changed.

Examples
--------
>>> import numpy as np
>>> labels = np.zeros((6, 6, 6), np.uint8)
>>> labels[0:2, 0:2, 0:2] = 1
>>> labels[4:6, 4:6, 4:6] = 2
>>> [(l.label, l.n_voxels) for l in iter_lesions(labels)]
[(1, 8), (2, 8)]
>>> kept = keep_lesions(labels, [(5, 5, 5)])
>>> sorted(np.unique(kept).tolist())
[0, 2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from .grow import check_index, flood_component

#: 26-connectivity: voxels sharing a face, an edge or a corner are connected.
STRUCTURE_26 = np.ones((3, 3, 3), bool)


@dataclass(frozen=True)
class Lesion:
    """One connected component of one class: its bounding box and its mask inside the box."""

    label: int
    box: tuple[slice, ...]
    mask: np.ndarray
    id: int = 0  # its instance id (0: a connected component with no instance map)

    @property
    def n_voxels(self) -> int:
        return int(self.mask.sum())


def iter_lesions(labels: np.ndarray, classes: Iterable[int] | None = None) -> Iterator[Lesion]:
    """The lesions of ``labels``, class by class (ascending), each class in scan order.

    The labelled voxels are found in one pass over the box that holds them: a
    component of the non-zero voxels that holds one class is a lesion; one where
    lesions of different classes touch is split by class inside its own box.
    """
    labels = np.asarray(labels)
    wanted = None if classes is None else {int(c) for c in classes}
    found = [lesion for lesion in _components(labels) if wanted is None or lesion[0].label in wanted]
    for lesion, _ in sorted(found, key=lambda item: (item[0].label, item[1])):
        yield lesion


def nonzero_box(array: np.ndarray) -> tuple[slice, ...] | None:
    """The smallest box holding every non-zero voxel of ``array`` (None when there is none).

    Projections of the non-zero mask, narrowed axis by axis (``ndimage.find_objects``
    is about 50x slower on a Fortran-ordered 512x512x600 array).

    >>> a = np.zeros((4, 5, 6), np.uint8); a[1, 2:4, 5] = 2
    >>> nonzero_box(a)
    (slice(1, 2, None), slice(2, 4, None), slice(5, 6, None))
    """
    mask = np.asarray(array) != 0
    box = [slice(0, n) for n in mask.shape]
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask[tuple(box)].any(axis=others))
        if not hit.size:
            return None
        box[axis] = slice(box[axis].start + int(hit[0]), box[axis].start + int(hit[-1]) + 1)
    return tuple(box)


def _components(labels: np.ndarray) -> list[tuple[Lesion, int]]:
    """Every lesion with the flat index of its first voxel (the scan order ``ndimage.label`` numbers by)."""
    from scipy import ndimage

    outer = nonzero_box(labels)
    if outer is None:
        return []
    crop = labels[outer]
    offset = np.array([s.start for s in outer])
    components, _ = ndimage.label(crop != 0, structure=STRUCTURE_26)
    out = []
    for number, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        part = components[box] == number
        values = np.unique(crop[box][part])
        for value in values:
            mask = part if len(values) == 1 else part & (crop[box] == value)
            pieces, count = (mask.astype(np.uint8), 1) if len(values) == 1 else ndimage.label(mask, STRUCTURE_26)
            for k, sub in enumerate(ndimage.find_objects(pieces), start=1):
                if sub is None:
                    continue
                local = tuple(slice(b.start + s.start, b.start + s.stop) for b, s in zip(box, sub))
                piece = pieces[sub] == k
                first = np.unravel_index(int(np.argmax(piece)), piece.shape)
                start = [s.start + i + o for s, i, o in zip(local, first, offset)]
                whole = tuple(slice(s.start + o, s.stop + o) for s, o in zip(local, offset))
                out.append((Lesion(int(value), whole, piece), int(np.ravel_multi_index(start, labels.shape))))
    return out


def instance_lesions(labels: np.ndarray, instances: np.ndarray | None) -> list[Lesion]:
    """The lesion instances of ``labels`` (by id), or its connected components when ``instances`` is None.

    >>> labels = np.zeros((1, 1, 6), np.uint8); labels[..., 0:4] = 2
    >>> ids = np.array([[[1, 1, 2, 2, 0, 0]]], np.uint16)   # two touching nodes
    >>> [(l.id, l.label, l.n_voxels) for l in instance_lesions(labels, ids)], len(list(iter_lesions(labels)))
    ([(1, 2, 2), (2, 2, 2)], 1)
    """
    from ..annotation import Annotation

    annotation = Annotation(np.array(labels, dtype=np.uint8, copy=True), instances)
    return [Lesion(record.label, box, mask, record.id) for record, box, mask in annotation.lesions()]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected (6-connectivity) part of ``mask`` (``mask`` itself when it has one part).

    >>> m = np.zeros((1, 1, 6), bool); m[..., [0, 2, 3]] = True
    >>> largest_component(m)[0, 0].astype(int).tolist()
    [0, 0, 1, 1, 0, 0]
    """
    from scipy import ndimage

    labelled, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    return labelled == int(np.argmax(sizes))


def largest_lesion_centre(labels: np.ndarray) -> np.ndarray:
    """Voxel coordinates of the centroid of the largest lesion (the primary's when there is one).

    >>> labels = np.zeros((9, 1, 1), np.uint8); labels[0:2] = 1; labels[4:9] = 2
    >>> largest_lesion_centre(labels).tolist()
    [0.5, 0.0, 0.0]
    """
    lesions = list(iter_lesions(labels))
    if not lesions:
        raise ValueError("the labels hold no lesion")
    primaries = [l for l in lesions if l.label == 1] or lesions
    best = max(primaries, key=lambda l: l.n_voxels)
    offset = np.array([s.start for s in best.box], dtype=float)
    return np.argwhere(best.mask).mean(axis=0) + offset


def lesion_at(labels: np.ndarray, index: Sequence[int]) -> np.ndarray:
    """Mask of the lesion holding voxel ``index`` (empty when it is background)."""
    index = check_index(index, labels.shape)
    value = labels[index]
    if value == 0:
        return np.zeros(labels.shape, bool)
    return flood_component(labels == value, index)


def keep_lesions(labels: np.ndarray, indices: Iterable[Sequence[int]]) -> np.ndarray:
    """Only the lesions that hold one of ``indices`` (positive clicks); the rest becomes background."""
    out = np.zeros_like(labels)
    for index in indices:
        mask = lesion_at(labels, index)
        out[mask] = labels[mask]
    return out


def remove_lesions(labels: np.ndarray, indices: Iterable[Sequence[int]]) -> np.ndarray:
    """The labels without the lesions that hold one of ``indices`` (negative clicks)."""
    out = np.array(labels, copy=True)
    for index in indices:
        out[lesion_at(out, index)] = 0
    return out


def drop_small(labels: np.ndarray, voxel_volume_ml: float, min_volume_ml: float = 0.1) -> np.ndarray:
    """The labels without lesions smaller than ``min_volume_ml`` (0.1 ml, as in Nikulin et al. 2023).

    >>> labels = np.zeros((10, 10, 10), np.uint8); labels[:5, :5, :5] = 1; labels[8, 8, 8] = 2
    >>> int(drop_small(labels, 0.001, 0.1).sum())  # 125 voxels of 1 ul kept, the 1-voxel node dropped
    125
    """
    out = np.array(labels, copy=True)
    for lesion in iter_lesions(labels):
        if lesion.n_voxels * voxel_volume_ml < min_volume_ml:
            out[lesion.box][lesion.mask] = 0
    return out


def set_class(labels: np.ndarray, index: Sequence[int], label: int) -> np.ndarray:
    """The lesion holding ``index`` re-labelled as class ``label`` (1 primary, 2 node)."""
    out = np.array(labels, copy=True)
    out[lesion_at(labels, index)] = label
    return out


def merge_lesions(labels: np.ndarray, indices: Sequence[Sequence[int]], label: int | None = None) -> np.ndarray:
    """The lesions holding ``indices`` given one class (default: the first one's), so touching ones join."""
    if not indices:
        return np.array(labels, copy=True)
    first = check_index(indices[0], labels.shape)
    target = int(labels[first]) if label is None else int(label)
    out = np.array(labels, copy=True)
    for index in indices:
        out[lesion_at(labels, index)] = target
    return out


def split_touching(mask: np.ndarray, pet: np.ndarray, *, min_dip: float | None = None) -> np.ndarray:
    """Split a region holding several touching lesions by a watershed on the PET.

    Each lesion is a PET maximum that rises at least ``min_dip`` SUV above the
    saddle joining it to a hotter one (default: 10 % of the region's SUVmax); the
    watershed of the inverted PET from those maxima, inside ``mask``, divides it.

    Returns
    -------
    numpy.ndarray of int32
        0 outside ``mask``, 1..n for the lesions (1 holds the hottest).

    Examples
    --------
    >>> x = np.arange(40.0)
    >>> profile = 10 * np.exp(-(x - 12) ** 2 / 30) + 8 * np.exp(-(x - 27) ** 2 / 30)
    >>> pet = np.broadcast_to(profile[:, None, None], (40, 3, 3)).copy()
    >>> parts = split_touching(pet > 2.5, pet)
    >>> int(parts.max()), int(parts[12, 1, 1]), int(parts[27, 1, 1])
    (2, 1, 2)
    """
    from scipy import ndimage
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    mask = np.asarray(mask, bool)
    out = np.zeros(mask.shape, np.int32)
    if not mask.any():
        return out
    values = np.where(mask & np.isfinite(pet), pet, 0.0).astype(np.float64)
    dip = float(min_dip) if min_dip is not None else 0.1 * float(values.max())
    peaks, count = ndimage.label((h_maxima(values, dip) > 0) & mask, structure=STRUCTURE_26)
    order = np.argsort([-values[peaks == n].max() for n in range(1, count + 1)])
    markers = np.zeros_like(peaks)
    for rank, n in enumerate(order, start=1):
        markers[peaks == n + 1] = rank
    out[:] = watershed(-values, markers, mask=mask, connectivity=3)
    return out


def labels_from_parts(parts: np.ndarray, classes: Mapping[int, int], default: int = 0) -> np.ndarray:
    """A labels array from numbered parts (e.g. :func:`split_touching`) and the class of each part.

    >>> labels_from_parts(np.array([[[0, 1, 2, 2]]]), {1: 1, 2: 2}).tolist()
    [[[0, 1, 2, 2]]]
    """
    lookup = np.full(int(parts.max()) + 1, default, np.uint8)
    lookup[0] = 0
    for part, value in classes.items():
        lookup[int(part)] = int(value)
    return lookup[parts]

