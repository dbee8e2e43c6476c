"""Growing a click model's region until the lesion it draws no longer reaches a side of it.

The click model sees a region of its card's ``patch_size`` around the first
click. When its mask reaches a side of that region (and the image goes on
there), the region grows on that side by half a sliding-window step and the
model runs again over the larger region, as a Gaussian-blended sliding window
of patch-size tiles (:mod:`.sliding_window`), with the previous pass's mask as
its previous-mask input. It stops when no side is reached, or when the region
is as long as the bound (the card's ``max_region_mm``, about 20 cm) on every
side that is reached: the lesion is then *cut* there, and the session says so.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Fraction of a tile shared with its neighbour when the grown region is run as a sliding window.
GROWTH_OVERLAP = 0.25

Side = tuple[int, int]  # (axis, 0 below / 1 above)


def touching_sides(mask: np.ndarray) -> list[Side]:
    """The sides of ``mask``'s array that hold a True voxel.

    >>> m = np.zeros((4, 4, 4), bool); m[0, 1, 1] = m[1, 1, 3] = True
    >>> touching_sides(m)
    [(0, 0), (2, 1)]
    """
    return [(axis, side) for axis in range(mask.ndim) for side, index in ((0, 0), (1, -1))
            if mask.take(index, axis=axis).any()]


def growth_step(patch: Sequence[int], overlap: float = GROWTH_OVERLAP) -> np.ndarray:
    """Voxels a reached side grows by: half a sliding-window step, so both sides together add one tile step.

    >>> growth_step((48, 48, 48)).tolist()
    [18, 18, 18]
    """
    return np.maximum(np.asarray([int(p * (1.0 - overlap)) // 2 for p in patch]), 1)


def plan_growth(shape: Sequence[int], sides: Sequence[Side], room: tuple[np.ndarray, np.ndarray],
                step: Sequence[int], limit: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[Side]]:
    """How many voxels each side grows by (below, above), and the reached sides the bound ``limit`` cuts.

    ``room`` says how far the image goes on beyond each side (below, above): a
    side at the end of the image does not grow and is not cut.

    >>> lo, hi, cut = plan_growth((48, 48, 48), [(0, 0), (0, 1), (2, 1)], (np.full(3, 99), np.array([99, 99, 5])),
    ...                           (18, 18, 18), (60, 100, 100))
    >>> lo.tolist(), hi.tolist(), cut
    ([6, 0, 0], [6, 0, 5], [])
    >>> plan_growth((60, 48, 48), [(0, 1)], (np.full(3, 99), np.full(3, 99)), (18, 18, 18), (60, 100, 100))[2]
    [(0, 1)]
    """
    lo, hi = np.zeros(3, int), np.zeros(3, int)
    cut: list[Side] = []
    for axis in range(3):
        wanted = {side: min(int(step[axis]), int(room[side][axis])) for a, side in sides if a == axis}
        wanted = {side: n for side, n in wanted.items() if n > 0}
        budget = max(int(limit[axis]) - int(shape[axis]), 0)
        if sum(wanted.values()) > budget:  # share what the bound leaves, evenly when both sides want more
            if len(wanted) == 1:
                wanted = {side: budget for side in wanted}
            else:
                below = min(wanted[0], max(budget // 2, budget - wanted[1]))
                wanted = {0: below, 1: budget - below}
        for side, n in wanted.items():
            (lo if side == 0 else hi)[axis] = n
            if n == 0:
                cut.append((axis, side))
    return lo, hi, cut


def describe_sides(sides: Sequence[Side]) -> str:
    """The sides of a region in words (model-grid axes are RAS: x towards the right, y anterior, z superior).

    >>> describe_sides([(0, 0), (2, 1)])
    'left, superior'
    """
    names = (("left", "right"), ("posterior", "anterior"), ("inferior", "superior"))
    return ", ".join(names[axis][side] for axis, side in sides)
