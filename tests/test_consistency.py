"""Consistent messages and exit codes on awkward input: bad options exit 2, unusable files are named, a DICOMDIR
or a doubly copied series is said to be one, and Ctrl-C ends with one line saying what was finished."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicom_factory import write_series
from napari_hnc import load_study
from napari_hnc.cli import main
from napari_hnc.errors import ImageFileError, StudyError
from napari_hnc.io.nifti import read_nifti, save_labels
from synthetic import write_hecktor2022


@pytest.fixture
def case(tmp_path):
    return write_hecktor2022(tmp_path / "data")


# --------------------------------------------------------------------------- exit code 2 for bad options


@pytest.mark.parametrize("click, words", [("1,2", "needs 3 coordinates"), ("a,b,c", "cannot read the click"),
                                          ("0,0,0:tumor-ish", "unknown label class")])
def test_a_malformed_click_is_bad_usage_and_is_named(case, tmp_path, capsys, click, words):
    with pytest.raises(SystemExit) as exit_info:
        main(["delineate", str(case["ct"]), "--click", "0,0,0", "--click", click, "--out", str(tmp_path / "l.nii.gz")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"--click number 2 ({click!r})" in err and words in err
    assert not (tmp_path / "l.nii.gz").exists()


@pytest.mark.parametrize("command", [["segment", "X"], ["demo", "--headless"], ["train", "X", "--layout", "autopet"],
                                     ["evaluate", "X", "--layout", "autopet", "--model", "m"]])
def test_a_bad_device_name_exits_2_before_anything_runs(command, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(command + ["--out", str(tmp_path / "o"), "--device", "gpu0"])
    assert exit_info.value.code == 2 and "unknown device 'gpu0'" in capsys.readouterr().err


def test_a_device_this_machine_lacks_exits_2(case, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["segment", str(case["ct"]), "--out", str(tmp_path / "o"), "--device", "cuda:63"])
    assert exit_info.value.code == 2 and "--device cuda:63" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_labels_with_other_class_values_are_refused_by_quantify(case, tmp_path, capsys):
    labels = read_nifti(case["labels"])
    array = labels.array.copy()
    array[0:2, 0:2, 0:2] = 7
    save_labels(array, labels, case["labels"])
    assert main(["quantify", str(case["ct"]), "--out", str(tmp_path / "q.csv")]) == 1
    err = capsys.readouterr().err
    assert "label values [7]" in err and "Relabel them to 1, 2 or 0" in err and not (tmp_path / "q.csv").exists()


# --------------------------------------------------------------------------- files that are not what they seem


def test_a_zero_voxel_size_names_the_file(tmp_path):
    header = nib.Nifti1Header()
    header.set_data_shape((5, 5, 5))
    header.set_data_dtype(np.float32)
    header.set_sform(np.diag([1.0, 1.0, 0.0, 1.0]), code=1)
    header["qform_code"] = 0
    path = tmp_path / "flat__CT.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((5, 5, 5), np.float32), None, header=header), str(path))
    with pytest.raises(ImageFileError, match=r"flat__CT\.nii\.gz: has a voxel size of 0 mm along axis k \(its sform\)"):
        load_study(path)


def test_a_zero_dicom_pixel_spacing_names_the_file(tmp_path):
    files = write_series(tmp_path / "ct", np.zeros((4, 4, 3), np.int16), spacing=(0.0, 1.0))
    with pytest.raises(ImageFileError, match=r"CT_\d+\.dcm: has a PixelSpacing of \[0\.0, 1\.0\] mm"):
        load_study(ct=tmp_path / "ct")
    assert files


def _dicomdir(path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.FileSetID = "EXPORT"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return path


def test_a_dicomdir_is_reported_as_one_and_opens_its_export(tmp_path, capsys):
    lone = _dicomdir(tmp_path / "empty" / "DICOMDIR")
    with pytest.raises(StudyError, match="is a DICOMDIR .* no DICOM image files"):
        load_study(lone)
    with pytest.raises(ImageFileError, match="is a DICOMDIR"):
        read_nifti(lone)
    with pytest.raises(SystemExit) as exit_info:
        main(["segment", str(lone), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "DICOMDIR" in capsys.readouterr().err and "NIfTI" not in capsys.readouterr().err
    export = tmp_path / "export"
    write_series(export / "S1" / "CT", np.full((6, 5, 4), 30, np.int16))
    study = load_study(_dicomdir(export / "DICOMDIR"))
    assert study.layout == "dicom" and study.ct.shape == (6, 5, 4)


def test_one_series_copied_into_two_folders_is_reported_as_a_copy(tmp_path, capsys):
    root = tmp_path / "dicom"
    write_series(root / "a", np.full((6, 5, 4), 30, np.int16))
    shutil.copytree(root / "a", root / "b")
    with pytest.raises(StudyError, match=r"is there twice: 4 file\(s\) are copies.*a and .*b\. The same series"):
        load_study(root)
    assert main(["convert", str(root), "--out", str(tmp_path / "out")]) == 1
    assert "copied into several folders" in capsys.readouterr().out
    assert load_study(root / "a").ct.shape == (6, 5, 4)  # one copy opens


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_in_segment_ends_with_one_line_and_the_finished_cases(tmp_path, capsys, monkeypatch):
    from napari_hnc.inference import cohort

    for name in ("A", "B", "C"):
        write_hecktor2022(tmp_path / "data", case_id=name)
    real = cohort.segment_case
    calls = []

    def interrupted_on_the_second(files, *args, **kwargs):
        calls.append(files.case_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(files, *args, **kwargs)

    monkeypatch.setattr(cohort, "segment_case", interrupted_on_the_second)
    monkeypatch.setattr("napari_hnc.models.registry.load_model", lambda *a, **k: object())
    monkeypatch.setattr("napari_hnc.inference.automatic.segment", lambda study, **k: study.empty_labels())
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "data"), "--out", str(out), "--device", "cpu"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "napari-hnc segment: interrupted (Ctrl-C); 1 finished before: A"
    assert not any("Traceback" in line for line in err)
    assert (out / "A_pred.nii.gz").is_file() and not (out / "B_pred.nii.gz").exists()
    assert "A,done" in (out / "segment_summary.csv").read_text()  # --resume continues from here


def test_ctrl_c_in_convert_names_the_converted_studies(tmp_path, capsys, monkeypatch):
    from napari_hnc.io.dicom import convert as convert_module

    for patient in ("P1", "P2"):  # two studies: PET 2000 Bq/ml (SUV 0.55)
        write_series(tmp_path / "dicom" / patient, np.full((6, 5, 4), 2000, np.int16), modality="PT",
                     tags={"PatientID": patient, "StudyInstanceUID": generate_uid()})
    studies = iter(range(10))

    real = convert_module.convert_study

    def interrupted_on_the_second(*args, **kwargs):
        if next(studies) == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(convert_module, "convert_study", interrupted_on_the_second)
    assert main(["convert", str(tmp_path / "dicom"), "--out", str(tmp_path / "out")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == "napari-hnc convert: interrupted (Ctrl-C); 1 finished before: P1"
