"""DICOM folders through load_study, convert_dicom and ``napari-hnc convert`` (HECKTOR 2022 output)."""

from __future__ import annotations

from pathlib import Path

import json

import numpy as np
import pytest

from dicom_factory import write_rtstruct, write_series
from napari_hnc import load_study
from napari_hnc.cli import main
from napari_hnc.errors import HncError, UnitsError
from napari_hnc.io.dicom import SUVParameters, convert_dicom

ORIGIN = (-10.0, -20.0, 30.0)
# 70 kg, 370 MBq, 09:00 -> 10:00 (3600 s), T1/2 6586.2 s: 70 000 / (3.7e8 * 0.684633) = 2.76337e-4 g/Bq
FACTOR = 70_000 / (3.7e8 * 2 ** (-3600 / 6586.2))


def make_study(root: Path, *, pet_tags: dict | None = None) -> Path:
    """CT 1x1x2 mm (HU = 40), PET 2x2x2 mm (stored 1000, slope 2 -> 2000 Bq/ml), a GTVp box in an RTSTRUCT."""
    ct = np.full((16, 12, 5), 40, np.int16)
    write_series(root / "ct", ct, origin=ORIGIN, spacing=(1.0, 1.0), slice_step=2.0)
    pet = np.full((8, 6, 5), 1000, np.int16)
    write_series(root / "pet", pet, modality="PT", origin=(-9.5, -19.5, 30.0), spacing=(2.0, 2.0), slice_step=2.0,
                 slopes=[2.0] * 5, tags=pet_tags)
    z = ORIGIN[2] + 2 * 2.0
    box = np.array([[-7.5, -17.5, z], [-2.5, -17.5, z], [-2.5, -13.5, z], [-7.5, -13.5, z]])  # 5 x 4 voxels
    write_rtstruct(root / "rs" / "rs.dcm", {"GTVp": [box]})
    return root


def test_load_study_opens_a_dicom_folder(tmp_path):
    study = load_study(make_study(tmp_path / "dicom"))
    assert study.case_id == "CASE-1" and study.layout == "dicom"
    assert study.ct.array.dtype == np.int16 and np.all(study.ct.array == 40)
    np.testing.assert_allclose(study.pet.array, 2000 * FACTOR, rtol=1e-6)
    assert study.labels.same_grid(study.ct) and int(study.labels.array.sum()) == 20
    assert study.files.labels.name == "rs.dcm"


def test_load_study_explicit_series_folders_and_manual_suv(tmp_path):
    root = make_study(tmp_path / "dicom", pet_tags={"PatientWeight": None})
    with pytest.raises(UnitsError, match="PatientWeight"):
        load_study(root)
    study = load_study(ct=root / "ct", pet=root / "pet", suv=SUVParameters(weight_kg=35))
    np.testing.assert_allclose(study.pet.array, 2000 * FACTOR / 2, rtol=1e-6)
    assert study.labels is None
    assert study.pet.metadata["suv"]["manual"] == {"weight_kg": "35"}


def test_convert_writes_hecktor2022_that_reopens(tmp_path):
    root = make_study(tmp_path / "dicom")
    (converted,) = convert_dicom(root, tmp_path / "out")
    names = sorted(p.name for p in converted.paths.values())
    assert names == ["CASE-1.nii.gz", "CASE-1__CT.nii.gz", "CASE-1__PT.nii.gz", "CASE-1__dicom.json"]
    original = load_study(root)
    again = load_study(tmp_path / "out")
    assert again.layout == "hecktor2022" and again.case_id == "CASE-1"
    np.testing.assert_array_equal(again.ct.array, original.ct.array)
    np.testing.assert_allclose(again.ct.affine, original.ct.affine, atol=1e-5)
    np.testing.assert_allclose(again.pet.array, original.pet.array, rtol=1e-6)
    np.testing.assert_array_equal(again.labels.array, original.labels.array)
    record = json.loads((tmp_path / "out" / "CASE-1__dicom.json").read_text())
    assert record["pet"]["suv"]["factor"] == pytest.approx(FACTOR)
    with pytest.raises(HncError, match="already exist"):
        convert_dicom(root, tmp_path / "out")
    assert len(convert_dicom(root, tmp_path / "out", overwrite=True)) == 1


def test_cli_convert_with_manual_values_and_exit_codes(tmp_path, capsys):
    root = make_study(tmp_path / "dicom", pet_tags={"PatientWeight": None, "RadionuclideTotalDose": None})
    out = tmp_path / "out"
    assert main(["convert", str(root), "--out", str(out)]) == 1
    assert "--weight" in capsys.readouterr().out
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(root), "--out", str(out), "--weight", "70", "--dose", "370"])
    assert exit_info.value.code == 2
    code = main(["convert", str(root), "--out", str(out), "--weight", "70", "--dose", "370MBq",
                 "--roi", "GTVp=node", "--case-id", "P1"])
    assert code == 0
    study = load_study(out / "P1__CT.nii.gz")
    np.testing.assert_allclose(study.pet.array, 2000 * FACTOR, rtol=1e-6)
    assert np.unique(study.labels.array).tolist() == [0, 2]


def test_cli_convert_usage_errors(tmp_path):
    for argv in (["convert", "--out", str(tmp_path)], ["convert", str(tmp_path), "--ct", str(tmp_path), "--out", "x"],
                 ["convert", str(tmp_path), "--out", "x", "--roi", "GTVp"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2


def test_an_impossible_suv_is_refused_unless_allowed_and_an_unusual_one_warns(tmp_path, capsys):
    # 2000 Bq/ml with 70 kg and 1e5 Bq: SUV 2000 * 70 000 / (1e5 * 0.684633) = 2045 -> refused
    root = make_study(tmp_path / "dicom", pet_tags={"RadionuclideTotalDose": "1e5"})
    with pytest.raises(UnitsError, match=r"SUVbw \(1.00 h of decay.*2045.*allow_implausible=True"):
        load_study(root)
    assert main(["convert", str(root), "--out", str(tmp_path / "out")]) == 1
    assert "--allow-implausible-suv" in capsys.readouterr().out
    with pytest.warns(UserWarning, match="2045"):
        study = load_study(root, suv=SUVParameters(allow_implausible=True))
    assert float(study.pet.array.max()) == pytest.approx(2000 * 70_000 / (1e5 * 2 ** (-3600 / 6586.2)), rel=1e-5)
    assert main(["convert", str(root), "--out", str(tmp_path / "out"), "--allow-implausible-suv"]) == 0
    # 1e6 Bq: SUV 204.5, above 100 but possible: converted with a warning
    with pytest.warns(UserWarning, match="SUVmax is 204.5, above 100"):
        load_study(make_study(tmp_path / "d2", pet_tags={"RadionuclideTotalDose": "1e6"}))
