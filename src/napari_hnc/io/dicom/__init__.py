"""DICOM import: CT and PET series (PET converted to SUV), RTSTRUCT and DICOM SEG masks.

Modules, each small and Qt-free:

* :mod:`.files` -- cheap checks ("is this a DICOM file / folder?"), no pydicom import;
* :mod:`.series` -- header scan (``stop_before_pixels``), grouping into series and studies;
* :mod:`.slices` -- slice ordering, geometry (LPS -> RAS), pixel data, irregular spacing;
* :mod:`.suv` -- body-weight SUV (and SUL) factors by the QIBA vendor-neutral rules;
* :mod:`.names` -- ROI / segment names to label classes (an editable mapping);
* :mod:`.rtstruct`, :mod:`.seg` -- masks rasterised or resampled onto an image grid;
* :mod:`.reader` -- what :func:`napari_hnc.load_study` calls; :mod:`.convert` -- DICOM to NIfTI.

Names are imported lazily so that ``import napari_hnc.io.dicom`` does not import pydicom.

Examples
--------
>>> from napari_hnc.io.dicom import SUVParameters
>>> SUVParameters(weight_kg=70.0, dose_bq=3.7e8, injection_time="10:35").weight_kg
70.0
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES: dict[str, str] = {
    "SUVParameters": "suv",
    "SUVResult": "suv",
    "suv_factors": "suv",
    "lean_body_mass_kg": "suv",
    "DEFAULT_ROI_CLASSES": "names",
    "roi_class": "names",
    "DicomSeries": "series",
    "DicomStudy": "series",
    "scan_dicom": "series",
    "read_dicom_image": "reader",
    "read_dicom_labels": "reader",
    "read_rtstruct": "rtstruct",
    "rasterise_rtstruct": "rtstruct",
    "seg_labels": "seg",
    "convert_dicom": "convert",
    "is_dicom_path": "files",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
