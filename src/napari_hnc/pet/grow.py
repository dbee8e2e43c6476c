"""Connected regions grown from seeds (26-connectivity), and region growing with an SUV interval.

Examples
--------
>>> import numpy as np
>>> pet = np.zeros((5, 5, 5), np.float32)
>>> pet[1:3, 1:3, 1:3] = 4.0
>>> pet[4, 4, 4] = 9.0
>>> int(grow_region(pet, [(1, 1, 1)], lower=2.5).sum())
8
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..errors import ClickError

Index = tuple[int, int, int]


def bounding_slices(mask: np.ndarray, pad: Sequence[int] = (0, 0, 0)) -> tuple[slice, ...] | None:
    """The smallest box holding every True voxel of ``mask``, grown by ``pad`` voxels (None if empty).

    >>> m = np.zeros((6, 6, 6), bool); m[2, 3, 1:4] = True
    >>> bounding_slices(m, (1, 0, 5))
    (slice(1, 4, None), slice(3, 4, None), slice(0, 6, None))
    """
    if mask.ndim != 3:
        return _bounding_slices_nd(mask, pad)
    plane = mask.any(axis=2)  # the one pass over the whole array; the last axis is read inside the box only
    rows, cols = np.flatnonzero(plane.any(axis=1)), np.flatnonzero(plane.any(axis=0))
    if rows.size == 0:
        return None
    inner = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    depth = np.flatnonzero(inner.any(axis=(0, 1)))
    return tuple(slice(max(int(h[0]) - p, 0), min(int(h[-1]) + 1 + p, n))
                 for h, p, n in zip((rows, cols, depth), pad, mask.shape))


def _bounding_slices_nd(mask: np.ndarray, pad: Sequence[int]) -> tuple[slice, ...] | None:
    out = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=others))
        if hits.size == 0:
            return None
        out.append(slice(max(int(hits[0]) - pad[axis], 0), min(int(hits[-1]) + 1 + pad[axis], mask.shape[axis])))
    return tuple(out)


def flood_component(mask: np.ndarray, seed: Index) -> np.ndarray:
    """The 26-connected region of True voxels of ``mask`` that holds ``seed`` (empty if ``seed`` is False).

    Only the region is visited, so a small lesion in a large box costs little.

    >>> m = np.zeros((4, 4, 4), bool); m[0, 0, 0] = m[1, 1, 1] = m[3, 3, 3] = True
    >>> int(flood_component(m, (0, 0, 0)).sum())
    2
    """
    from skimage.morphology import flood

    if not mask[seed]:
        return np.zeros(mask.shape, bool)
    return flood(mask, seed, connectivity=mask.ndim)


def grow_region(
    pet: np.ndarray,
    seeds: Iterable[Sequence[int]],
    lower: float,
    upper: float = np.inf,
    *,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Voxels with ``lower <= SUV <= upper`` connected (26-connectivity) to any of ``seeds``.

    Parameters
    ----------
    pet : numpy.ndarray
        SUV values; NaN (outside the PET's field of view) never joins a region.
    seeds : iterable of (i, j, k)
        Voxel indices of ``pet``.
    lower, upper : float
        The SUV interval, both ends included.
    within : numpy.ndarray of bool, optional
        The region never leaves these voxels (a bound).

    Returns
    -------
    numpy.ndarray of bool
        The union of the regions grown from every seed.

    Raises
    ------
    ClickError
        A seed outside ``pet``, or whose own value lies outside the interval.
    """
    allowed = (pet >= lower) & (pet <= upper)
    if within is not None:
        allowed &= within
    out = np.zeros(pet.shape, bool)
    for seed in seeds:
        index = check_index(seed, pet.shape)
        if not allowed[index]:
            raise ClickError(
                f"the seed {list(index)} has SUV {float(pet[index]):.2f}, outside the growing interval "
                f"[{lower:g}, {upper:g}]{' or outside the bound' if within is not None else ''}; "
                "click inside the lesion or widen the interval"
            )
        if not out[index]:
            out |= flood_component(allowed, index)
    return out


def check_index(seed: Sequence[int], shape: Sequence[int]) -> Index:
    """``seed`` as a tuple of 3 ints; :class:`ClickError` when it lies outside ``shape``."""
    index = tuple(int(v) for v in np.asarray(seed).ravel())
    if len(index) != len(shape) or any(not 0 <= v < n for v, n in zip(index, shape)):
        raise ClickError(
            f"the seed {list(index)} lies outside the array of shape {list(shape)}; "
            "click inside the image (voxel indices count from 0)"
        )
    return index  # type: ignore[return-value]


