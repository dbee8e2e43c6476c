"""Dataset layouts on awkward real-world folders: predictions beside labels, ``.nii`` files, symbolic links."""

from __future__ import annotations

import os
import warnings

import nibabel as nib
import numpy as np
import pytest

from napari_hnc.cli import main
from napari_hnc.errors import HncWarning
from napari_hnc.inference.cohort import collect_studies
from napari_hnc.layouts import discover_studies, find_study_files, is_derived
from napari_hnc.study import load_study
from synthetic import write_hecktor2022
from synthetic_pet_ct import save_tiny_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("model"))


def _segment(inputs, out, model, *extra):
    return main(["segment", *map(str, inputs), "--out", str(out), "--model", str(model), "--device", "cpu",
                 "--threads", "1", *extra])


def _decompress(path, suffix=".nii"):
    """Write ``path`` (.nii.gz) uncompressed beside it and delete the .nii.gz."""
    target = path.with_name(path.name[: -len(".nii.gz")] + suffix)
    nib.save(nib.load(str(path)), str(target))
    path.unlink()
    return target


# --------------------------------------------------------------------------- predictions never shadow labels


def test_segment_into_the_labels_folder_keeps_the_expert_labels(tmp_path, tiny_model, capsys):
    paths = write_hecktor2022(tmp_path / "data", split_folders=True)
    expert = paths["labels"].read_bytes()
    assert _segment([paths["ct"]], paths["labels"].parent, tiny_model) == 0
    assert paths["labels"].read_bytes() == expert  # the reference labels were not replaced
    assert (paths["labels"].parent / "CASE-001_pred.nii.gz").is_file()
    study = load_study(paths["ct"])
    assert study.files.labels == paths["labels"]
    assert np.array_equal(study.labels.array, np.asanyarray(nib.load(str(paths["labels"])).dataobj))


def test_segment_beside_the_images_does_not_become_the_study_labels(tmp_path, tiny_model):
    paths = write_hecktor2022(tmp_path / "data", split_folders=True)
    assert _segment([paths["ct"]], paths["ct"].parent, tiny_model) == 0
    assert (paths["ct"].parent / "CASE-001_pred.nii.gz").is_file()
    study = load_study(paths["ct"])
    assert study.files.labels == paths["labels"]  # still the expert's, not the prediction
    [found] = discover_studies(tmp_path / "data")
    assert found.case_id == "CASE-001" and found.labels == paths["labels"]


def test_segment_refuses_to_replace_its_outputs_without_overwrite(tmp_path, tiny_model, capsys):
    paths = write_hecktor2022(tmp_path / "data")
    out = tmp_path / "out"
    assert _segment([paths["ct"]], out, tiny_model) == 0
    before = (out / "CASE-001_pred.nii.gz").stat().st_mtime_ns
    with pytest.raises(SystemExit) as exit_info:
        _segment([paths["ct"]], out, tiny_model)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "CASE-001_pred.nii.gz" in err and "--overwrite" in err and "--resume" in err
    assert (out / "CASE-001_pred.nii.gz").stat().st_mtime_ns == before
    assert _segment([paths["ct"]], out, tiny_model, "--overwrite") == 0
    assert (out / "CASE-001_pred.nii.gz").stat().st_mtime_ns != before


def test_predictions_and_instance_maps_are_never_cases_or_labels(tmp_path):
    paths = write_hecktor2022(tmp_path, with_labels=False)
    lesion = np.asanyarray(nib.load(str(paths["ct"])).dataobj) > 45
    ct = nib.load(str(paths["ct"]))
    for name in ("CASE-001_pred.nii.gz", "CASE-001_instances.nii.gz", "OTHER_instances.nii.gz", "OTHER_pred.nii"):
        nib.save(nib.Nifti1Image(lesion.astype(np.uint8), ct.affine), str(tmp_path / name))
    [study] = discover_studies(tmp_path)
    assert study.case_id == "CASE-001" and study.labels is None
    assert load_study(paths["pet"]).labels is None
    # opened by itself, a derived file is a labels file (never a CT, never a study's images)
    for name in ("CASE-001_pred.nii.gz", "OTHER_instances.nii.gz"):
        files = find_study_files(tmp_path / name)
        assert files.layout == "generic" and files.labels == tmp_path / name and files.ct is None
    assert is_derived("x/CASE-001_instances.nii.gz") and not is_derived("x/CASE-001.nii.gz")


