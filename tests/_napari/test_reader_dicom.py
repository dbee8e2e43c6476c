"""The npe2 reader opens DICOM folders (the whole study) and single DICOM files (their series)."""

from __future__ import annotations

import numpy as np

from dicom_factory import write_rtstruct, write_series
from napari_hnc._napari.reader import get_reader
from napari_hnc._napari.writer import write_labels
from napari_hnc.io.nifti import read_nifti


def test_reader_opens_a_dicom_study_folder_and_saved_labels_line_up(tmp_path):
    write_series(tmp_path / "dicom" / "ct", np.full((10, 8, 4), 30, np.int16), slice_step=2.0)
    write_series(tmp_path / "dicom" / "pet", np.full((5, 4, 4), 500, np.int16), modality="PT", spacing=(2.0, 3.0),
                 slice_step=2.0)
    # CT pixel centres: x = -10 + 1.5 i, y = -20 + 2 j (LPS), slice 1 at z = 32: the box holds x -7, -5.5 and y -18, -16
    box = np.array([[-8.0, -19.0, 32.0], [-5.0, -19.0, 32.0], [-5.0, -15.0, 32.0], [-8.0, -15.0, 32.0]])
    write_rtstruct(tmp_path / "dicom" / "rs.dcm", {"GTVn": [box]})
    reader = get_reader(str(tmp_path / "dicom"))
    assert reader is not None
    layers = reader(str(tmp_path / "dicom"))
    assert [(kw["name"], kind) for _, kw, kind in layers] == [
        ("CASE-1 CT", "image"), ("CASE-1 PET", "image"), ("CASE-1 labels", "labels")]
    assert layers[1][1]["metadata"]["units"] == "SUVbw"
    data, attributes, _ = layers[2]
    assert np.unique(data).tolist() == [0, 2] and int((data == 2).sum()) == 4
    saved = write_labels(str(tmp_path / "labels.nii.gz"), data, attributes)
    written = read_nifti(saved[0])
    ct_affine = layers[0][1]["metadata"]["affine"]
    np.testing.assert_allclose(written.affine, ct_affine, atol=1e-5)


def test_reader_opens_one_dicom_file_as_its_series(tmp_path):
    paths = write_series(tmp_path, np.full((6, 5, 3), 7, np.int16))
    reader = get_reader(str(paths[0]))
    (layer,) = reader(str(paths[0]))
    assert layer[2] == "image" and layer[0].shape == (3, 5, 6)
    assert get_reader(str(tmp_path / "missing.txt")) is None


def test_reader_never_shows_an_anonymised_real_pet_with_a_wrong_suv(dicom_hn_root):
    import pytest

    from napari_hnc.errors import UnitsError

    folder = str(dicom_hn_root / "HN-HGJ-016_PET")
    (layer,) = get_reader(folder)(folder)
    assert layer[1]["metadata"]["units"] == "SUVbw"
    assert 20 < float(np.max(layer[0])) < 25  # 23.3 by the tags (67736 with the anonymised series time)
    folder = str(dicom_hn_root / "HN-HMR-029_PET")
    with pytest.raises(UnitsError, match="PatientWeight.*contradictory times"):
        get_reader(folder)(folder)
