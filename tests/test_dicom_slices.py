"""DICOM series to Volumes: slice order, LPS -> RAS geometry, rescaling, irregular spacing, bad series."""

from __future__ import annotations

import numpy as np
import pytest

from dicom_factory import write_rtstruct, write_series
from napari_hnc.errors import HncWarning, ImageFileError, StudyError
from napari_hnc.io.dicom.reader import read_dicom_image
from napari_hnc.io.dicom.series import scan_dicom


def ramp(shape=(6, 5, 4)) -> np.ndarray:
    """Stored values that tell every voxel apart: 100*slice + 10*row + column."""
    i, j, k = np.indices(shape)
    return (100 * k + 10 * j + i).astype(np.int16)


def dicom_point(origin, spacing, orientation, step, i, j, k) -> np.ndarray:
    """PS3.3 C.7.6.2.1.1: centre of pixel (column i, row j) of slice k, in LPS mm."""
    row, col = np.array(orientation[:3]), np.array(orientation[3:])
    return np.asarray(origin) + i * spacing[1] * row + j * spacing[0] * col + k * step * np.cross(row, col)


@pytest.mark.parametrize("orientation", [(1, 0, 0, 0, 1, 0), (1, 0, 0, 0, 0, -1), (0, 1, 0, 0, 0, -1)],
                         ids=["axial", "coronal", "sagittal"])
def test_slices_are_sorted_and_placed_in_ras(tmp_path, orientation):
    stored = ramp()
    write_series(tmp_path, stored, origin=(-10, -20, 30), spacing=(2.0, 1.5), slice_step=3.0, orientation=orientation)
    volume = read_dicom_image(tmp_path, "ct")
    np.testing.assert_array_equal(volume.array, stored)  # [column, row, slice], files were shuffled
    assert volume.array.dtype == np.int16
    for ijk in [(0, 0, 0), (5, 4, 3), (2, 1, 3)]:
        lps = dicom_point((-10, -20, 30), (2.0, 1.5), orientation, 3.0, *ijk)
        expected_ras = lps * np.array([-1, -1, 1])
        np.testing.assert_allclose(volume.voxel_to_world(ijk), expected_ras, atol=1e-4)
    assert volume.metadata["modality"] == "CT" and volume.metadata["units"] == "HU"


def test_rescale_slope_and_intercept_per_slice(tmp_path):
    stored = np.full((4, 3, 3), 10, np.int16)
    write_series(tmp_path, stored, slopes=[1.0, 2.0, 0.5], intercept=-1024.0)
    # CT with a non-integer slope: float32 values slope_k * 10 - 1024
    volume = read_dicom_image(tmp_path, "ct")
    assert volume.array.dtype == np.float32
    np.testing.assert_allclose(volume.array[0, 0, :], [10 - 1024, 20 - 1024, 5 - 1024])


def test_pet_slices_with_their_own_slope_give_one_suv(tmp_path):
    # Three slices store 1000, 2000 and 4000 with slopes 2, 1 and 0.5: all mean 2000 Bq/ml.
    stored = np.stack([np.full((4, 3), v, np.int16) for v in (1000, 2000, 4000)], axis=-1)
    write_series(tmp_path, stored, modality="PT", slopes=[2.0, 1.0, 0.5])
    volume = read_dicom_image(tmp_path, "pet")
    # factor of the default header: 70 000 g / (3.7e8 Bq * 2**(-3600/6586.2)) = 2.76337e-4 g/Bq
    factor = 70_000 / (3.7e8 * 2 ** (-3600 / 6586.2))
    np.testing.assert_allclose(volume.array, 2000 * factor, rtol=1e-6)
    assert volume.metadata["units"] == "SUVbw" and volume.metadata["suv"]["decay_s"] == 3600


def test_missing_slice_is_resampled_with_a_warning(tmp_path):
    stored = np.stack([np.full((3, 3), 10 * k, np.int16) for k in range(5)], axis=-1)
    # slices at 0, 3, 6, 12, 15 mm: the one at 9 mm is missing
    write_series(tmp_path, stored, positions=[0, 3, 6, 12, 15])
    with pytest.warns(HncWarning, match="irregular"):
        volume = read_dicom_image(tmp_path, "ct")
    assert volume.shape == (3, 3, 6) and volume.spacing[2] == pytest.approx(3.0)
    np.testing.assert_allclose(volume.array[0, 0, :], [0, 10, 20, 25, 30, 40])


def test_small_jitter_in_positions_is_not_irregular(tmp_path, recwarn):
    stored = ramp((3, 3, 5))
    write_series(tmp_path, stored, positions=[0, 3.02, 5.99, 9.0, 12.0])
    volume = read_dicom_image(tmp_path, "ct")
    assert volume.shape == (3, 3, 5)
    assert not [w for w in recwarn if issubclass(w.category, HncWarning)]


def test_single_file_series_is_a_clear_error(tmp_path):
    write_series(tmp_path, ramp((3, 3, 1)))
    with pytest.raises(StudyError, match="single slice"):
        read_dicom_image(tmp_path, "ct")


def test_duplicate_positions_are_a_clear_error(tmp_path):
    write_series(tmp_path, ramp((3, 3, 3)), positions=[0, 3, 3])
    with pytest.raises(StudyError, match="same position"):
        read_dicom_image(tmp_path, "ct")


def test_missing_series_is_a_clear_error(tmp_path):
    write_series(tmp_path / "ct", ramp((3, 3, 3)))
    with pytest.raises(StudyError, match="no PT series"):
        read_dicom_image(tmp_path, "pet")
    write_rtstruct(tmp_path / "only" / "rs.dcm", {"GTVp": []})
    with pytest.raises(StudyError, match=r"no CT or PET series.*RTSTRUCT"):
        read_dicom_image(tmp_path / "only")


def test_mixed_slices_are_refused(tmp_path):
    write_series(tmp_path, ramp((3, 3, 3)), series_uid="1.2.3.4")
    write_series(tmp_path / "b", ramp((4, 3, 3)), series_uid="1.2.3.4", positions=[9, 12, 15])
    with pytest.raises(ImageFileError, match="another orientation, pixel spacing or size"):
        read_dicom_image(tmp_path, "ct")


def test_scan_groups_series_and_picks_the_largest(tmp_path):
    write_series(tmp_path / "ct", ramp((3, 3, 4)))
    write_series(tmp_path / "scout", ramp((3, 3, 2)))
    write_series(tmp_path / "pet", ramp((3, 3, 4)), modality="PT")
    (study,) = scan_dicom(tmp_path)
    assert study.case_id == "CASE-1"
    assert len(study.ct.files) == 4 and study.pet.modality == "PT"
    assert [s.folder.name for s in study.ignored] == ["scout"]
    with pytest.warns(HncWarning, match="ignoring"):
        assert read_dicom_image(tmp_path, "ct").shape == (3, 3, 4)


def test_pixels_not_at_the_end_of_the_file_are_read_by_pydicom(tmp_path):
    stored = ramp((4, 3, 3))
    paths = write_series(tmp_path, stored)
    for path in paths[:2]:  # Data Set Trailing Padding (FFFC,FFFC) after the pixel data: no fast path
        with open(path, "ab") as handle:
            handle.write(b"\xfc\xff\xfc\xffOB\x00\x00" + (4).to_bytes(4, "little") + b"\x00" * 4)
    np.testing.assert_array_equal(read_dicom_image(tmp_path, "ct").array, stored)
