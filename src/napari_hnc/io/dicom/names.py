"""ROI (RTSTRUCT) and segment (SEG) names to label classes, through an editable mapping.

A mapping is a dict from a name or a regular expression (matched against the
whole name, case-insensitively) to a class: ``"primary"``/``1``, ``"node"``/``2``,
or ``None``/``0``/``"background"`` to leave the ROI out. A user's mapping is
tried before :data:`DEFAULT_ROI_CLASSES`; names that match neither are left
out with a warning that says how to map them.

Examples
--------
>>> [roi_class(n) for n in ("GTVp", "GTV_T", "GTV_Mass_CT", "GTVn2", "LN_left", "GTV_Edema")]
[1, 1, 1, 2, 2, None]
>>> roi_class("GTV_Edema", {"GTV_Edema": "primary"})
1
"""

from __future__ import annotations

import re
import warnings
from typing import Iterable, Mapping

from ...conventions import BACKGROUND, class_value
from ...errors import HncWarning

RoiMap = Mapping[str, "str | int | None"]

_SEP = r"[ _\-.]*"
_TAIL = r"(?:[ _\-.].*)?"
#: Default ROI-name patterns (full match, case-insensitive) -> class, tried in order.
DEFAULT_ROI_CLASSES: dict[str, str] = {
    rf"gtv{_SEP}(?:p|t|prim|primary|primaire|tumou?r|mass|t{_SEP}\d+){_TAIL}": "primary",
    rf"gtv{_SEP}(?:n|ln|node|nodes|nodal|n{_SEP}\d+|ln{_SEP}\d+){_TAIL}": "node",
    rf"(?:primary|tumou?r|mass|gtv{_SEP}primary){_TAIL}": "primary",
    rf"(?:lymph{_SEP}nodes?|nodes?|ln|ln{_SEP}\d+|n{_SEP}\d+|adenopath(?:y|ie)){_TAIL}": "node",
}


def _class_of(value: str | int | None) -> int:
    if value is None:
        return BACKGROUND
    return class_value(value)


def roi_class(name: str, roi_map: RoiMap | None = None) -> int | None:
    """Label class of an ROI name: 1, 2, 0 (left out on purpose), or None (unknown)."""
    text = str(name).strip()
    for table in (roi_map or {}, DEFAULT_ROI_CLASSES):
        for key, value in table.items():
            if key.strip().lower() == text.lower() or _matches(key, text):
                return _class_of(value)
    return None


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.fullmatch(pattern, text, flags=re.IGNORECASE) is not None
    except re.error:
        return False


def classify_rois(names: Iterable[str], roi_map: RoiMap | None = None, *, where: str = "masks") -> dict[str, int]:
    """``{name: class}`` for the names that map to a lesion class; warns about unknown names."""
    out: dict[str, int] = {}
    unknown: list[str] = []
    for name in names:
        value = roi_class(name, roi_map)
        if value is None:
            unknown.append(name)
        elif value != BACKGROUND:
            out[name] = value
    if unknown:
        warnings.warn(
            f"{where}: ROI/segment name(s) {unknown} match no label class and were left out. Map them with "
            "roi_map={'NAME': 'primary' or 'node'} (CLI: --roi NAME=primary)",
            HncWarning,
            stacklevel=3,
        )
    return out


def parse_roi_option(text: str) -> tuple[str, str | None]:
    """``"GTV_Edema=primary"`` (a CLI ``--roi``) -> ``("GTV_Edema", "primary")``, the class checked.

    >>> parse_roi_option("GTV 1=node")
    ('GTV 1', 'node')
    """
    name, sep, cls = text.rpartition("=")
    if not sep or not name.strip():
        raise ValueError(f"--roi takes NAME=CLASS (e.g. GTV_Mass=primary), got {text!r}")
    cls = cls.strip()
    if cls.lower() in ("none", "ignore", "skip"):
        return name.strip(), None
    class_value(cls)
    return name.strip(), cls
