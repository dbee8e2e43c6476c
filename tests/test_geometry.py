"""Geometry: exact re-orientation, world<->voxel, napari transforms, resampling."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_hnc.errors import ClickError, GeometryError
from napari_hnc.geometry import (
    LayerGeometry,
    Volume,
    from_napari,
    napari_to_ras,
    ras_to_napari,
    resample_to,
    to_napari,
)
from synthetic import affine, rotation

AXCODES = ["RAS", "LPS", "LAS", "PIR", "SLA", "IPL"]


@pytest.mark.parametrize("codes", AXCODES)
def test_display_orientation_is_exact_and_reversible(codes, rng):
    vol = Volume(rng.normal(size=(5, 6, 7)), affine((1.0, 2.0, 3.0), (10, -20, 30), codes))
    data, napari_affine, geo = to_napari(vol)
    # napari affine of an axis-aligned grid is diagonal and positive
    assert np.allclose(napari_affine[:3, :3], np.diag(np.diag(napari_affine[:3, :3])))
    assert np.all(np.diag(napari_affine)[:3] > 0)
    assert np.array_equal(geo.to_file(data), vol.array)
    # every voxel lands on the same world point both ways
    idx = np.argwhere(np.ones(vol.shape, bool))
    world_file = vol.voxel_to_world(idx)
    display_idx = np.array(np.unravel_index(np.arange(data.size), data.shape)).T
    world_disp = napari_to_ras(display_idx @ napari_affine[:3, :3].T + napari_affine[:3, 3])
    # same set of (value, world) pairs
    key_file = sorted(zip(vol.array[tuple(idx.T)].round(9), map(tuple, world_file.round(6))))
    key_disp = sorted(zip(data[tuple(display_idx.T)].round(9), map(tuple, world_disp.round(6))))
    assert key_file == key_disp


def test_napari_axes_are_inferior_posterior_left():
    # moving along napari axis 0 goes inferior, axis 1 posterior, axis 2 to the patient's left
    assert np.allclose(napari_to_ras([1, 0, 0]), [0, 0, -1])
    assert np.allclose(napari_to_ras([0, 1, 0]), [0, -1, 0])
    assert np.allclose(napari_to_ras([0, 0, 1]), [-1, 0, 0])
    pts = np.random.default_rng(0).normal(size=(10, 3))
    assert np.allclose(napari_to_ras(ras_to_napari(pts)), pts)


def test_world_to_voxel_matches_nibabel(rng):
    aff = rotation(7, 2) @ affine((0.98, 0.98, 3.27), (23.4, 86.9, -881.3), "LPS")
    vol = Volume(np.zeros((20, 30, 10)), aff)
    pts = rng.uniform(-50, 50, size=(25, 3))
    assert np.allclose(vol.world_to_voxel(pts), nib.affines.apply_affine(np.linalg.inv(aff), pts))
    assert np.allclose(vol.voxel_to_world(vol.world_to_voxel(pts)), pts)


def test_world_to_index_outside_is_a_click_error():
    vol = Volume(np.zeros((4, 4, 4)), np.eye(4))
    assert vol.world_to_index([3.2, 0.4, 1.6]) == (3, 0, 2)
    with pytest.raises(ClickError, match="outside the volume"):
        vol.world_to_index([10, 0, 0])


def test_crop_keeps_world_positions(rng):
    vol = Volume(rng.normal(size=(10, 12, 14)), affine((2, 3, 4), (5, 6, 7), "LPS"))
    sub = vol.crop((slice(2, 8), slice(3, 9), slice(4, 10)))
    assert np.allclose(sub.voxel_to_world([0, 0, 0]), vol.voxel_to_world([2, 3, 4]))
    assert sub.array[1, 2, 3] == vol.array[3, 5, 7]


def test_sitk_round_trip_keeps_geometry(rng):
    aff = rotation(20, 0) @ affine((1.5, 0.8, 2.5), (-3, 40, 12), "LPS")
    vol = Volume(rng.normal(size=(6, 7, 8)).astype(np.float32), aff)
    back = Volume.from_sitk(vol.to_sitk())
    assert np.allclose(back.affine, aff, atol=1e-6)
    assert np.array_equal(back.array, vol.array)


def test_resample_linear_reproduces_a_linear_ramp():
    # a ramp along world x is reproduced exactly by linear interpolation on any grid inside it
    src_aff = affine((4.0, 4.0, 3.0), (60.0, 50.0, -30.0), "LPS")
    src = Volume(np.zeros((31, 26, 21), np.float32), src_aff)
    world = src.voxel_to_world(np.argwhere(np.ones(src.shape, bool))).reshape(src.shape + (3,))
    src.array[...] = 2.0 * world[..., 0] + 1.0
    dst = Volume(np.zeros((40, 30, 15)), affine((1.0, 1.2, 3.0), (20.0, 10.0, -20.0), "RAS"))
    out = resample_to(src, dst, "linear")
    expect = 2.0 * dst.voxel_to_world(np.argwhere(np.ones(dst.shape, bool)))[:, 0] + 1.0
    assert np.allclose(out.array.ravel(order="C"), expect.reshape(dst.shape).ravel(order="C"), atol=1e-3)


def test_resample_nearest_keeps_labels_and_dtype():
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[5:15, 5:15, 5:15] = 2
    src = Volume(lab, affine((2, 2, 2), (0, 0, 0), "RAS"))
    dst = Volume(np.zeros((40, 40, 40)), affine((1, 1, 1), (-0.5, -0.5, -0.5), "RAS"))
    out = resample_to(src, dst, "nearest")
    assert out.array.dtype == np.uint8
    assert set(np.unique(out.array)) == {0, 2}
    # the cube covers world 10..28 mm, i.e. target voxels 10.5..28.5
    assert out.array[20, 20, 20] == 2 and out.array[5, 20, 20] == 0


def test_from_napari_restores_file_order_or_uses_the_layer_affine(rng):
    vol = Volume(rng.integers(0, 3, (5, 6, 7)).astype(np.uint8), affine((1, 1, 2), (3, 4, 5), "LPS"))
    data, napari_affine, geo = to_napari(vol)
    restored = from_napari(data, napari_affine, geo)
    assert np.array_equal(restored.array, vol.array) and np.allclose(restored.affine, vol.affine)
    moved = napari_affine.copy()
    moved[0, 3] += 10.0  # the user moved the layer 10 mm inferior
    shifted = from_napari(data, moved, geo)
    assert shifted.shape == data.shape
    corner_world = napari_to_ras(moved[:3, 3])
    assert np.allclose(shifted.voxel_to_world([0, 0, 0]), corner_world)


def test_layer_geometry_metadata_round_trip():
    vol = Volume(np.zeros((3, 4, 5)), rotation(10, 1) @ affine((1, 2, 3), (1, 2, 3), "PIR"))
    geo = LayerGeometry.for_volume(vol)
    again = LayerGeometry.from_metadata(geo.as_metadata())
    assert again.display_shape == geo.display_shape
    assert np.allclose(again.napari_affine, geo.napari_affine)


def test_oblique_and_sheared_detection():
    straight = Volume(np.zeros((3, 3, 3)), affine((1, 1, 1), (0, 0, 0), "LPS"))
    oblique = Volume(np.zeros((3, 3, 3)), rotation(5, 0) @ straight.affine)
    sheared_aff = straight.affine.copy()
    sheared_aff[0, 1] = 0.3
    sheared = Volume(np.zeros((3, 3, 3)), sheared_aff)
    assert not straight.is_oblique and not straight.is_sheared
    assert oblique.is_oblique and not oblique.is_sheared
    assert abs(oblique.obliquity_deg - 5.0) < 1e-6
    assert sheared.is_sheared
    with pytest.raises(GeometryError, match="sheared"):
        sheared.to_sitk()


def test_axis_aligned_resampling_covers_an_oblique_volume():
    arr = np.zeros((21, 21, 21), np.float32)
    arr[8:13, 8:13, 8:13] = 1.0
    vol = Volume(arr, rotation(10, 2) @ affine((1, 1, 1), (-10, -10, -10), "RAS"))
    straight = vol.axis_aligned("linear")
    assert not straight.is_oblique
    centre = straight.voxel_to_world(np.argwhere(straight.array > 0.5).mean(axis=0))
    assert np.allclose(centre, vol.voxel_to_world([10, 10, 10]), atol=0.5)


def test_bad_volumes_are_refused():
    with pytest.raises(GeometryError, match="3D"):
        Volume(np.zeros((3, 3)), np.eye(4))
    with pytest.raises(GeometryError, match="singular"):
        Volume(np.zeros((3, 3, 3)), np.zeros((4, 4)))


@pytest.mark.parametrize("codes", AXCODES)
def test_boxes_map_between_display_and_file_order(codes, rng):
    vol = Volume(np.zeros((7, 8, 9), np.uint8), affine((1.0, 2.0, 3.0), (0, 0, 0), codes))
    data, _, geo = to_napari(vol)
    box = (slice(1, 4), slice(2, 7), slice(0, 3))
    marked = np.zeros(data.shape, bool)
    marked[box] = True
    file_box = geo.display_box_to_file(box)
    in_file = geo.to_file(marked)
    assert in_file[file_box].all() and in_file.sum() == marked.sum()
    assert geo.file_box_to_display(file_box) == box
