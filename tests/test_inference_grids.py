"""Grid maps, separable interpolation, ROIs and click encodings against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_hnc.errors import GeometryError
from napari_hnc.geometry import Volume
from napari_hnc.inference.encoding import click_map, distance_to_points
from napari_hnc.inference.gridmap import AxisMap, interpolate
from napari_hnc.inference.preprocess import PetStats, grid_around, scale_ct, scale_pet
from napari_hnc.inference.roi import roi_around
from napari_hnc.models.card import ClickEncoding, Preprocessing
from synthetic_pet_ct import lps_affine


def test_separable_interpolation_equals_scipy_for_flipped_permuted_scaled_grids(rng):
    source = rng.normal(size=(2, 9, 7, 5)).astype(np.float32)
    src_affine = np.eye(4)
    src_affine[:3, :3] = np.array([[0, 0, -2.5], [3.0, 0, 0], [0, -2.0, 0]])  # permuted, flipped, scaled
    src_affine[:3, 3] = (10.0, -7.0, 4.0)
    dst_affine = lps_affine((0.9, 1.1, 1.7), (12.0, 9.0, -20.0))
    amap = AxisMap.between(src_affine, dst_affine)
    box = (slice(0, 16), slice(0, 18), slice(5, 17))
    fast = interpolate(source, amap, box)
    ijk = np.indices([s.stop - s.start for s in box]).reshape(3, -1) + np.array([s.start for s in box])[:, None]
    src_ijk = (np.linalg.inv(src_affine) @ dst_affine @ np.vstack([ijk, np.ones(ijk.shape[1])]))[:3]
    inside = np.all((src_ijk >= 0) & (src_ijk <= np.array(source.shape[1:])[:, None] - 1), axis=0)
    for c in range(2):
        reference = ndimage.map_coordinates(source[c], src_ijk, order=1, mode="nearest")
        assert np.allclose(fast[c].ravel()[inside], reference[inside], atol=1e-5)
    far = np.any((src_ijk < -1) | (src_ijk > np.array(source.shape[1:])[:, None]), axis=0)
    assert inside.mean() > 0.3 and far.any()
    assert np.all(fast[:, far.reshape(fast.shape[1:])] == 0)  # nothing beyond one voxel outside


def test_oblique_grids_are_refused_by_the_separable_map():
    rotated = np.eye(4)
    rotated[:2, :2] = [[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]
    with pytest.raises(GeometryError, match="not parallel"):
        AxisMap.between(np.eye(4), rotated)


def test_roi_slices_hold_the_label_voxels_inside_the_model_grid():
    ct = Volume(np.zeros((80, 70, 30), np.int16), lps_affine((1.2, 1.2, 3.0), (40.0, 30.0, -40.0)))
    roi = roi_around(ct, (5.0, -3.0, 2.0), (2.5, 2.5, 2.5), (16, 16, 16))
    world = ct.voxel_to_world(np.argwhere(np.ones(ct.shape, bool)))
    model = roi.grid
    inv = np.linalg.inv(model.affine)
    coords = world @ inv[:3, :3].T + inv[:3, 3]
    inside = np.all((coords >= -1e-6) & (coords <= 15 + 1e-6), axis=1).reshape(ct.shape)
    expected = ndimage.find_objects(inside.astype(np.uint8))[0]
    assert roi.slices == expected
    mask = np.zeros(roi.shape, bool)
    mask[roi.local(ct.world_to_index((5.0, -3.0, 2.0)))] = True
    back = roi.to_model(np.argwhere(mask))
    assert np.allclose(back, 7.5, atol=0.5)  # the click sits at the model grid's centre


def test_click_roi_near_the_border_is_clipped_to_the_volume():
    ct = Volume(np.zeros((40, 40, 20), np.int16), np.diag([2.0, 2.0, 2.0, 1.0]))
    roi = roi_around(ct, (1.0, 1.0, 1.0), (2.5, 2.5, 2.5), (16, 16, 16))
    assert all(s.start == 0 for s in roi.slices) and all(s.stop <= n for s, n in zip(roi.slices, ct.shape))


def test_distance_maps_agree_between_direct_and_transform_paths(rng):
    shape, spacing = (20, 18, 12), (1.5, 1.0, 2.5)
    points = rng.integers(0, 12, size=(40, 3)).astype(float)
    transform = distance_to_points(shape, spacing, points)  # > 32 points: distance transform
    direct = np.min([distance_to_points(shape, spacing, points[i : i + 20]) for i in (0, 20)], axis=0)
    assert np.allclose(transform, direct, atol=1e-6)


def test_click_encodings_edt_and_disk():
    points = [[5, 5, 5]]
    edt = click_map((11, 11, 11), (2.0, 2.0, 2.0), points, ClickEncoding("edt", radius_mm=8.0))
    disk = click_map((11, 11, 11), (2.0, 2.0, 2.0), points, ClickEncoding("disk", radius_mm=4.0))
    assert edt[5, 5, 5] == 1.0 and edt[5, 5, 7] == pytest.approx(0.5) and edt[5, 5, 10] == 0.0
    assert disk[5, 5, 7] == 1.0 and disk[5, 5, 8] == 0.0
    assert disk.sum() == 33  # lattice points within 2 voxels: 1 + 6 + 12 + 8 + 6


def test_intensity_scaling_follows_the_card():
    pre = Preprocessing(ct_window=(-150.0, 150.0), ct_range=(0.0, 1.0), pet="minmax")
    assert scale_ct(np.array([-1000.0, 0.0, 150.0]), pre).tolist() == [0.0, 0.5, 1.0]
    stats = PetStats(mean=1.0, std=2.0, max=10.0)
    assert scale_pet(np.array([5.0]), pre, stats).tolist() == [0.5]
    assert scale_pet(np.array([5.0]), Preprocessing(pet="zscore"), stats).tolist() == [2.0]
    assert scale_pet(np.array([30.0]), Preprocessing(pet="suv", pet_scale=10.0, pet_clip=20.0), stats).tolist() == [2.0]


def test_model_grid_is_centred_on_the_point_with_the_cards_spacing():
    ct = Volume(np.zeros((10, 10, 10)), lps_affine((1.0, 1.0, 1.0), (0.0, 0.0, 0.0)))
    grid = grid_around(ct, (2.0, 2.5, 3.0), (1.0, 2.0, 3.0), (4, 4, 4))
    centre = grid.affine[:3, :3] @ np.full(3, 1.5) + grid.affine[:3, 3]
    assert np.allclose(centre, (1.0, 2.0, 3.0)) and np.allclose(grid.spacing, (2.0, 2.5, 3.0))
    assert np.all(np.diag(grid.affine)[:3] > 0)  # RAS-ordered whatever the CT's orientation