def fill_cavities(mask: np.ndarray) -> np.ndarray:
    """``mask`` with the cavities it encloses filled: in 3D, and in every slice along each axis.

    A necrotic core that is open at one end in 3D is still closed in the slices
    through it, as a reader sees it; GTVs include such cores.

    >>> m = np.zeros((7, 7, 3), bool); m[1:6, 1:6, :] = True; m[2:5, 2:5, :] = False  # a tube
    >>> int(fill_cavities(m).sum()) - int(m.sum())   # open in 3D, closed in each axial slice
    27
    """
    box = bounding_slices(mask, (1, 1, 1))
    if box is None:
        return np.array(mask, dtype=bool, copy=True)
    part = np.pad(np.asarray(mask[box], bool), 1)
    filled = part.copy()
    for structure in cavity_structures():  # a cavity: background not connected to the box's border
        filled |= fill_enclosed(part, structure, range(3))
    out = np.array(mask, dtype=bool, copy=True)
    out[box] = filled[1:-1, 1:-1, 1:-1]
    return out


def cavity_structures() -> list[np.ndarray]:
    """The connectivities a cavity is sought with: 6-connected in 3D, then 4-connected within the
    slices across each axis (a structure flat across that axis)."""
    from scipy import ndimage

    structures = [ndimage.generate_binary_structure(3, 1)]
    for axis in range(3):
        plane = np.zeros((3, 3, 3), bool)
        plane[tuple(1 if a == axis else slice(None) for a in range(3))] = ndimage.generate_binary_structure(2, 1)
        structures.append(plane)
    return structures


def fill_enclosed(mask: np.ndarray, structure: np.ndarray, open_axes: Iterable[int]) -> np.ndarray:
    """``mask`` with the background parts (connected by ``structure``) that reach no face across one of
    ``open_axes`` filled: one labelling pass (``scipy.ndimage.binary_fill_holes``, also slice-wise).

    >>> ring = np.zeros((1, 5, 5), bool); ring[0, 1:4, 1:4] = True; ring[0, 2, 2] = False
    >>> int(fill_enclosed(ring, cavity_structures()[1], (1, 2)).sum())  # in the slice across axis 0
    9
    """
    from scipy import ndimage

    background, count = ndimage.label(~mask, structure)
    if not count:
        return np.array(mask, dtype=bool, copy=True)
    outside = np.zeros(count + 1, bool)
    outside[0] = True
    for axis in open_axes:
        outside[np.take(background, 0, axis=axis)] = True
        outside[np.take(background, -1, axis=axis)] = True
    return mask | ~outside[background]


def confidence_region(pet: np.ndarray, seed: Index, multiplier: float, lower: float = -np.inf,
                      upper: float = np.inf, within: np.ndarray | None = None, rounds: int = 5) -> np.ndarray:
    """Confidence-connected region growing from ``seed`` (as ITK's ConfidenceConnected).

    The interval starts as mean +- ``multiplier`` standard deviations of the seed's
    3x3x3 neighbourhood; each round grows the 26-connected region inside it, then
    takes the interval from the region's own mean and deviation. The interval is
    clipped to [``lower``, ``upper``]; NaN never joins.

    >>> pet = np.ones((20, 20, 20), np.float32); pet[5:15, 5:15, 5:15] = 6.0
    >>> pet[5:15, 5:15, 5:15] += np.linspace(-0.5, 0.5, 10, dtype=np.float32)[:, None, None]
    >>> int(confidence_region(pet, (10, 10, 10), 2.5).sum())
    1000
    """
    index = check_index(seed, pet.shape)
    values = np.nan_to_num(np.asarray(pet, np.float64), nan=-np.inf)
    near = tuple(slice(max(i - 1, 0), i + 2) for i in index)
    sample = values[near][np.isfinite(values[near])]
    mean, std = float(sample.mean()), float(sample.std())
    region = np.zeros(pet.shape, bool)
    for _ in range(rounds):
        lo, hi = max(mean - multiplier * std, lower), min(mean + multiplier * std, upper)
        lo, hi = min(lo, values[index]), max(hi, values[index])  # the seed always belongs
        allowed = (values >= lo) & (values <= hi)
        if within is not None:
            allowed &= within
        grown = flood_component(allowed, index)
        if np.array_equal(grown, region):
            break
        region = grown
        inside = values[region]
        mean, std = float(inside.mean()), float(inside.std())
    return region
