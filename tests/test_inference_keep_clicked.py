"""Which parts of the click model's output become the lesion: the clicked ones, made solid."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from napari_hnc.inference.engines import LesionState, _keep_clicked


def _lesion(clicks):
    identity = SimpleNamespace(to_model=lambda points: np.asarray(points, float).reshape(-1, 3))
    return LesionState(label=1, roi=identity, mask=np.zeros((24, 24, 24), bool),
                       clicks=[(tuple(c), positive) for c, positive in clicks])


def _ball(shape, centre, radius):
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    return np.linalg.norm(grid - np.asarray(centre), axis=-1) <= radius


def test_a_click_in_a_necrotic_core_keeps_the_rim_around_it_and_fills_the_core():
    shape = (24, 24, 24)
    rim = _ball(shape, (12, 12, 12), 7) & ~_ball(shape, (12, 12, 12), 4)
    other = _ball(shape, (3, 3, 3), 2)
    foreground = np.where(rim | other, 0.9, 0.1).astype(np.float32)
    out = _keep_clicked(foreground, _lesion([((12, 12, 12), True)]))
    assert np.array_equal(out > 0.5, _ball(shape, (12, 12, 12), 7))  # core filled, the other blob dropped
    assert np.all(out[rim] == foreground[rim])


def test_a_click_just_beside_a_lesion_picks_it_and_a_far_one_picks_nothing():
    shape = (24, 24, 24)
    blob = _ball(shape, (12, 12, 12), 3)
    foreground = np.where(blob, 0.8, 0.2).astype(np.float32)
    near = _keep_clicked(foreground, _lesion([((12, 12, 17), True)]))  # 2 voxels from the blob's surface
    assert np.array_equal(near > 0.5, blob)
    far = _keep_clicked(foreground, _lesion([((12, 12, 21), True)]))
    assert not (far > 0.5).any() and np.all(far[~blob] == foreground[~blob])


def test_a_touching_click_keeps_only_its_own_part():
    shape = (24, 24, 24)
    a, b = _ball(shape, (6, 12, 12), 3), _ball(shape, (18, 12, 12), 3)
    foreground = np.where(a | b, 0.7, 0.0).astype(np.float32)
    out = _keep_clicked(foreground, _lesion([((6, 12, 12), True), ((18, 12, 12), False)]))
    assert np.array_equal(out > 0.5, a)


def test_a_click_far_from_the_lesion_picks_the_part_at_its_pet_peak_and_a_grown_pass_keeps_the_last():
    shape = (24, 24, 24)
    blob = _ball(shape, (12, 12, 12), 3)
    foreground = np.where(blob, 0.8, 0.2).astype(np.float32)
    lesion = _lesion([((12, 12, 21), True)])  # 6 voxels from the blob: too far to pick it by itself
    lesion.cache["peak"] = (12, 13, 12)  # where the PET rules say the click's lesion starts
    assert np.array_equal(_keep_clicked(foreground, lesion) > 0.5, blob)
    grown = _lesion([((12, 12, 21), True)])
    grown.cache["previous"] = _ball(shape, (12, 12, 13), 1)  # the last pass's lesion on the grown region
    assert np.array_equal(_keep_clicked(foreground, grown) > 0.5, blob)


def _cup(shape, centre, outer, inner):
    """A hot rim around a cold core, open on one side along the first axis (a necrotic mass cut by its own
    rim's gap), as a model draws it: no 3D cavity, but the core enclosed in every slice across it."""
    rim = _ball(shape, centre, outer) & ~_ball(shape, centre, inner)
    z, y, x = np.indices(shape)
    rim[(z >= centre[0]) & ((y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= 9)] = False  # a channel to the outside
    return rim


def test_a_rim_open_at_one_end_is_filled_slice_by_slice_and_a_negative_click_in_its_core_keeps_it_empty():
    shape, centre = (24, 24, 24), (12, 12, 12)
    rim = _cup(shape, centre, 8, 5)
    from scipy import ndimage

    assert np.array_equal(ndimage.binary_fill_holes(rim), rim)  # open: a 3D fill alone finds no cavity
    foreground = np.where(rim, 0.9, 0.1).astype(np.float32)
    out = _keep_clicked(foreground, _lesion([((12, 12, 12), True)])) > 0.5
    core = _ball(shape, centre, 5)
    assert out[rim].all() and out[core].mean() > 0.95  # the cold core is the lesion's
    assert not out[~_ball(shape, centre, 8)].any()  # nothing outside the rim
    kept = _keep_clicked(foreground, _lesion([((12, 12, 8), True), ((12, 12, 12), False)])) > 0.5
    assert np.array_equal(kept, rim)  # the user said the core is not lesion


def test_solid_fills_as_scipy_does_in_3d_and_then_slice_by_slice_along_each_axis():
    from scipy import ndimage

    from napari_hnc.inference.engines import solid

    def by_scipy(mask):
        filled = ndimage.binary_fill_holes(mask)
        for axis in range(3):
            planes = np.moveaxis(filled, axis, 0)
            filled = np.moveaxis(np.stack([ndimage.binary_fill_holes(p) for p in planes]), 0, axis)
        return filled

    rng = np.random.default_rng(7)
    for k in range(6):
        mask = ndimage.binary_opening(rng.random((20 + k, 24, 28 - k)) < 0.45 + 0.04 * k)
        assert np.array_equal(solid(mask), by_scipy(mask))
    assert not solid(np.zeros((4, 4, 4), bool)).any() and solid(np.ones((4, 4, 4), bool)).all()
