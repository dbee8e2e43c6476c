"""Study discovery (HECKTOR 2022/2021, autoPET, explicit paths) and bad input."""

from __future__ import annotations

import gzip
import shutil
import warnings

import nibabel as nib
import numpy as np
import pytest

import napari_hnc
from napari_hnc.errors import GeometryError, HncWarning, ImageFileError, StudyError
from napari_hnc.study import classify_file, discover_studies, guess_role_from_name, load_study
from synthetic import affine, rotation, save_nifti, write_hecktor2022


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("which", ["ct", "pet", "labels", "folder"])
def test_hecktor2022_from_any_file_or_folder(tmp_path, split, which):
    paths = write_hecktor2022(tmp_path, "CHUM-001", split_folders=split)
    target = (tmp_path / "imagesTr" if split else tmp_path) if which == "folder" else paths[which]
    study = napari_hnc.load_study(target)
    assert study.case_id == "CHUM-001" and study.layout == "hecktor2022"
    assert study.ct.shape == (40, 36, 20) and study.pet.shape == (20, 18, 20)
    assert study.labels is not None and study.labels.same_grid(study.ct)
    assert study.ct.metadata["role"] == "ct" and study.pet.metadata["units"] == "SUVbw"


def test_hecktor2021_and_autopet(tmp_path):
    aff = affine((2, 2, 2), (0, 0, 0), "LPS")
    ct = np.full((8, 8, 8), -50, np.int16)
    for name in ("CHGJ007_ct", "CHGJ007_pt", "CHGJ007_gtvt"):
        save_nifti(ct if "ct" == name[-2:] else np.ones((8, 8, 8), np.uint8), aff, tmp_path / "h21" / f"{name}.nii.gz")
    study = load_study(tmp_path / "h21" / "CHGJ007_pt.nii.gz")
    assert (study.case_id, study.layout) == ("CHGJ007", "hecktor2021")
    assert study.labels is not None
    case = tmp_path / "autopet" / "PETCT_0af7ffe12a" / "08-12-2005-NA-PET-CT"
    for name in ("CTres", "SUV", "SEG"):
        save_nifti(ct if name == "CTres" else np.ones((8, 8, 8), np.uint8), aff, case / f"{name}.nii.gz")
    study = load_study(case)
    assert study.layout == "autopet" and study.case_id == "PETCT_0af7ffe12a_08-12-2005-NA-PET-CT"


def test_explicit_paths_and_labels_on_the_pet_grid_go_to_the_ct_grid(tmp_path):
    paths = write_hecktor2022(tmp_path / "src", "A", with_labels=False)
    pet = nib.load(paths["pet"])
    pet_labels = (np.asanyarray(pet.dataobj) > 4).astype(np.uint8)
    lab = save_nifti(pet_labels, pet.affine, tmp_path / "pet_mask.nii.gz")
    study = load_study(ct=paths["ct"], pet=paths["pet"], labels=lab, case_id="mine")
    assert study.case_id == "mine" and study.layout == "generic"
    assert study.labels.same_grid(study.ct) and study.labels.array.max() == 1


def test_discover_studies_lists_every_case_once(tmp_path):
    for case in ("B-002", "A-001", "C-003"):
        write_hecktor2022(tmp_path, case, split_folders=True)
    found = discover_studies(tmp_path)
    assert [s.case_id for s in found] == ["A-001", "B-002", "C-003"]
    assert all(s.labels is not None for s in found)
    with pytest.raises(StudyError, match="holds 3 studies"):
        load_study(tmp_path / "imagesTr")


def test_classify_and_guess_roles():
    assert classify_file("x/imagesTr/CHUM-001__CT.nii.gz") == ("hecktor2022", "CHUM-001", "ct")
    assert classify_file("CHGJ007_ct_gtvt.nii.gz") == ("hecktor2021", "CHGJ007", "labels")
    assert classify_file("notes.txt") is None
    assert guess_role_from_name("STS_001/CT/nifti/image/image.nii.gz") == "ct"
    assert guess_role_from_name("scan_suv.nii.gz") == "pet"
    assert guess_role_from_name("random.nii.gz") is None


def test_pet_on_grid_is_cached_and_aligned(tmp_path):
    study = load_study(write_hecktor2022(tmp_path)["ct"])
    pet = study.pet_on_grid()
    assert pet is study.pet_on_grid() and pet.same_grid(study.ct)
    # the hot ball of the PET sits on the lesion of the labels
    hot = np.argwhere(pet.array > 4).mean(axis=0)
    lesion = np.argwhere(study.labels.array).mean(axis=0)
    assert np.linalg.norm((hot - lesion) * study.ct.spacing) < 1.5


# --------------------------------------------------------------------------- bad input


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(StudyError, match="does not exist"):
        load_study(tmp_path / "nope")
    with pytest.raises(StudyError, match="no PET/CT study found"):
        load_study(tmp_path)


def test_truncated_gzip_names_the_file(tmp_path):
    path = write_hecktor2022(tmp_path)["ct"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match=r"__CT\.nii\.gz.*(truncated|readable).*re-export"):
        load_study(path)


