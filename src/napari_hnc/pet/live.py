"""A lesion table kept up to date: after a change in a box, only the lesions in that box are measured again.

:func:`napari_hnc.quantify` measures every lesion; a click or a brush stroke changes one or two.
:class:`LiveLesionTable` keeps one row per lesion instance and, given the box that changed,
re-measures the lesions found in it (and drops the ones gone), so the GUI's table follows every
edit (``benchmarks/lesion_table.py`` times it).

Examples
--------
>>> import numpy as np
>>> from napari_hnc import Study, Volume
>>> pet = np.ones((20, 20, 20), np.float32); pet[2:6, 2:6, 2:6] = 4.0; pet[12:16, 12:16, 12:16] = 6.0
>>> study = Study(ct=None, pet=Volume(pet, np.eye(4)))
>>> labels = ((pet > 2) * 1).astype(np.uint8); labels[10:, 10:, 10:] *= 2
>>> ids = np.where(labels == 1, 1, np.where(labels == 2, 2, 0)).astype(np.uint16)
>>> table = LiveLesionTable(study, study.grid)
>>> table.update(labels, ids)["suv_max"].tolist()
[4.0, 6.0]
>>> labels[12:16, 12:16, 12:16] = 0; ids[12:16, 12:16, 12:16] = 0       # the node erased
>>> table.update(labels, ids, (slice(12, 16),) * 3)["instance"].tolist()
[1]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..geometry import Volume
from .components import Lesion, instance_lesions
from .measure import COLUMNS, PetAround, lesion_row
from .sampling import pet_sampler

Box = Sequence[slice]

#: voxels of room around a lesion's measured PET box: strokes that stay within it are measured from it
EDIT_MARGIN = 4


class LiveLesionTable:
    """Per-lesion rows (:func:`napari_hnc.quantify`'s columns) updated box by box.

    Parameters
    ----------
    study : napari_hnc.Study
        Needs a PET in SUV.
    grid : Volume
        The labels' grid (spacing and world coordinates of the rows).
    """

    def __init__(self, study, grid: Volume) -> None:
        self.study = study
        self.grid = grid
        self._sampler = pet_sampler(study, grid)
        self._rows: dict[int, dict[str, Any]] = {}
        self._boxes: dict[int, tuple[slice, ...]] = {}
        self._around: dict[int, PetAround] = {}  # each lesion's PET and SUVpeak sphere means, kept between edits

    def update(self, labels: np.ndarray, instances: np.ndarray | None, box: Box | None = None) -> pd.DataFrame:
        """The table after a change inside ``box`` (voxel slices of the labels; None: measure everything)."""
        if box is None or instances is None or not self._rows and not self._boxes:
            self._measure_all(labels, instances)
        else:
            self._measure_box(labels, instances, tuple(box))
        return self.frame()

    def frame(self) -> pd.DataFrame:
        """The rows as :func:`napari_hnc.quantify` orders them (class, then decreasing volume)."""
        rows = sorted(self._rows.values(), key=lambda r: (r["class"], -r["n_voxels"], r["instance"]))
        table = pd.DataFrame(rows, columns=COLUMNS[2:])
        table.insert(0, "lesion", np.arange(1, len(table) + 1))
        table.insert(0, "case_id", getattr(self.study, "case_id", ""))
        return table

    # ----------------------------------------------------------------- internals
    def _measure_all(self, labels: np.ndarray, instances: np.ndarray | None) -> None:
        self._rows.clear()
        self._boxes.clear()
        self._around.clear()
        for lesion in instance_lesions(np.asarray(labels), instances):
            self._store(lesion)

    def _measure_box(self, labels: np.ndarray, instances: np.ndarray, box: tuple[slice, ...]) -> None:
        from scipy import ndimage

        touched = {int(i) for i in np.unique(instances[box]) if i}
        touched |= {i for i, b in self._boxes.items() if _overlaps(b, box)}
        if not touched:
            return
        # the touched lesions' boxes, found inside the union of their old boxes and the change
        region = box
        for lesion_id in touched:
            if lesion_id in self._boxes:
                region = _union(region, self._boxes[lesion_id])
        region = _grow(region, instances.shape)
        local = instances[region]
        objects = ndimage.find_objects(np.where(np.isin(local, list(touched)), local, 0))
        for lesion_id in touched:
            found = objects[lesion_id - 1] if lesion_id - 1 < len(objects) else None
            if found is None:
                self._rows.pop(lesion_id, None)
                self._boxes.pop(lesion_id, None)
                self._around.pop(lesion_id, None)
                continue
            if any(f.start == 0 and r.start > 0 or f.stop == r.stop - r.start and r.stop < n
                   for f, r, n in zip(found, region, instances.shape)):  # it reaches the edge: look everywhere
                found = ndimage.find_objects((instances == lesion_id).astype(np.uint8))[0]
                lesion_box = found
            else:
                lesion_box = tuple(slice(f.start + r.start, f.stop + r.start) for f, r in zip(found, region))
            mask = instances[lesion_box] == lesion_id
            label = int(np.asarray(labels)[lesion_box][mask].max())
            self._store(Lesion(label, lesion_box, mask, lesion_id))

    def _store(self, lesion: Lesion) -> None:
        around = self._around.get(lesion.id)
        if around is None or not around.holds(lesion):  # measured once, with room for the next strokes
            around = self._around[lesion.id] = PetAround.for_lesion(lesion, self._sampler, self.grid, EDIT_MARGIN)
        self._rows[lesion.id] = lesion_row(lesion, self._sampler, self.grid, around)
        self._boxes[lesion.id] = tuple(lesion.box)


def _overlaps(a: Box, b: Box) -> bool:
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b))


def _union(a: Box, b: Box) -> tuple[slice, ...]:
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def _grow(box: Box, shape: Sequence[int], by: int = 1) -> tuple[slice, ...]:
    return tuple(slice(max(0, s.start - by), min(n, s.stop + by)) for s, n in zip(box, shape))
