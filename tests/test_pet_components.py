import numpy as np
import pytest

from napari_hnc.errors import ClickError
from napari_hnc.pet.components import (
    drop_small, iter_lesions, keep_lesions, labels_from_parts, lesion_at, merge_lesions, remove_lesions,
    set_class, split_touching,
)


@pytest.fixture
def labels():
    """Three lesions: a primary (27 voxels), a node touching it diagonally (8), a far node (1)."""
    out = np.zeros((12, 12, 12), np.uint8)
    out[1:4, 1:4, 1:4] = 1
    out[4:6, 4:6, 4:6] = 2  # touches the primary only at a corner
    out[10, 10, 10] = 2
    return out


def test_lesions_are_26_connected_components_within_a_class(labels):
    found = [(l.label, l.n_voxels) for l in iter_lesions(labels)]
    assert found == [(1, 27), (2, 8), (2, 1)]
    corner = np.zeros((4, 4, 4), np.uint8)
    corner[0, 0, 0] = corner[1, 1, 1] = 1  # corner neighbours: one lesion
    assert len(list(iter_lesions(corner))) == 1


def test_keep_and_remove_by_click(labels):
    kept = keep_lesions(labels, [(2, 2, 2)])
    assert kept.sum() == 27 and set(np.unique(kept)) == {0, 1}
    removed = remove_lesions(labels, [(5, 5, 5), (0, 0, 0)])  # background clicks change nothing
    assert (removed == 2).sum() == 1 and (removed == 1).sum() == 27
    assert labels.sum() == 27 + 2 * 9  # the input is untouched


def test_drop_regions_under_a_tenth_of_a_millilitre(labels):
    # voxels of 2x2x2 mm = 0.008 ml: 8 voxels 0.064 ml, 1 voxel 0.008 ml are dropped; 27 voxels 0.216 ml kept
    out = drop_small(labels, 0.008, 0.1)
    assert [(l.label, l.n_voxels) for l in iter_lesions(out)] == [(1, 27)]


def test_set_class_and_merge(labels):
    relabelled = set_class(labels, (4, 4, 4), 1)
    assert [(l.label, l.n_voxels) for l in iter_lesions(relabelled)] == [(1, 35), (2, 1)]
    merged = merge_lesions(labels, [(10, 10, 10), (4, 4, 4)])
    assert [(l.label, l.n_voxels) for l in iter_lesions(merged)] == [(1, 27), (2, 8), (2, 1)]
    as_primary = merge_lesions(labels, [(2, 2, 2), (10, 10, 10)])
    assert (as_primary == 1).sum() == 28
    with pytest.raises(ClickError):
        lesion_at(labels, (12, 0, 0))


def two_blobs(dip_depth: float):
    x, y, z = np.meshgrid(np.arange(50.0), np.arange(30.0), np.arange(30.0), indexing="ij")
    blob = lambda cx, peak: peak * np.exp(-((x - cx) ** 2 + (y - 15) ** 2 + (z - 15) ** 2) / (2 * 5.0**2))  # noqa: E731
    return blob(17, 10.0) + blob(17 + dip_depth, 8.0) + 0.5


def test_watershed_splits_touching_lesions_at_the_saddle():
    pet = two_blobs(16.0)
    mask = pet > 2.5
    assert len(list(iter_lesions(mask.astype(np.uint8)))) == 1  # one component before the split
    parts = split_touching(mask, pet)
    assert parts.max() == 2 and parts[17, 15, 15] == 1 and parts[33, 15, 15] == 2
    assert np.array_equal(parts > 0, mask)
    boundary = np.flatnonzero(np.diff(parts[:, 15, 15]) == 1)  # where part 1 meets part 2 on the axis
    saddle = 17 + int(np.argmin(pet[17:34, 15, 15]))
    assert abs(int(boundary[-1]) - saddle) <= 1
    labels = labels_from_parts(parts, {1: 1, 2: 2})
    assert [l.label for l in iter_lesions(labels)] == [1, 2]


def test_no_split_without_a_real_dip():
    pet = two_blobs(4.0)  # overlapping blobs: a single maximum
    assert split_touching(pet > 2.5, pet).max() == 1
    assert split_touching(np.zeros((3, 3, 3), bool), np.zeros((3, 3, 3))).max() == 0
