"""Writing quantification tables: CSV (one row per lesion) and JSON (lesions and study totals).

Examples
--------
>>> import json, tempfile
>>> table = pd.DataFrame({"lesion": [1], "class": [1], "volume_ml": [2.5], "tlg": [10.0], "suv_max": [7.0]})
>>> path = write_quantification(table, Path(tempfile.mkdtemp()) / "case.json", case_id="A")
>>> doc = json.loads(path.read_text())
>>> doc["case_id"], doc["totals"]["mtv_primary_ml"], doc["lesions"][0]["suv_max"]
('A', 2.5, 7.0)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import HncError
from ..io.atomic import atomic_write_text
from .measure import study_totals

FORMATS = (".csv", ".json")


def write_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the lesion table as CSV (atomically: a temporary file, then a rename)."""
    return atomic_write_text(Path(path), table.to_csv(index=False, float_format="%.6g"))


def write_json(table: pd.DataFrame, path: str | Path, **extra: Any) -> Path:
    """Write ``{**extra, "totals": study_totals(table), "lesions": [rows]}`` as JSON (NaN as null)."""
    document = {**extra, "totals": study_totals(table), "lesions": table.to_dict(orient="records")}
    return atomic_write_text(Path(path), json.dumps(_clean(document), indent=2) + "\n")


def write_quantification(table: pd.DataFrame, path: str | Path, **extra: Any) -> Path:
    """Write CSV or JSON, chosen by the file's suffix (``.csv`` or ``.json``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return write_csv(table, path)
    if suffix == ".json":
        return write_json(table, path, **extra)
    raise HncError(f"{path}: write the table to a .csv or .json file")


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
