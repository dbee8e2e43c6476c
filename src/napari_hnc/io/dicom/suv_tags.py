"""Header access and the time rules behind the SUV factors (see :mod:`.suv`).

The scan reference time and the injection datetime, vendor by vendor, and the
Philips private scale factors. The scan reference time does not trust the
SeriesTime alone: anonymisation often replaces it (TCIA sets 11:11:11) while the
acquisition times and GE's private scan datetime stay intact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Sequence

from .times import combine, parse_dicom_datetime

#: Injection times up to this many seconds after the scan start are rounding, not an error.
CLOCK_SLACK_S = 60.0


def tag_value(ds, keyword: str) -> Any:
    value = ds.get(keyword)
    return None if value in (None, "") else value


def tag_number(ds, keyword: str) -> float | None:
    value = tag_value(ds, keyword)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def radiopharmaceutical(ds):
    seq = ds.get("RadiopharmaceuticalInformationSequence")
    return seq[0] if seq else None


def private(ds, group: int, creator: str, element: int) -> Any:
    try:
        block = ds.private_block(group, creator)
        return block[element].value
    except (KeyError, ValueError):
        return None


def philips_factor(ds, element: int) -> float | None:
    """A Philips private scale factor: 0x00 SUV (7053,1000), 0x09 Bq/ml (7053,1009)."""
    value = private(ds, 0x7053, "Philips PET Private Group", element)
    if value is None:
        value = ds.get((0x7053, 0x1000 + element)).value if (0x7053, 0x1000 + element) in ds else None
    try:
        number = float(value.decode() if isinstance(value, bytes) else value)  # type: ignore[union-attr]
    except (TypeError, ValueError, AttributeError):
        return None
    return number if number > 0 else None


# --------------------------------------------------------------------------- times

#: A SeriesTime up to this long before the earliest acquisition is the series start (QIBA); earlier, it
#: contradicts the acquisition times (anonymisation often replaces it) and is not used.
SERIES_SLACK_S = 60.0


@dataclass(frozen=True)
class ScanReference:
    """The time a START-corrected PET is decay-corrected to, the rule that chose it, and what the header says."""

    time: datetime | None
    rule: str
    header: dict[str, str] = field(default_factory=dict)  # the times found, for messages and provenance
    notes: tuple[str, ...] = ()


def scan_reference(headers: Sequence) -> ScanReference:
    """The scan reference time of a series (see :mod:`.suv`): GE private scan datetime, else the earliest
    acquisition (or the SeriesTime when it agrees with it), else the SeriesTime."""
    first = headers[0]
    series_date = tag_value(first, "SeriesDate") or tag_value(first, "AcquisitionDate") or tag_value(first, "StudyDate")
    series = combine(series_date, tag_value(first, "SeriesTime"))
    earliest = _earliest_acquisition(headers, series_date, series)
    ge = _ge_scan_datetime(first)
    header = {k: v.isoformat(sep=" ") for k, v in (("SeriesDate/SeriesTime", series), ("earliest AcquisitionTime",
              earliest), ("GE private scan datetime (0009,100D)", ge)) if v is not None}
    if ge is not None:
        notes = _series_notes(series, ge)
        if earliest is not None and abs(clock_difference_s(earliest, ge)) > SERIES_SLACK_S:
            notes += (f"the earliest AcquisitionTime {earliest.time().isoformat()} differs from the GE scan time "
                      f"{ge.time().isoformat()}; the GE time is used (GE decay-corrects to it)",)
        return ScanReference(ge, "GE private scan datetime (0009,100D)", header, notes)
    if earliest is not None:
        if series is not None and -SERIES_SLACK_S <= (series - earliest).total_seconds() <= 0:
            return ScanReference(series, "SeriesDate/SeriesTime", header)
        rule = "earliest AcquisitionDate/AcquisitionTime"
        if series is not None and series > earliest:
            rule += " (series time is after the acquisition)"
        return ScanReference(earliest, rule, header, _series_notes(series, earliest))
    if series is not None:
        return ScanReference(series, "SeriesDate/SeriesTime (no acquisition times)", header)
    return ScanReference(None, "", header)


def _earliest_acquisition(headers: Sequence, series_date, series: datetime | None) -> datetime | None:
    times = [
        combine(tag_value(h, "AcquisitionDate"), tag_value(h, "AcquisitionTime"))
        if tag_value(h, "AcquisitionDate") else combine(series_date, tag_value(h, "AcquisitionTime"), near=series)
        for h in headers
    ]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def _ge_scan_datetime(first) -> datetime | None:
    value = private(first, 0x0009, "GEMS_PETD_01", 0x0D)
    if not value:
        return None
    return parse_dicom_datetime(value.decode() if isinstance(value, bytes) else str(value))


def _series_notes(series: datetime | None, chosen: datetime) -> tuple[str, ...]:
    """Why the SeriesTime was not used, when its time of day disagrees with the chosen one by more than the slack."""
    if series is None or abs(clock_difference_s(series, chosen)) <= SERIES_SLACK_S:
        return ()
    return (f"SeriesTime {series.time().isoformat()} ignored: {describe_span(clock_difference_s(series, chosen))} "
            f"the scan time {chosen.time().isoformat()} (an anonymised or re-processed series)",)


def clock_difference_s(a: datetime, b: datetime) -> float:
    """``a - b`` in seconds by time of day, in (-12 h, 12 h] (dates of anonymised series disagree).

    >>> clock_difference_s(datetime(1885, 8, 27, 11, 11, 11), datetime(1994, 9, 2, 14, 7, 59))
    -10608.0
    """
    day = 86400.0
    delta = ((a.hour - b.hour) * 3600 + (a.minute - b.minute) * 60 + (a.second - b.second)
             + (a.microsecond - b.microsecond) / 1e6) % day
    return delta - day if delta > day / 2 else delta


def describe_span(seconds: float) -> str:
    """``"2.9 h before"``, ``"12 min after"``.

    >>> describe_span(-10608.0), describe_span(720.0)
    ('2.9 h before', '12 min after')
    """
    return f"{duration(seconds)} {'before' if seconds < 0 else 'after'}"


def duration(seconds: float) -> str:
    """``"22.6 h"`` or ``"12 min"`` (the sign is dropped)."""
    size = abs(seconds)
    return f"{size / 3600:.1f} h" if size >= 3600 else f"{size / 60:.0f} min"


def injection_datetime(first, scan: datetime | None) -> datetime | None:
    """RadiopharmaceuticalStartDateTime, else the start time on the scan's date (day before if later)."""
    info = radiopharmaceutical(first)
    if info is None:
        return None
    full = tag_value(info, "RadiopharmaceuticalStartDateTime")
    if full:
        parsed = parse_dicom_datetime(str(full))
        if parsed is not None:
            return parsed
    clock = tag_value(info, "RadiopharmaceuticalStartTime")
    if clock is None or scan is None:
        return None
    return before(combine(scan.date(), clock), scan)


def before(moment: datetime | None, scan: datetime) -> datetime | None:
    """``moment`` moved back a day when a time-of-day alone puts it after the scan (midnight crossing)."""
    if moment is not None and (moment - scan).total_seconds() > CLOCK_SLACK_S:
        return moment - timedelta(days=1)
    return moment
