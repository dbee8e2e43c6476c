"""Acceptance on the real STS_001 DICOM (TCIA Soft-tissue Sarcoma, CC BY 3.0) against its NIfTI."""

from __future__ import annotations

import numpy as np
import pytest

from napari_hnc import load_study
from napari_hnc.errors import HncWarning
from napari_hnc.geometry import resample_to
from napari_hnc.io.dicom import read_dicom_image
from napari_hnc.io.dicom.rtstruct import rasterise_rtstruct
from napari_hnc.io.nifti import read_nifti


@pytest.fixture(scope="module")
def ct_dicom(sts_root):
    return read_dicom_image(sts_root / "STS_001" / "CT" / "dicom" / "image", "ct")


@pytest.fixture(scope="module")
def raw_pet(sts_root):
    return read_dicom_image(sts_root / "raw" / "STS_001" / "FDG_PET", "pet")


def test_ct_from_dicom_equals_the_nifti(sts_root, ct_dicom):
    nifti = read_nifti(sts_root / "STS_001" / "CT" / "nifti" / "image" / "image.nii.gz")
    assert ct_dicom.shape == nifti.shape == (198, 202, 59)
    np.testing.assert_array_equal(ct_dicom.array, nifti.array)  # HU exact
    assert np.abs(ct_dicom.affine - nifti.affine).max() < 0.01  # mm (measured: 7e-6)


def test_rtstruct_gtv_mass_matches_the_nifti_mask(sts_root, ct_dicom):
    labels = rasterise_rtstruct(sts_root / "STS_001" / "CT" / "dicom" / "mask" / "RS.dcm", ct_dicom)
    reference = read_nifti(sts_root / "STS_001" / "CT" / "nifti" / "mask" / "mask.nii.gz").array > 0
    mask = labels.array == 1
    dice = 2 * np.sum(mask & reference) / (mask.sum() + reference.sum())
    assert dice >= 0.97  # measured: 1.0 (117 145 voxels each)
    assert labels.metadata["rois"] == {"GTV_Mass_CT": 1}


def test_whole_body_ge_pet_suv_matches_the_suv_nifti(sts_root, raw_pet):
    suv = raw_pet.metadata["suv"]
    assert raw_pet.shape == (128, 128, 267) and raw_pet.metadata["units"] == "SUVbw"
    assert (suv["source_units"], suv["decay_correction"], suv["scan_reference_rule"]) == ("BQML", "START",
                                                                                         "SeriesDate/SeriesTime")
    assert suv["decay_s"] == 2711.0  # injection 10:35:00, series 11:20:11
    reference = read_nifti(sts_root / "STS_001" / "PET" / "nifti" / "image" / "image.nii.gz")
    on_reference = resample_to(raw_pet, reference, "linear").array  # compared through world coordinates
    overlap = reference.array > 1.0
    relative = np.abs(on_reference[overlap] - reference.array[overlap]) / reference.array[overlap]
    assert overlap.sum() > 1000
    assert np.median(relative) <= 0.01  # measured: 1.9e-6


def test_dicom_study_folders_open_as_studies(sts_root):
    study = load_study(sts_root / "STS_001")  # CT + cropped PET (Units GML) + the RTSTRUCT drawn on the CT
    assert study.case_id == "STS_001" and study.layout == "dicom"
    assert study.pet.metadata["suv"]["source_units"] == "GML"
    assert study.files.labels.parent.parent.parent.name == "CT"
    assert int((study.labels.array == 1).sum()) == 117145
    with pytest.warns(HncWarning, match="GTV_Edema"):
        whole_body = load_study(sts_root / "raw" / "STS_001" / "FDG_PET")
    assert whole_body.ct is None and whole_body.labels.same_grid(whole_body.pet)
    assert whole_body.labels.metadata["rois"] == {"GTV_Mass": 1, "GTV_Edema": 0}
