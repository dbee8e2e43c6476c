"""PET values to SUV (body weight), and optionally SUL, from the DICOM header.

The rules follow the QIBA vendor-neutral SUV pseudo-code (QIBA FDG-PET/CT
technical committee, "Vendor-neutral pseudo-code for SUV calculation", 2013; the
same rules as Cornerstone's ``calculate-suv`` and 3D Slicer's SUV Factor
Calculator):

* ``Units`` (0054,1001) ``BQML``: ``SUVbw = Bq/ml * weight[g] / decayed dose[Bq]``.
  With ``DecayCorrection`` (0054,1102) ``START`` the images are decay-corrected
  to the scan reference time, so the dose is decayed from the injection to that
  time: ``decayed = dose * 2 ** (-(scan - injection) / half_life)``. With
  ``ADMIN`` they are already corrected to the injection: the dose is used as is
  (decaying it again is the classic double correction).
* Scan reference time (the time START images are decay-corrected to), in this
  order: the GE private scan datetime (0009,100D) of the ``GEMS_PETD_01`` block
  (GE decay-corrects to it, and anonymisation leaves it intact); else the
  earliest AcquisitionDate/AcquisitionTime of the series, or the
  SeriesDate/SeriesTime when it agrees with it (not after it, and at most
  :data:`~.suv_tags.SERIES_SLACK_S` before it: QIBA's series start); else the
  SeriesTime alone. A SeriesTime that contradicts the acquisition times (an
  anonymised 11:11:11, a re-processed series) is never used.
* Injection: RadiopharmaceuticalStartDateTime (0018,1078) when present, else
  RadiopharmaceuticalStartTime (0018,1072) on the scan reference date, moved to
  the day before when that puts it after the scan (an acquisition after midnight).
* Refused unless the user gives the times: an injection after the scan
  reference time (a negative decay time), or more than :data:`MAX_DECAY_S`
  (6 h) between them (FDG is imaged within hours; 6 h is 3.3 half-lives) --
  unless ``scan_time`` (``--scan-time``) is given. The message lists every
  value to supply, with the header's times.
* ``Units`` ``CNTS`` (Philips): the private SUV scale factor (7053,1000) of the
  ``Philips PET Private Group``; without it, the activity concentration factor
  (7053,1009) turns counts into Bq/ml and the BQML rule follows.
* ``Units`` ``GML``: already SUVbw, factor 1.
* ``SUVbw = (RescaleSlope * stored + RescaleIntercept) * factor``, with the
  slope and intercept of each slice.

SUL uses the Janmahasatian lean body mass (Janmahasatian et al., Clin
Pharmacokinet 2005;44:1051-65): ``LBM = 9270 W / (6680 + 216 BMI)`` for men and
``9270 W / (8780 + 244 BMI)`` for women, ``BMI = W / H**2`` (kg, m).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Literal, Sequence

import numpy as np

from ...errors import UnitsError
from .suv_tags import (
    CLOCK_SLACK_S, before, duration, injection_datetime, philips_factor, radiopharmaceutical, scan_reference,
    tag_number, tag_value,
)
from .times import combine, parse_user_time

log = logging.getLogger(__name__)

#: Half-life of fluorine-18 in seconds, quoted in error messages.
F18_HALF_LIFE_S = 6586.2
#: Longest plausible time between injection and scan reference for FDG without a scan time given by hand.
MAX_DECAY_S = 6 * 3600.0
#: SUVParameters field -> (its Python spelling, its command-line option)
_OPTIONS = {
    "weight_kg": ("weight_kg=KG", "--weight KG"),
    "dose_bq": ("dose_bq=BQ", "--dose 370MBq"),
    "injection_time": ("injection_time='HH:MM:SS'", "--injection-time HH:MM:SS"),
    "scan_time": ("scan_time='HH:MM:SS'", "--scan-time HH:MM:SS"),
    "half_life_s": ("half_life_s=SECONDS", "--half-life SECONDS"),
}


def how_to_pass(needed: Sequence[str] = tuple(_OPTIONS)) -> str:
    """How to give the ``needed`` values by hand, in Python and on the command line.

    >>> print(how_to_pass(["weight_kg", "scan_time"]))
    Pass them by hand: in Python load_study(..., suv=SUVParameters(weight_kg=KG, scan_time='HH:MM:SS')), \
