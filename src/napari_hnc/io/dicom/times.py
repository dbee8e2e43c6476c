"""DICOM dates and times (DA, TM, DT) and times typed by users, as ``datetime`` objects.

Time zones are ignored: DICOM times of one study are local times of one scanner.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from ...errors import UnitsError

_TM = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?$")
_DT = re.compile(r"^(\d{8})(\d{2,6}(?:\.\d{1,6})?)?")


def parse_dicom_date(text: Any) -> date | None:
    """``"20000907"`` (DA; also ``"2000.09.07"``) -> ``date``, None if empty or invalid.

    >>> parse_dicom_date("20000907")
    datetime.date(2000, 9, 7)
    """
    digits = str(text or "").strip().replace(".", "").replace("-", "")
    try:
        return datetime.strptime(digits, "%Y%m%d").date()
    except ValueError:
        return None


def parse_dicom_time(text: Any) -> time | None:
    """``"112011.00"`` (TM; also ``"11:20:11"``) -> ``time``, None if empty or invalid.

    >>> parse_dicom_time("112011.5")
    datetime.time(11, 20, 11, 500000)
    """
    match = _TM.match(str(text or "").strip().replace(":", ""))
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    micro = int(round(float(fraction) * 1e6)) if fraction else 0
    try:
        return time(int(hours), int(minutes or 0), int(seconds or 0), min(micro, 999999))
    except ValueError:
        return None


def parse_dicom_datetime(text: Any) -> datetime | None:
    """``"20000907103500.00"`` (DT, any UTC offset dropped) -> ``datetime``.

    >>> parse_dicom_datetime("20000907103500.00+0100")
    datetime.datetime(2000, 9, 7, 10, 35)
    """
    match = _DT.match(str(text or "").strip())
    if not match:
        return None
    day = parse_dicom_date(match.group(1))
    clock = parse_dicom_time(match.group(2) or "00") if match.group(2) else time(0)
    return None if day is None or clock is None else datetime.combine(day, clock)


def combine(day: Any, clock: Any, *, near: datetime | None = None) -> datetime | None:
    """A date (DA or ``date``) and a time (TM or ``time``) as one ``datetime``.

    With ``near``, the result is moved by a day either way when that brings it
    closer to ``near`` (a time-of-day whose date was not recorded).

    >>> combine("20000907", "001500", near=datetime(2000, 9, 7, 23, 50))
    datetime.datetime(2000, 9, 8, 0, 15)
    """
    day = day if isinstance(day, date) else parse_dicom_date(day)
    clock = clock if isinstance(clock, time) else parse_dicom_time(clock)
    if day is None or clock is None:
        return None
    out = datetime.combine(day, clock)
    if near is not None:
        out = min((out + timedelta(days=d) for d in (-1, 0, 1)), key=lambda t: abs((t - near).total_seconds()))
    return out


def parse_user_time(value: Any, anchor: datetime | None) -> tuple[datetime, bool]:
    """A time given by a user, and whether it carried its own date.

    Accepts ``datetime``, ``time``, ``"HH:MM[:SS]"``, ``"HHMMSS"``, ISO
    ``"YYYY-MM-DDTHH:MM[:SS]"`` or a DICOM DT. A time without a date is put on
    ``anchor``'s date.

    >>> parse_user_time("10:35", datetime(2000, 9, 7, 11, 20))
    (datetime.datetime(2000, 9, 7, 10, 35), False)
    """
    if isinstance(value, datetime):
        return value, True
    if isinstance(value, time):
        clock: time | None = value
    else:
        text = str(value).strip()
        full = _parse_full(text)
        if full is not None:
            return full, True
        clock = parse_dicom_time(text)
    if clock is None:
        raise UnitsError(
            f"cannot read the time {value!r}; write it as HH:MM:SS (e.g. 10:35:00) or with its date "
            "as YYYY-MM-DDTHH:MM:SS"
        )
    if anchor is None:
        raise UnitsError(
            f"the time {value!r} has no date and the series has no date to put it on; "
            "give it with its date, as YYYY-MM-DDTHH:MM:SS"
        )
    return datetime.combine(anchor.date(), clock), False


def _parse_full(text: str) -> datetime | None:
    if "-" in text[:10] and len(text) >= 10:
        try:
            return datetime.fromisoformat(text.replace(" ", "T"))
        except ValueError:
            return None
    if text[:8].isdigit() and len(text.split(".")[0]) >= 12:
        return parse_dicom_datetime(text)
    return None