def test_garbage_file_is_refused(tmp_path):
    bad = tmp_path / "X__CT.nii.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(b"this is not a nifti header" * 20)
    with pytest.raises(ImageFileError, match="not a readable NIfTI"):
        napari_hnc.read_nifti(bad)


def test_2d_image_is_refused(tmp_path):
    path = save_nifti(np.zeros((64, 64), np.float32), np.eye(4), tmp_path / "slice.nii.gz")
    with pytest.raises(ImageFileError, match="2D image.*not a 3D volume"):
        napari_hnc.read_nifti(path)


def test_4d_image_gives_its_first_frame_with_a_warning(tmp_path):
    arr = np.stack([np.full((4, 5, 6), t, np.float32) for t in range(3)], axis=-1)
    path = save_nifti(arr, np.eye(4), tmp_path / "dyn.nii.gz")
    with pytest.warns(HncWarning, match="4D.*first frame"):
        vol = napari_hnc.read_nifti(path)
    assert vol.shape == (4, 5, 6) and np.all(vol.array == 0)


def test_nan_and_inf_are_replaced_with_a_warning(tmp_path):
    arr = np.ones((4, 4, 4), np.float32)
    arr[0, 0, 0], arr[1, 1, 1] = np.nan, np.inf
    path = save_nifti(arr, np.eye(4), tmp_path / "pet.nii.gz")
    with pytest.warns(HncWarning, match="2 NaN or infinite"):
        vol = napari_hnc.read_nifti(path)
    assert np.isfinite(vol.array).all() and vol.array[0, 0, 0] == 1.0


def test_pet_in_bq_per_ml_is_flagged(tmp_path):
    paths = write_hecktor2022(tmp_path, with_labels=False)
    img = nib.load(paths["pet"])
    save_nifti(np.asanyarray(img.dataobj) * 5000.0, img.affine, paths["pet"])
    with pytest.warns(HncWarning, match="looks like Bq/ml, not SUV"):
        study = load_study(paths["ct"])
    assert study.pet.metadata["units"].startswith("unknown")


def test_labels_on_an_unrelated_grid_are_refused_unless_asked(tmp_path):
    paths = write_hecktor2022(tmp_path, with_labels=False)
    other = save_nifti(np.ones((7, 7, 7), np.uint8), affine((3, 3, 3), (0, 0, -10), "RAS"), tmp_path / "m.nii.gz")
    with pytest.raises(GeometryError, match="matches neither the CT nor the PET.*resample_labels=True"):
        load_study(ct=paths["ct"], pet=paths["pet"], labels=other)
    study = load_study(ct=paths["ct"], pet=paths["pet"], labels=other, resample_labels=True)
    assert study.labels.same_grid(study.ct)


def test_label_values_beyond_the_classes_warn(tmp_path):
    paths = write_hecktor2022(tmp_path)
    img = nib.load(paths["labels"])
    arr = np.asanyarray(img.dataobj).copy()
    arr[0, 0, 0] = 7
    save_nifti(arr, img.affine, paths["labels"])
    with pytest.warns(HncWarning, match=r"\[7\]"):
        study = load_study(paths["ct"])
    assert study.labels.array.max() == 7


def test_sheared_image_is_resampled_with_a_warning(tmp_path):
    aff = affine((1, 1, 1), (0, 0, 0), "RAS")
    aff[0, 1] = 0.2
    path = save_nifti(np.ones((10, 10, 10), np.float32), aff, tmp_path / "sheared_ct.nii.gz")
    with pytest.warns(HncWarning, match="sheared"):
        study = load_study(ct=path)
    assert not study.ct.is_sheared and not study.ct.is_oblique


def test_oblique_image_is_kept_or_resampled_on_request(tmp_path):
    aff = rotation(6, 0) @ affine((1, 1, 2), (0, 0, 0), "LPS")
    path = save_nifti(np.ones((10, 10, 10), np.int16), aff, tmp_path / "oblique_ct.nii.gz")
    kept = load_study(ct=path)
    assert np.allclose(kept.ct.affine, nib.load(path).affine, atol=1e-5)
    with pytest.warns(HncWarning, match="oblique"):
        straight = load_study(ct=path, oblique="resample")
    assert not straight.ct.is_oblique


def test_ct_and_pet_that_do_not_overlap(tmp_path):
    paths = write_hecktor2022(tmp_path, with_labels=False)
    img = nib.load(paths["pet"])
    far = img.affine.copy()
    far[2, 3] += 5000
    save_nifti(np.asanyarray(img.dataobj), far, paths["pet"])
    with pytest.raises(GeometryError, match="do not overlap"):
        load_study(paths["ct"])


def test_a_lone_labels_file_is_not_a_study(tmp_path):
    path = save_nifti(np.ones((5, 5, 5), np.uint8), np.eye(4), tmp_path / "mask.nii.gz")
    with pytest.raises(StudyError, match="CT or PET"):
        load_study(path)


def test_no_warning_for_a_clean_study(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_study(write_hecktor2022(tmp_path)["ct"])