on the command line napari-hnc convert DICOM_DIR --out DIR --weight KG --scan-time HH:MM:SS
    """
    names = [n for n in _OPTIONS if n in needed]
    python = ", ".join(_OPTIONS[n][0] for n in names)
    cli = " ".join(_OPTIONS[n][1] for n in names)
    return (f"Pass them by hand: in Python load_study(..., suv=SUVParameters({python})), on the command line "
            f"napari-hnc convert DICOM_DIR --out DIR {cli}")


HOW_TO_PASS = how_to_pass()


@dataclass(frozen=True)
class SUVParameters:
    """Values that replace (or complete) the DICOM header for the SUV conversion.

    Parameters
    ----------
    weight_kg : float, optional
        Patient weight in kg (PatientWeight).
    dose_bq : float, optional
        Injected activity in Bq at the injection time (RadionuclideTotalDose).
    injection_time : str, datetime.time or datetime.datetime, optional
        Injection (RadiopharmaceuticalStartDateTime). ``"10:35"``, ``"10:35:20"``,
        ``"103520"``, ``"2024-05-01T10:35"`` or a DICOM DT; a time alone is put
        on the scan's date (the day before if that is after the scan).
    scan_time : same types, optional
        The time the images are decay-corrected to (replaces the vendor rules).
    half_life_s : float, optional
        Radionuclide half-life in seconds (6586.2 for fluorine-18).
    height_m, sex : optional
        For SUL (lean body mass): height in metres, sex ``"M"`` or ``"F"``.
    normalisation : {"bw", "lbm"}
        ``"bw"`` gives SUV (body weight), ``"lbm"`` SUL (lean body mass).
    allow_implausible : bool
        Convert even when the SUVmax comes out above
        :data:`~napari_hnc.io.suv_range.SUV_PLAUSIBLE_MAX` (CLI ``--allow-implausible-suv``);
        by default that is refused (wrong times, dose or weight).

    Examples
    --------
    >>> SUVParameters(weight_kg=70, dose_bq=370e6, injection_time="09:58").normalisation
    'bw'
    """

    weight_kg: float | None = None
    dose_bq: float | None = None
    injection_time: str | time | datetime | None = None
    scan_time: str | time | datetime | None = None
    half_life_s: float | None = None
    height_m: float | None = None
    sex: str | None = None
    normalisation: Literal["bw", "lbm"] = "bw"
    allow_implausible: bool = False

    def __post_init__(self) -> None:
        for name in ("weight_kg", "dose_bq", "half_life_s", "height_m"):
            value = getattr(self, name)
            if value is not None and not (float(value) > 0 and math.isfinite(float(value))):
                raise UnitsError(f"SUV parameter {name} must be a positive number, got {value!r}")
        if self.height_m is not None and float(self.height_m) > 3.0:
            raise UnitsError(f"height_m={self.height_m} is not in metres (give e.g. 1.75)")
        if self.sex is not None and str(self.sex).upper()[:1] not in ("M", "F"):
            raise UnitsError(f"sex must be 'M' or 'F' for the lean body mass, got {self.sex!r}")
        if self.normalisation not in ("bw", "lbm"):
            raise UnitsError(f"normalisation must be 'bw' (SUV) or 'lbm' (SUL), got {self.normalisation!r}")

    @property
    def given(self) -> dict[str, Any]:
        """The values set by hand."""
        names = ("weight_kg", "dose_bq", "injection_time", "scan_time", "half_life_s", "height_m", "sex")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(frozen=True)
class SUVResult:
    """Per-slice factors (``SUV = rescaled value * factor``) and how they were obtained."""

    factors: np.ndarray
    units: str  # "SUVbw" or "SUL"
    method: str
    source_units: str
    decay_correction: str = ""
    weight_kg: float | None = None
    dose_bq: float | None = None
    injection: datetime | None = None
    scan_reference: datetime | None = None
    scan_reference_rule: str = ""
    decay_s: float | None = None
    half_life_s: float | None = None
    lbm_kg: float | None = None
    manual: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def as_metadata(self) -> dict[str, Any]:
        """JSON-friendly provenance for ``Volume.metadata['suv']``."""
        factors = np.unique(self.factors)
        out: dict[str, Any] = {
            "units": self.units, "method": self.method, "source_units": self.source_units,
            "factor": float(factors[0]) if factors.size == 1 else [float(f) for f in self.factors],
        }
        for key in ("decay_correction", "weight_kg", "dose_bq", "decay_s", "half_life_s", "lbm_kg", "scan_reference_rule"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        for key in ("injection", "scan_reference"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value.isoformat()
        if self.manual:
            out["manual"] = {k: str(v) for k, v in self.manual.items()}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def lean_body_mass_kg(weight_kg: float, height_m: float, sex: str) -> float:
    """Janmahasatian lean body mass (kg).

    >>> round(lean_body_mass_kg(70.0, 1.75, "M"), 2)   # BMI 22.86: 9270*70/(6680+216*22.86)
    55.86
    """
    bmi = weight_kg / height_m**2
    if str(sex).upper().startswith("F"):
        return 9270.0 * weight_kg / (8780.0 + 244.0 * bmi)
    return 9270.0 * weight_kg / (6680.0 + 216.0 * bmi)


# --------------------------------------------------------------------------- factors


def suv_factors(headers: Sequence, params: SUVParameters | None = None, *, where: str = "PET series") -> SUVResult:
    """Per-slice factors turning rescaled PET values into SUVbw (or SUL).

    Parameters
    ----------
    headers : sequence of pydicom.Dataset
        The slices' headers, in the order of the values they will scale.
    params : SUVParameters, optional
        Values that replace or complete the header.

    Raises
    ------
    UnitsError
        Units or decay correction that cannot be converted, or missing tags
        (all of them listed, with how to pass them by hand).

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset(); ds.Units = "GML"
    >>> suv_factors([ds]).factors.tolist()
    [1.0]
    """
    params = params or SUVParameters()
    first = headers[0]
    units = str(tag_value(first, "Units") or "").upper()
    _check_corrections(first, where)
    if units == "GML":
        factors, base = np.ones(len(headers)), {"method": "already SUVbw (Units GML)"}
    elif units == "CNTS":
        factors, base = _counts_factors(headers, params, where)
    elif units == "BQML":
        factors, base = _bqml_factors(headers, params, where)
    else:
        raise UnitsError(
            f"{where}: PET Units (0054,1001) is {units or 'missing'!r}; napari-hnc converts BQML, CNTS (Philips) "
            "and GML (already SUV). Export the PET in Bq/ml or SUV from the scanner console"
        )
    return _finish(factors, base, units, first, params, where)


def _check_corrections(first, where: str) -> None:
    corrected = first.get("CorrectedImage")
    if corrected in (None, ""):
        return
    values = [str(v).upper() for v in (corrected if not isinstance(corrected, str) else [corrected])]
    if "ATTN" not in values:
        raise UnitsError(
            f"{where}: the PET is not attenuation-corrected (CorrectedImage {values}); SUVs of a "
            "non-attenuation-corrected (NAC) image are meaningless. Use the attenuation-corrected series"
        )


def _counts_factors(headers, params: SUVParameters, where: str) -> tuple[np.ndarray, dict]:
    suv = [philips_factor(h, 0x00) for h in headers]
    activity = [philips_factor(h, 0x09) for h in headers]
    manual = any(k in params.given for k in ("weight_kg", "dose_bq", "injection_time", "scan_time", "half_life_s"))
    if all(v is not None for v in suv) and not (manual and all(a is not None for a in activity)):
        if manual:
            log.warning("%s: the Philips SUV scale factor (7053,1000) is used; the values given by hand are not", where)
        return np.array(suv, dtype=float), {"method": "Philips SUV scale factor (7053,1000)"}
    if all(a is not None for a in activity):
        factors, base = _bqml_factors(headers, params, where)
        base["method"] = "Philips activity concentration scale factor (7053,1009), then " + base["method"]
        return np.array(activity, dtype=float) * factors, base
    raise UnitsError(
        f"{where}: PET Units are CNTS (counts) and the Philips private SUV scale factor (7053,1000) and "
        "activity concentration factor (7053,1009) are missing, so counts cannot be turned into Bq/ml. "
        "Export the PET in Bq/ml or SUV from the scanner console (values given by hand cannot replace them)"
    )


def _bqml_factors(headers, params: SUVParameters, where: str) -> tuple[np.ndarray, dict]:
    first = headers[0]
    info = radiopharmaceutical(first)
    weight = params.weight_kg or tag_number(first, "PatientWeight")
    dose = params.dose_bq or (tag_number(info, "RadionuclideTotalDose") if info is not None else None)
    decay = str(tag_value(first, "DecayCorrection") or "").upper()
    missing = []
    if weight is None:
        missing.append("PatientWeight (0010,1030) -> weight_kg / --weight")
    if dose is None:
        missing.append("RadionuclideTotalDose (0018,1074) -> dose_bq / --dose")
    if decay == "ADMIN":
        _raise_missing(missing, where)
        return np.full(len(headers), weight * 1000.0 / dose), {  # type: ignore[operator]
            "method": "BQML, decay-corrected to the injection (ADMIN): weight / dose",
            "decay_correction": decay, "weight_kg": weight, "dose_bq": dose,
        }
    if decay not in ("START", ""):
        raise UnitsError(
            f"{where}: DecayCorrection (0054,1102) is {decay!r}; napari-hnc converts START and ADMIN only. "
            "Reconstruct the PET with decay correction, or convert it to SUV with the scanner software"
        )
    factors, base = _start_factors(headers, params, where, weight, dose, missing)
    if not decay:
        base["decay_correction"] = "START (assumed: DecayCorrection (0054,1102) is missing)"
        log.warning("%s: DecayCorrection is missing; assuming START (decay-corrected to the scan start)", where)
    return factors, base


def _start_factors(headers, params, where, weight, dose, missing) -> tuple[np.ndarray, dict]:
    first = headers[0]
    info = radiopharmaceutical(first)
    half_life = params.half_life_s or (tag_number(info, "RadionuclideHalfLife") if info is not None else None)
    reference = scan_reference(headers)
    scan, rule = _scan_time(reference, params)
    injection, injection_rule = _injection_time(first, scan, params)
    if half_life is None:
        missing.append(f"RadionuclideHalfLife (0018,1075) -> half_life_s / --half-life ({F18_HALF_LIFE_S} for F-18)")
    if scan is None:
        missing.append("SeriesDate/SeriesTime (0008,0021/0031) or AcquisitionTime (0008,0032) -> scan_time / --scan-time")
    if injection is None:
        missing.append("RadiopharmaceuticalStartTime (0018,1072) -> injection_time / --injection-time")
    decay_s = (scan - injection).total_seconds() if scan is not None and injection is not None else None
    problem = _decay_problem(decay_s, injection, injection_rule, scan, rule, params)
    _raise_missing(missing, where, problem, reference.header, _header_injection(first))
    if decay_s > MAX_DECAY_S:  # type: ignore[operator]  # only with a scan time given by hand
        log.warning("%s: %.1f h between injection and scan (scan time given by hand)", where, decay_s / 3600)
    for note in reference.notes:
        log.info("%s: %s", where, note)
    decayed = dose * 2.0 ** (-decay_s / half_life)  # type: ignore[operator]
    return np.full(len(headers), weight * 1000.0 / decayed), {
        "method": "BQML, decay-corrected to the scan start (START): weight / (dose * 2^(-t/T))",
        "decay_correction": "START", "weight_kg": weight, "dose_bq": dose, "injection": injection,
        "scan_reference": scan, "scan_reference_rule": rule, "decay_s": decay_s, "half_life_s": half_life,
        "notes": reference.notes if params.scan_time is None else (),
    }


def _scan_time(reference, params: SUVParameters) -> tuple[datetime | None, str]:
    if params.scan_time is None:
        return reference.time, reference.rule
    given, dated = parse_user_time(params.scan_time, reference.time)
    scan = given if dated or reference.time is None else combine(given.date(), given.time(), near=reference.time)
    return scan, "given by hand"


def _injection_time(first, scan: datetime | None, params: SUVParameters) -> tuple[datetime | None, str]:
    if params.injection_time is not None:
        given, dated = parse_user_time(params.injection_time, scan)
        return (given if dated else before(given, scan)), "given by hand"  # type: ignore[arg-type]
    injection = injection_datetime(first, scan)
    info = radiopharmaceutical(first)
    if info is not None and tag_value(info, "RadiopharmaceuticalStartDateTime"):
        return injection, "RadiopharmaceuticalStartDateTime"
    return injection, "RadiopharmaceuticalStartTime on the scan's date"


def _decay_problem(decay_s, injection, injection_rule, scan, rule, params: SUVParameters) -> str:
    """What is wrong with the times, or "" when the decay time is plausible."""
    if decay_s is None:
        return ""
    times = f"injection {injection:%Y-%m-%d %H:%M:%S} ({injection_rule}), scan reference {scan:%Y-%m-%d %H:%M:%S} ({rule})"
    if decay_s < -CLOCK_SLACK_S:
        return f"the injection is {duration(decay_s)} after the scan reference time ({times})"
    if decay_s > MAX_DECAY_S and params.scan_time is None:
        return (f"{decay_s / 3600:.1f} h between the injection and the scan reference time ({times}); FDG is "
                f"imaged within a few hours (half-life {F18_HALF_LIFE_S / 60:.1f} min), so a time or a date is wrong")
    return ""


def _header_injection(first) -> dict[str, str]:
    info = radiopharmaceutical(first)
    if info is None:
        return {}
    keys = ("RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime")
    return {k: str(tag_value(info, k)) for k in keys if tag_value(info, k)}


def _raise_missing(missing: list[str], where: str, problem: str = "", header: dict | None = None,
                   injection: dict | None = None) -> None:
    if not missing and not problem:
        return
    parts = [f"{where}: cannot convert the PET from Bq/ml to SUV"]
    if missing:
        parts.append("missing or empty DICOM tags: " + "; ".join(missing))
    if problem:
        seen = {**(header or {}), **(injection or {})}
        parts.append("contradictory times: " + problem + (". The header holds " + ", ".join(
            f"{k} {v}" for k, v in seen.items()) if seen else ""))
        parts.append("anonymisation often replaces or shifts these times; give the real injection time and the "
                     "time the PET acquisition started")
    needed = [name for name in _OPTIONS if any(f"-> {name} " in m or m.endswith(f"-> {name}") for m in missing)]
    needed += ["injection_time", "scan_time"] if problem else []
    raise UnitsError("; ".join(parts) + f". {how_to_pass(needed or list(_OPTIONS))}")


def _finish(factors: np.ndarray, base: dict, units: str, first, params: SUVParameters, where: str) -> SUVResult:
    result = SUVResult(factors=factors, units="SUVbw", source_units=units, manual=params.given, **base)
    if params.normalisation != "lbm":
        return result
    weight = params.weight_kg or tag_number(first, "PatientWeight")
    height = params.height_m or tag_number(first, "PatientSize")
    sex = params.sex or str(tag_value(first, "PatientSex") or "").upper()[:1] or None
    missing = [m for m, v in (("PatientWeight (0010,1030) -> weight_kg", weight), ("PatientSize (0010,1020) -> height_m",
               height), ("PatientSex (0010,0040) -> sex", sex if sex in ("M", "F") else None)) if v is None]
    if missing:
        raise UnitsError(f"{where}: SUL needs the lean body mass; missing: {'; '.join(missing)}. Pass them in SUVParameters")
    lbm = lean_body_mass_kg(weight, height, sex)  # type: ignore[arg-type]
    return SUVResult(
        factors=factors * lbm / weight, units="SUL", source_units=units, manual=params.given, lbm_kg=lbm,
        **{**base, "method": base["method"] + ", times lean body mass / weight (Janmahasatian)"},
    )




_ACTIVITY_UNITS = {"bq": 1.0, "kbq": 1e3, "mbq": 1e6, "gbq": 1e9, "ci": 3.7e10, "mci": 3.7e7, "uci": 3.7e4, "µci": 3.7e4}


def parse_activity(text: str) -> float:
    """An activity with its unit (``"370MBq"``, ``"3.7e8 Bq"``, ``"10 mCi"``) in Bq.

    >>> parse_activity("370MBq"), parse_activity("10 mCi")
    (370000000.0, 370000000.0)
    """
    cleaned = str(text).strip().replace(" ", "")
    for unit in sorted(_ACTIVITY_UNITS, key=len, reverse=True):
        if cleaned.lower().endswith(unit):
            try:
                value = float(cleaned[: -len(unit)]) * _ACTIVITY_UNITS[unit]
            except ValueError:
                break
            if value > 0:
                return value
            break
    raise UnitsError(f"cannot read the activity {text!r}; give a positive number with its unit, e.g. 370MBq, 3.7e8Bq or 10mCi")