def test_instance_map_beside_labels_in_labels_folder_is_ignored(tmp_path):
    paths = write_hecktor2022(tmp_path, split_folders=True)
    instances = paths["labels"].with_name("CASE-001_instances.nii.gz")
    instances.write_bytes(paths["labels"].read_bytes())
    [study] = discover_studies(tmp_path)
    assert study.labels == paths["labels"]
    assert [s.case_id for s in collect_studies([tmp_path])] == ["CASE-001"]


# --------------------------------------------------------------------------- .nii and .nii.gz alike


def test_uncompressed_ct_beside_compressed_pet_is_found(tmp_path, tiny_model):
    paths = write_hecktor2022(tmp_path / "data", split_folders=True)
    ct = _decompress(paths["ct"])
    labels = _decompress(paths["labels"])
    [files] = discover_studies(tmp_path / "data")
    assert (files.ct, files.pet, files.labels) == (ct, paths["pet"], labels)
    study = load_study(paths["pet"])  # from the PET file: its .nii CT and .nii labels are found
    assert study.ct is not None and study.labels.same_grid(study.ct)
    assert find_study_files(labels).ct == ct
    assert _segment([paths["pet"]], tmp_path / "out", tiny_model) == 0  # "has no CT" before


@pytest.mark.parametrize("layout", ["hecktor2021", "autopet"])
def test_other_layouts_take_nii_too(tmp_path, layout):
    paths = write_hecktor2022(tmp_path / "src")
    names = {"hecktor2021": ("P1_ct", "P1_pt", "P1_gtvt"), "autopet": ("CTres", "SUV", "SEG")}[layout]
    folder = tmp_path / "patient" / "study"
    folder.mkdir(parents=True)
    for role, stem in zip(("ct", "pet", "labels"), names):
        nib.save(nib.load(str(paths[role])), str(folder / f"{stem}.nii"))
    [files] = discover_studies(tmp_path / "patient")
    assert files.layout == layout and all(p is not None and p.suffix == ".nii" for p in files.paths().values())


def test_both_suffixes_warn_and_use_the_compressed_file(tmp_path):
    paths = write_hecktor2022(tmp_path, with_labels=False)
    nib.save(nib.load(str(paths["ct"])), str(tmp_path / "CASE-001__CT.nii"))
    with pytest.warns(HncWarning, match="CASE-001__CT.nii.gz and CASE-001__CT.nii"):
        files = find_study_files(paths["pet"])
    assert files.ct == paths["ct"]


# --------------------------------------------------------------------------- symbolic links


def test_symlinked_case_folders_are_followed(tmp_path, tiny_model):
    storage, cohort = tmp_path / "storage", tmp_path / "cohort"
    write_hecktor2022(storage / "A", case_id="A")
    write_hecktor2022(cohort / "B", case_id="B")
    os.symlink(storage / "A", cohort / "A")
    os.symlink(cohort, cohort / "B" / "loop")  # a loop must not trap the walk
    studies = collect_studies([cohort])
    assert [s.case_id for s in studies] == ["A", "B"]
    assert studies[0].ct == cohort / "A" / "A__CT.nii.gz"
    assert _segment([cohort], tmp_path / "out", tiny_model) == 0
    assert (tmp_path / "out" / "A_pred.nii.gz").is_file() and (tmp_path / "out" / "B_pred.nii.gz").is_file()


def test_a_case_linked_twice_is_one_study_and_broken_links_are_reported(tmp_path):
    write_hecktor2022(tmp_path / "cohort" / "A", case_id="A")
    os.symlink(tmp_path / "cohort" / "A", tmp_path / "cohort" / "A-again")
    os.symlink(tmp_path / "gone__CT.nii.gz", tmp_path / "cohort" / "X__CT.nii.gz")
    with pytest.warns(HncWarning, match="X__CT.nii.gz is a broken symbolic link"):
        studies = discover_studies(tmp_path / "cohort")
    assert [s.case_id for s in studies] == ["A"]


def test_hidden_temporaries_are_not_studies(tmp_path):
    paths = write_hecktor2022(tmp_path, with_labels=False)
    (tmp_path / ".CASE-002__CT.nii.gz.1234abcd.tmp.nii.gz").write_bytes(paths["ct"].read_bytes())
    (tmp_path / ".hidden").mkdir()
    write_hecktor2022(tmp_path / ".hidden", case_id="HIDDEN")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [s.case_id for s in discover_studies(tmp_path)] == ["CASE-001"]
