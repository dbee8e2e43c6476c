"""Header access and the QIBA time rules behind the SUV factors (see :mod:`.suv`).

The scan reference time and the injection datetime, vendor by vendor, and the
Philips private scale factors.
"""

from __future__ import annotations

import math
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


def scan_reference(headers: Sequence) -> tuple[datetime | None, str]:
    """The time the series is decay-corrected to, and the rule that gave it (QIBA)."""
    first = headers[0]
    series_date = tag_value(first, "SeriesDate") or tag_value(first, "AcquisitionDate") or tag_value(first, "StudyDate")
    series = combine(series_date, tag_value(first, "SeriesTime"))
    acquisitions = [
        combine(tag_value(h, "AcquisitionDate"), tag_value(h, "AcquisitionTime"))
        if tag_value(h, "AcquisitionDate") else combine(series_date, tag_value(h, "AcquisitionTime"), near=series)
        for h in headers
    ]
    acquisitions = [a for a in acquisitions if a is not None]
    earliest = min(acquisitions) if acquisitions else None
    if series is not None and (earliest is None or series <= earliest):
        return series, "SeriesDate/SeriesTime"
    ge = private(first, 0x0009, "GEMS_PETD_01", 0x0D)
    if ge:
        parsed = parse_dicom_datetime(ge.decode() if isinstance(ge, bytes) else str(ge))
        if parsed is not None:
            return parsed, "GE private scan datetime (0009,100D)"
    if earliest is not None:
        return earliest, "earliest AcquisitionDate/AcquisitionTime (series time is after the acquisition)"
    return None, ""


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
