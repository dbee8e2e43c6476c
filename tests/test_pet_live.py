"""The live lesion table: box-by-box updates agree with measuring everything again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import napari_hnc
from napari_hnc.phantom import generate_case
from napari_hnc.pet.live import LiveLesionTable


@pytest.fixture(scope="module")
def case():
    return generate_case(1, "small")  # five lesions


def _full(study, labels, instances):
    volume = study.grid.with_array(labels, role="labels")
    volume.metadata["instances"] = instances
    return napari_hnc.quantify(study, volume)


def _start(case):
    """The case's study, copies of its labels and instances to edit, and a live table of it."""
    study = case.study
    labels = np.array(study.labels.array, dtype=np.uint8)
    instances = np.array(study.labels.metadata["instances"], dtype=np.uint16)
    return study, labels, instances, LiveLesionTable(study, study.grid)


def test_updates_in_a_box_match_a_full_measurement(case):
    study, labels, instances, table = _start(case)
    first = table.update(labels, instances)
    pd.testing.assert_frame_equal(first, _full(study, labels, instances))
    assert len(first) >= 2
    # erase half of the first lesion, then grow the last one: only their rows change
    lesion = int(first.iloc[0].instance)
    where = np.argwhere(instances == lesion)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    box = (slice(lo[0], (lo[0] + hi[0]) // 2 + 1), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    erase = instances[box] == lesion
    labels[box][erase], instances[box][erase] = 0, 0
    after = table.update(labels, instances, box)
    pd.testing.assert_frame_equal(after, _full(study, labels, instances))
    other = int(first.iloc[-1].instance)
    centre = np.argwhere(instances == other).mean(axis=0).astype(int)
    grow = tuple(slice(max(c - 4, 0), c + 4) for c in centre)
    free = instances[grow] == 0
    labels[grow][free] = int(first.iloc[-1]["class"])
    instances[grow][free] = other
    pd.testing.assert_frame_equal(table.update(labels, instances, grow), _full(study, labels, instances))


def test_a_lesion_erased_in_the_box_leaves_the_table(case):
    study, labels, instances, table = _start(case)
    before = table.update(labels, instances)
    gone = int(before.iloc[0].instance)
    where = np.argwhere(instances == gone)
    box = tuple(slice(a, b + 1) for a, b in zip(where.min(axis=0), where.max(axis=0)))
    labels[instances == gone], instances[instances == gone] = 0, 0
    after = table.update(labels, instances, box)
    assert gone not in after["instance"].tolist() and len(after) == len(before) - 1
