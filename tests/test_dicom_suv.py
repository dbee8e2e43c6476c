"""SUV factors from DICOM headers built here, checked against factors worked out by hand."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from pydicom.dataset import Dataset

from dicom_factory import pet_header
from napari_hnc.errors import UnitsError
from napari_hnc.io.dicom.suv import SUVParameters, lean_body_mass_kg, parse_activity, suv_factors


def factor(headers, params=None) -> float:
    result = suv_factors(headers if isinstance(headers, list) else [headers], params)
    assert np.ptp(result.factors) == 0.0
    return float(result.factors[0])


def test_ge_bqml_start_decays_dose_from_injection_to_series_time():
    # Values of the real GE Discovery ST study STS_001: 71 kg, 388.777472 MBq, T1/2 6588 s,
    # injection 10:35:00, series = acquisition 11:20:11 -> 45 min 11 s = 2711 s of decay.
    ds = pet_header(Manufacturer="GE MEDICAL SYSTEMS", PatientWeight="71.0", RadionuclideTotalDose="3.88777472E8",
                    RadionuclideHalfLife="6588.0", RadiopharmaceuticalStartTime="103500.00",
                    SeriesTime="112011.00", AcquisitionTime="112011.00")
    # decayed dose = 3.88777472e8 * 2**(-2711/6588) = 3.88777472e8 * 0.751838 = 2.92298e8 Bq
    # factor = 71 000 g / 2.92298e8 Bq = 2.42903e-4 g/Bq
    expected = 71_000 / (3.88777472e8 * 2 ** (-2711 / 6588))
    assert expected == pytest.approx(2.42903e-4, rel=1e-5)
    result = suv_factors([ds])
    assert result.factors[0] == pytest.approx(expected, rel=1e-12)
    assert result.decay_s == 2711.0 and result.scan_reference_rule == "SeriesDate/SeriesTime"


def test_ge_reprocessed_series_uses_private_scan_datetime():
    # Series time 12:00 is after the acquisition (a re-processed series); the GE private
    # scan datetime (0009,100D) says 11:10:00 -> 35 min = 2100 s after the 10:35 injection.
    ds = pet_header(RadiopharmaceuticalStartTime="103500", SeriesTime="120000", AcquisitionTime="112011")
    block = ds.private_block(0x0009, "GEMS_PETD_01", create=True)
    block.add_new(0x0D, "DT", "20240101111000.00")
    expected = 70_000 / (3.7e8 * 2 ** (-2100 / 6586.2))  # = 70 000 / (3.7e8 * 0.801710) = 2.35982e-4
    assert expected == pytest.approx(2.35982e-4, rel=1e-5)
    assert factor(ds) == pytest.approx(expected, rel=1e-12)


def test_siemens_series_time_after_acquisition_uses_earliest_acquisition():
    # Siemens: beds acquired at 09:58:30 and 10:01:00, series written at 10:30:00; no GE tag.
    # Reference = earliest acquisition 09:58:30; injection 09:00:00 -> 3510 s.
    beds = [pet_header(Manufacturer="SIEMENS", PatientWeight="80", SeriesTime="103000", AcquisitionTime=t)
            for t in ("100100", "095830")]
    expected = 80_000 / (3.7e8 * 2 ** (-3510 / 6586.2))  # = 80 000 / (3.7e8 * 0.691148) = 3.12836e-4
    assert expected == pytest.approx(3.12836e-4, rel=1e-5)
    result = suv_factors(beds)
    assert result.factors.tolist() == pytest.approx([expected, expected], rel=1e-12)
    assert "earliest" in result.scan_reference_rule


def test_philips_cnts_uses_private_suv_scale_factor_per_slice():
    slices = []
    for value in ("0.000621", "0.000625"):
        ds = pet_header(Manufacturer="Philips Medical Systems", Units="CNTS")
        ds.private_block(0x7053, "Philips PET Private Group", create=True).add_new(0x00, "DS", value)
        slices.append(ds)
    assert suv_factors(slices).factors.tolist() == [0.000621, 0.000625]


def test_philips_cnts_activity_factor_then_bqml_rule():
    # (7053,1009) = 1.5 turns counts into Bq/ml; then 60 kg, 250 MBq, 08:00 -> 09:00 (3600 s).
    ds = pet_header(Units="CNTS", PatientWeight="60", RadionuclideTotalDose="2.5e8",
                    RadiopharmaceuticalStartTime="080000", SeriesTime="090000", AcquisitionTime="090000")
    ds.private_block(0x7053, "Philips PET Private Group", create=True).add_new(0x09, "DS", "1.5")
    expected = 1.5 * 60_000 / (2.5e8 * 2 ** (-3600 / 6586.2))  # = 90 000 / (2.5e8 * 0.684633) = 5.25829e-4
    assert expected == pytest.approx(5.25829e-4, rel=1e-5)
    assert factor(ds) == pytest.approx(expected, rel=1e-12)


def test_philips_cnts_without_factors_is_a_clear_error():
    with pytest.raises(UnitsError, match=r"CNTS.*7053,1000"):
        suv_factors([pet_header(Units="CNTS")])


def test_admin_decay_correction_is_not_corrected_twice():
    # ADMIN: already decay-corrected to the injection, so factor = 70 000 g / 3.5e8 Bq = 2e-4,
    # whatever the (here 3 h) delay between injection and scan.
    ds = pet_header(DecayCorrection="ADMIN", RadionuclideTotalDose="3.5e8",
                    RadiopharmaceuticalStartTime="070000", SeriesTime="100000")
    assert factor(ds) == pytest.approx(2e-4, rel=1e-12)


def test_injection_before_midnight_scan_after():
    # Injection 23:30 on 1 Jan (only a time in the header), series 00:20 on 2 Jan: 50 min = 3000 s.
    ds = pet_header(PatientWeight="75", RadionuclideTotalDose="4e8", RadiopharmaceuticalStartTime="233000",
                    SeriesDate="20240102", AcquisitionDate="20240102", SeriesTime="002000", AcquisitionTime="002000")
    expected = 75_000 / (4e8 * 2 ** (-3000 / 6586.2))  # = 75 000 / (4e8 * 0.729258) = 2.57110e-4
    assert expected == pytest.approx(2.57110e-4, rel=1e-5)
    result = suv_factors([ds])
    assert result.factors[0] == pytest.approx(expected, rel=1e-12)
    assert result.injection == datetime(2024, 1, 1, 23, 30)


def test_start_datetime_wins_over_start_time_across_midnight():
    # RadiopharmaceuticalStartDateTime carries the date; the (contradictory) time alone is ignored.
    ds = pet_header(RadiopharmaceuticalStartDateTime="20240101235000", RadiopharmaceuticalStartTime="120000",
                    SeriesDate="20240102", AcquisitionDate="20240102", SeriesTime="000500", AcquisitionTime="000500")
    assert suv_factors([ds]).decay_s == 15 * 60


def test_missing_weight_lists_the_tag_and_how_to_pass_it():
    ds = pet_header(PatientWeight=None)
    with pytest.raises(UnitsError) as info:
        suv_factors([ds])
    message = str(info.value)
    assert "PatientWeight (0010,1030)" in message and "weight_kg" in message and "--weight" in message
    # given by hand: 72 kg, 3.7e8 Bq, 3600 s -> 72 000 / (3.7e8 * 0.684633) = 2.84232e-4
    expected = 72_000 / (3.7e8 * 2 ** (-3600 / 6586.2))
    assert expected == pytest.approx(2.84232e-4, rel=1e-5)
    assert factor(ds, SUVParameters(weight_kg=72)) == pytest.approx(expected, rel=1e-12)


def test_all_missing_tags_are_listed_at_once():
    ds = pet_header(PatientWeight=None, RadionuclideTotalDose=None, RadiopharmaceuticalStartTime=None,
                    RadionuclideHalfLife=None)
    with pytest.raises(UnitsError) as info:
        suv_factors([ds])
    for tag in ("PatientWeight", "RadionuclideTotalDose", "RadiopharmaceuticalStartTime", "RadionuclideHalfLife"):
        assert tag in str(info.value)
    params = SUVParameters(weight_kg=70, dose_bq=3.7e8, injection_time="09:30", half_life_s=6586.2)
    # 09:30 -> 10:00 = 1800 s: 70 000 / (3.7e8 * 2**(-1800/6586.2)) = 70 000 / (3.7e8 * 0.827425)
    assert factor(ds, params) == pytest.approx(70_000 / (3.7e8 * 2 ** (-1800 / 6586.2)), rel=1e-12)


def test_manual_injection_time_after_midnight_goes_to_previous_day():
    ds = pet_header(SeriesDate="20240102", AcquisitionDate="20240102", SeriesTime="001000", AcquisitionTime="001000")
    result = suv_factors([ds], SUVParameters(injection_time="23:40"))
    assert result.decay_s == 30 * 60 and result.manual == {"injection_time": "23:40"}


def test_missing_decay_correction_is_taken_as_start_and_said_so():
    result = suv_factors([pet_header(DecayCorrection=None)])
    assert result.decay_s == 3600 and result.decay_correction.startswith("START (assumed")


def test_gml_is_already_suv_and_other_units_fail():
    assert factor(pet_header(Units="GML")) == 1.0
    with pytest.raises(UnitsError, match="PROPCNTS"):
        suv_factors([pet_header(Units="PROPCNTS")])


def test_non_attenuation_corrected_and_undecayed_pets_are_refused():
    with pytest.raises(UnitsError, match="attenuation"):
        suv_factors([pet_header(CorrectedImage=["DECY"])])
    with pytest.raises(UnitsError, match="DecayCorrection"):
        suv_factors([pet_header(DecayCorrection="NONE")])


def test_injection_after_scan_is_an_error():
    ds = pet_header(RadiopharmaceuticalStartDateTime="20240101103000")
    with pytest.raises(UnitsError, match="after the scan"):
        suv_factors([ds])


def test_sul_uses_janmahasatian_lean_body_mass():
    # Man, 70 kg, 1.75 m: BMI = 70 / 1.75**2 = 22.857; LBM = 9270 * 70 / (6680 + 216 * 22.857) = 55.857 kg
    assert lean_body_mass_kg(70, 1.75, "M") == pytest.approx(648_900 / (6680 + 216 * 70 / 1.75**2))
    assert lean_body_mass_kg(70, 1.75, "M") == pytest.approx(55.857, abs=1e-3)
    # Woman: 9270 * 70 / (8780 + 244 * 22.857) = 648 900 / 14 357.1 = 45.197 kg
    assert lean_body_mass_kg(70, 1.75, "F") == pytest.approx(45.197, abs=1e-3)
    ds = pet_header(PatientSex="M", PatientSize="1.75")
    suv = factor(ds)
    result = suv_factors([ds], SUVParameters(normalisation="lbm"))
    assert result.units == "SUL" and result.factors[0] == pytest.approx(suv * 55.857 / 70, rel=1e-4)
    with pytest.raises(UnitsError, match="PatientSize"):
        suv_factors([pet_header()], SUVParameters(normalisation="lbm"))


def test_parameters_and_activities_are_checked():
    assert parse_activity("370MBq") == 3.7e8 and parse_activity("3.7e8 Bq") == 3.7e8
    assert parse_activity("10mCi") == pytest.approx(3.7e8)
    for bad in ("370", "-5MBq", "lots"):
        with pytest.raises(UnitsError):
            parse_activity(bad)
    with pytest.raises(UnitsError, match="metres"):
        SUVParameters(height_m=175)
    with pytest.raises(UnitsError, match="positive"):
        SUVParameters(weight_kg=0)
    with pytest.raises(UnitsError, match="HH:MM:SS"):
        suv_factors([pet_header()], SUVParameters(injection_time="half past nine"))


def test_units_missing_entirely():
    ds = Dataset()
    with pytest.raises(UnitsError, match="missing"):
        suv_factors([ds])


# --------------------------------------------------------------------------- anonymised and contradictory times


def test_anonymised_series_time_before_the_acquisition_is_not_the_reference():
    # TCIA-style anonymisation: SeriesTime 11:11:11, acquisition 14:07:59, injection 12:39:00 (no GE tag).
    # Reference = earliest acquisition: 12:39:00 -> 14:07:59 = 5339 s, not 22.5 h from "yesterday's" injection.
    ds = pet_header(SeriesTime="111111", AcquisitionTime="140759", RadiopharmaceuticalStartTime="123900")
    result = suv_factors([ds])
    assert result.decay_s == 5339 and result.scan_reference_rule.startswith("earliest AcquisitionDate")
    assert result.factors[0] == pytest.approx(70_000 / (3.7e8 * 2 ** (-5339 / 6586.2)), rel=1e-12)
    assert "SeriesTime 11:11:11 ignored: 2.9 h before the scan time 14:07:59" in result.notes[0]


def test_series_time_just_before_the_acquisition_is_the_series_start():
    # QIBA: a SeriesTime up to a minute before the first bed is the series start.
    ds = pet_header(SeriesTime="095930", AcquisitionTime="100000", RadiopharmaceuticalStartTime="090000")
    result = suv_factors([ds])
    assert result.decay_s == 3570 and result.scan_reference_rule == "SeriesDate/SeriesTime"


def test_ge_private_scan_time_wins_even_when_its_date_differs_from_the_shifted_public_dates():
    # Public dates shifted to 1885 by the anonymiser, GE's private block kept 1994; injection is a time only.
    ds = pet_header(SeriesDate="18850827", AcquisitionDate="18850827", SeriesTime="111111", AcquisitionTime="140759",
                    RadiopharmaceuticalStartTime="123900")
    ds.private_block(0x0009, "GEMS_PETD_01", create=True).add_new(0x0D, "DT", "19940902140759.00")
    result = suv_factors([ds])
    assert result.decay_s == 5339 and result.injection == datetime(1994, 9, 2, 12, 39)


def test_a_decay_longer_than_six_hours_is_refused_unless_the_scan_time_is_given():
    # Only a SeriesTime (11:11:11) and an injection at 11:59 (given by hand): the injection is put on the
    # day before, 23.2 h of decay, which the old code converted (SUVmax x 2^(23.2 h / 109.8 min) = x 6700).
    ds = pet_header(SeriesTime="111111", AcquisitionTime=None)
    with pytest.raises(UnitsError) as info:
        suv_factors([ds], SUVParameters(injection_time="11:59:00"))
    message = str(info.value)
    assert "23.2 h between the injection and the scan reference time" in message
    assert "--scan-time HH:MM:SS" in message and "--injection-time HH:MM:SS" in message
    assert "SeriesDate/SeriesTime 2024-01-01 11:11:11" in message  # the header's times are quoted
    given = suv_factors([ds], SUVParameters(injection_time="11:59:00", scan_time="13:30:00"))
    assert given.decay_s == 91 * 60 and given.scan_reference_rule == "given by hand"


def test_an_injection_after_the_scan_names_both_times_and_what_to_give():
    ds = pet_header(RadiopharmaceuticalStartDateTime="20240101113000")  # scan at 10:00 the same day
    with pytest.raises(UnitsError) as info:
        suv_factors([ds])
    message = str(info.value)
    assert "the injection is 1.5 h after the scan reference time" in message
    assert "injection 2024-01-01 11:30:00 (RadiopharmaceuticalStartDateTime)" in message
    assert "scan_time='HH:MM:SS'" in message and "injection_time='HH:MM:SS'" in message
    # even with a scan time given, an injection after it is impossible
    with pytest.raises(UnitsError, match="after the scan reference time"):
        suv_factors([ds], SUVParameters(scan_time="11:00:00"))


def test_missing_tags_and_contradictory_times_are_reported_together():
    ds = pet_header(PatientWeight=None, RadionuclideTotalDose=None, RadiopharmaceuticalStartDateTime="20240101113000")
    message = str(pytest.raises(UnitsError, suv_factors, [ds]).value)
    assert "PatientWeight" in message and "RadionuclideTotalDose" in message and "contradictory times" in message
    assert "--weight KG --dose 370MBq --injection-time HH:MM:SS --scan-time HH:MM:SS" in message
