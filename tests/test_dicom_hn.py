"""SUV of the real anonymised head-and-neck PET series (``shared/data/dicom-hn``), checked against an SUV
computed here from the raw tags with pydicom, or refused with a message that names what to supply.

Both series are GE, BQML, decay correction START. Anonymisation set SeriesTime to 11:11:11 (before the
injection) and moved the public dates to 1885, while the acquisition times and GE's private scan datetime
(0009,100D) are intact. TCIA Head-Neck-PET-CT (Vallieres et al. 2017), CC BY 3.0.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_hnc import load_study
from napari_hnc.cli import main
from napari_hnc.errors import UnitsError
from napari_hnc.io.dicom import SUVParameters


def _seconds(tm: str) -> float:
    """Seconds since midnight of a DICOM TM or the time part of a DT."""
    text = str(tm).split(".")[0][-6:]
    return int(text[:2]) * 3600 + int(text[2:4]) * 60 + int(text[4:6])


def independent_suv(folder, weight_kg=None, injection=None):
    """SUVbw of a GE BQML START series from its tags, written out here (not napari-hnc's code)."""
    slices = [pydicom.dcmread(f) for f in sorted(folder.glob("*.dcm"))]
    first = slices[0]
    drug = first.RadiopharmaceuticalInformationSequence[0]
    weight_g = 1000.0 * float(weight_kg if weight_kg is not None else first.PatientWeight)
    dose, half_life = float(drug.RadionuclideTotalDose), float(drug.RadionuclideHalfLife)
    scan = _seconds(first[0x0009, 0x100D].value)  # GE scan datetime: the time GE decay-corrects to
    earliest = min(_seconds(s.AcquisitionTime) for s in slices)
    assert scan == earliest  # two independent sources agree on the start of the acquisition
    decay = scan - _seconds(injection or drug.RadiopharmaceuticalStartTime)
    factor = weight_g / (dose * 2.0 ** (-decay / half_life))
    values = [s.pixel_array * float(s.RescaleSlope) + float(s.RescaleIntercept) for s in slices]
    return factor, decay, max(float(v.max()) for v in values) * factor


def test_ge_series_with_anonymised_series_time_gets_the_independent_suv(dicom_hn_root):
    folder = dicom_hn_root / "HN-HGJ-016_PET"
    factor, decay, suv_max = independent_suv(folder)
    # 66 kg, 541.37 MBq at 12:39:00, GE scan start 14:07:59 -> 5339 s = 89 min of decay
    assert decay == 5339 and factor == pytest.approx(2.138e-4, rel=1e-3)
    study = load_study(folder)
    suv = study.pet.metadata["suv"]
    assert suv["factor"] == pytest.approx(factor, rel=1e-6) and suv["decay_s"] == decay
    assert suv["scan_reference_rule"] == "GE private scan datetime (0009,100D)"
    assert any("SeriesTime 11:11:11 ignored" in note for note in suv["notes"])
    assert float(study.pet.array.max()) == pytest.approx(suv_max, rel=0.01)
    assert 10 < suv_max < 50  # a head-and-neck SUVmax (67736 with the series time before the fix)
    body = study.pet.array[study.pet.array > 0.3]
    assert 0.5 < float(np.median(body)) < 2.0


def test_series_without_weight_is_refused_naming_every_value_to_supply(dicom_hn_root):
    folder = dicom_hn_root / "HN-HMR-029_PET"
    with pytest.raises(UnitsError) as info:
        load_study(folder)
    message = str(info.value)
    assert "PatientWeight (0010,1030)" in message and "--weight" in message and "weight_kg" in message
    # its RadiopharmaceuticalStartDateTime is dated the day after GE's scan datetime: anonymised dates disagree
    assert "the injection is 22.6 h after the scan reference time" in message
    for option in ("--injection-time HH:MM:SS", "--scan-time HH:MM:SS", "injection_time=", "scan_time="):
        assert option in message
    with pytest.raises(UnitsError, match="contradictory times") as info:
        load_study(folder, suv=SUVParameters(weight_kg=80))
    assert "PatientWeight" not in str(info.value)


def test_series_without_weight_gets_the_independent_suv_once_the_values_are_given(dicom_hn_root):
    folder = dicom_hn_root / "HN-HMR-029_PET"
    factor, decay, suv_max = independent_suv(folder, weight_kg=80, injection="111000")
    assert decay == 4907  # 11:10:00 -> 12:31:47 (the series time 11:11:11 would give 71 s and SUVmax 8.82)
    study = load_study(folder, suv=SUVParameters(weight_kg=80, injection_time="11:10:00"))
    assert study.pet.metadata["suv"]["factor"] == pytest.approx(factor, rel=1e-6)
    assert float(study.pet.array.max()) == pytest.approx(suv_max, rel=0.01)
    assert suv_max == pytest.approx(14.68, abs=0.01)


def test_convert_writes_the_right_suv_or_says_what_to_give(dicom_hn_root, tmp_path, capsys):
    out = tmp_path / "nifti"
    assert main(["convert", str(dicom_hn_root / "HN-HGJ-016_PET"), "--out", str(out)]) == 0
    _, _, suv_max = independent_suv(dicom_hn_root / "HN-HGJ-016_PET")
    written = np.asanyarray(nib.load(str(out / "HN-HGJ-016__PT.nii.gz")).dataobj)
    assert float(written.max()) == pytest.approx(suv_max, rel=0.01)
    record = json.loads((out / "HN-HGJ-016__dicom.json").read_text())
    assert record["pet"]["suv"]["scan_reference"] == "1994-09-02T14:07:59"

    hmr = str(dicom_hn_root / "HN-HMR-029_PET")
    assert main(["convert", hmr, "--out", str(out)]) == 1
    assert "--weight KG" in capsys.readouterr().out
    assert main(["convert", hmr, "--out", str(out), "--weight", "80"]) == 1
    assert "--injection-time HH:MM:SS --scan-time HH:MM:SS" in capsys.readouterr().out
    assert not (out / "HN-HMR-029__PT.nii.gz").exists()
    assert main(["convert", hmr, "--out", str(out), "--weight", "80", "--injection-time", "11:10:00"]) == 0
    written = np.asanyarray(nib.load(str(out / "HN-HMR-029__PT.nii.gz")).dataobj)
    assert float(written.max()) == pytest.approx(14.68, abs=0.01)
