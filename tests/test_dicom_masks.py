"""RTSTRUCT rasterisation (holes, any grid), DICOM SEG (BINARY, FRACTIONAL) and ROI-name mapping."""

from __future__ import annotations

import numpy as np
import pytest

from dicom_factory import write_rtstruct, write_seg, write_series
from napari_hnc.errors import HncWarning
from napari_hnc.geometry import Volume
from napari_hnc.io.dicom.names import classify_rois, parse_roi_option, roi_class
from napari_hnc.io.dicom.reader import read_dicom_image, read_dicom_labels
from napari_hnc.io.dicom.rtstruct import rasterise_rtstruct
from napari_hnc.io.dicom.seg import seg_labels

ORIGIN = (-10.0, -20.0, 30.0)
SPACING = (1.0, 1.0)  # between rows, between columns
STEP = 2.0


def square(i0, i1, j0, j1, k) -> np.ndarray:
    """LPS contour around voxel centres i0..i1 x j0..j1 of slice k (drawn on voxel edges)."""
    x0, x1 = ORIGIN[0] + i0 - 0.5, ORIGIN[0] + i1 + 0.5
    y0, y1 = ORIGIN[1] + j0 - 0.5, ORIGIN[1] + j1 + 0.5
    z = ORIGIN[2] + k * STEP
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])


@pytest.fixture
def ct(tmp_path) -> Volume:
    write_series(tmp_path / "ct", np.zeros((20, 16, 6), np.int16), origin=ORIGIN, spacing=SPACING, slice_step=STEP)
    return read_dicom_image(tmp_path / "ct", "ct")


def test_contour_with_hole_is_xor_filled(tmp_path, ct):
    outer, hole = square(2, 11, 3, 12, 2), square(5, 8, 6, 9, 2)  # 10 x 10 voxels, 4 x 4 hole
    node = square(14, 16, 1, 3, 4)  # 3 x 3 voxels
    path = write_rtstruct(tmp_path / "rs.dcm", {"GTVp": [outer, hole], "GTVn_1": [node]})
    labels = rasterise_rtstruct(path, ct)
    assert labels.same_grid(ct) and labels.array.dtype == np.uint8
    expected = np.zeros(ct.shape, np.uint8)
    expected[2:12, 3:13, 2] = 1
    expected[5:9, 6:10, 2] = 0
    expected[14:17, 1:4, 4] = 2
    np.testing.assert_array_equal(labels.array, expected)
    assert labels.metadata["rois"] == {"GTVp": 1, "GTVn_1": 2}


def test_rtstruct_on_a_coarser_grid_keeps_world_positions(tmp_path, ct):
    # The same square on an RAS-ordered grid (not the LPS DICOM one) with 2 mm pixels.
    # Box: LPS x -8.5..1.5, y -16.5..-8.5 -> RAS x -1.5..8.5, y 8.5..16.5, z 36.
    # Grid centres RAS x = -5 + 2i (inside: -1, 1, 3, 5, 7), y = 4 + 2j (10, 12, 14, 16), z = 30 + 2k (k = 3).
    path = write_rtstruct(tmp_path / "rs.dcm", {"GTV_T": [square(2, 11, 4, 11, 3)]})
    affine = np.diag([2.0, 2.0, STEP, 1.0])
    affine[:3, 3] = [-5.0, 4.0, 30.0]
    coarse = Volume(np.zeros((12, 10, 6), np.float32), affine)
    labels = rasterise_rtstruct(path, coarse).array
    inside = np.argwhere(labels == 1)
    world = coarse.voxel_to_world(inside) * np.array([-1, -1, 1])  # back to LPS
    lps_box = square(2, 11, 4, 11, 3)
    assert np.all(world[:, 0] > lps_box[:, 0].min()) and np.all(world[:, 0] < lps_box[:, 0].max())
    assert np.all(world[:, 1] > lps_box[:, 1].min()) and np.all(world[:, 1] < lps_box[:, 1].max())
    assert labels.sum() == 5 * 4 and set(inside[:, 2]) == {3}


def test_unknown_names_warn_and_a_user_map_fixes_them(tmp_path, ct):
    path = write_rtstruct(tmp_path / "rs.dcm", {"GTV_Edema": [square(2, 4, 2, 4, 1)], "Mass": [square(8, 9, 8, 9, 1)]})
    with pytest.warns(HncWarning, match=r"GTV_Edema.*roi_map"):
        labels = rasterise_rtstruct(path, ct)
    assert np.unique(labels.array).tolist() == [0, 1] and labels.array.sum() == 4
    mapped = rasterise_rtstruct(path, ct, {"gtv_edema": "node", "Mass": None})
    assert (mapped.array == 2).sum() == 9 and (mapped.array == 1).sum() == 0


def test_contour_across_slices_is_skipped_with_a_warning(tmp_path, ct):
    tilted = square(2, 6, 2, 6, 1)
    tilted[2:, 2] += 3 * STEP
    path = write_rtstruct(tmp_path / "rs.dcm", {"GTVp": [tilted]})
    with pytest.warns(HncWarning, match="not parallel"):
        assert rasterise_rtstruct(path, ct).array.sum() == 0


def test_folder_mask_pick_follows_the_referenced_series(tmp_path, ct):
    write_rtstruct(tmp_path / "a" / "rs.dcm", {"GTVp": [square(1, 2, 1, 2, 1)]}, referenced_series="9.9.9")
    write_rtstruct(tmp_path / "b" / "rs.dcm", {"GTVp": [square(1, 4, 1, 4, 1)]},
                   referenced_series=ct.metadata["series_uid"])
    assert read_dicom_labels(tmp_path, ct).array.sum() == 16


@pytest.mark.parametrize("fractional", [False, True], ids=["binary", "fractional"])
def test_seg_segments_become_classes_on_the_grid(tmp_path, ct, fractional):
    primary = np.zeros(ct.shape, bool)
    primary[3:9, 2:7, 1:4] = True
    node = np.zeros(ct.shape, bool)
    node[12:15, 10:14, 4:6] = True
    node[8, 6, 3] = True  # overlaps the primary: the node wins
    path = write_seg(tmp_path / "seg.dcm", {"GTVp": primary, "GTVn": node}, origin=ORIGIN, spacing=SPACING,
                     slice_step=STEP, fractional=fractional)
    labels = seg_labels(path, ct)
    expected = np.zeros(ct.shape, np.uint8)
    expected[primary] = 1
    expected[node] = 2
    np.testing.assert_array_equal(labels.array, expected)
    assert labels.same_grid(ct) and labels.metadata["rois"] == {"GTVp": 1, "GTVn": 2}
    np.testing.assert_array_equal(read_dicom_labels(path, ct).array, expected)


def test_default_names_and_options():
    names = ["GTVp", "GTV-T", "GTV_primary", "GTV_Mass_CT", "tumour", "GTVn", "GTV_N_2", "GTVn1", "LN_L2",
             "lymph node", "GTV_Edema", "Body"]
    assert [roi_class(n) for n in names] == [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, None, None]
    with pytest.warns(HncWarning, match="Body"):
        assert classify_rois(["GTVp", "Body", "GTVn"]) == {"GTVp": 1, "GTVn": 2}
    assert classify_rois(["Body"], {"body": None}) == {}
    assert roi_class("GTV 3", {r"GTV \d+": "node"}) == 2
    assert parse_roi_option("GTV_Edema=none") == ("GTV_Edema", None)
    with pytest.raises(ValueError):
        parse_roi_option("GTV_Edema=lung")
    with pytest.raises(ValueError):
        parse_roi_option("GTV_Edema")
