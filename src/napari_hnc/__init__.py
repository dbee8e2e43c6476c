"""napari-hnc: semi-automatic annotation of head-and-neck cancer lesions in FDG PET/CT.

The notebook API (no napari or Qt needed, except for :func:`open_study`)::

    import napari_hnc
    study = napari_hnc.load_study("CHUM-001__CT.nii.gz")   # CT, PET (SUV), labels
    napari_hnc.save_labels(study.labels, study.ct, "CHUM-001.nii.gz")

Names are imported on first use, so ``import napari_hnc`` stays fast and light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily)
_API: dict[str, str] = {
    "CancelToken": "napari_hnc.progress",
    "Click": "napari_hnc.clicks",
    "Volume": "napari_hnc.geometry",
    "resample_to": "napari_hnc.geometry",
    "Study": "napari_hnc.study",
    "StudyFiles": "napari_hnc.study",
    "load_study": "napari_hnc.study",
    "discover_studies": "napari_hnc.study",
    "read_nifti": "napari_hnc.io.nifti",
    "save_labels": "napari_hnc.io.nifti",
    "sample_study_path": "napari_hnc.sample",
    "SUVParameters": "napari_hnc.io.dicom.suv",
    "convert_dicom": "napari_hnc.io.dicom.convert",
    "read_dicom_image": "napari_hnc.io.dicom.reader",
    "read_dicom_labels": "napari_hnc.io.dicom.reader",
    "scan_dicom": "napari_hnc.io.dicom.series",
    "generate_phantom": "napari_hnc.phantom",
    "write_phantom_cohort": "napari_hnc.phantom",
    "PhantomCase": "napari_hnc.phantom",
    "open_study": "napari_hnc._napari.controller",
    "delineate": "napari_hnc.pet.delineation",
    "quantify": "napari_hnc.pet.measure",
    "study_totals": "napari_hnc.pet.measure",
    "write_quantification": "napari_hnc.pet.report",
    "segment_from_seed": "napari_hnc.pet.seed",
    "segment": "napari_hnc.inference.automatic",
    "find_head_neck": "napari_hnc.headneck",
    "HeadNeckRegion": "napari_hnc.headneck",
    "RefinementSession": "napari_hnc.inference.session",
    "RegionUpdate": "napari_hnc.inference.region",
}

__all__ = sorted(_API) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .clicks import Click
    from .geometry import Volume, resample_to
    from .progress import CancelToken
    from .headneck import HeadNeckRegion, find_head_neck
    from .inference.automatic import segment
    from .inference.region import RegionUpdate
    from .inference.session import RefinementSession
    from .io.nifti import read_nifti, save_labels
    from .io.dicom.convert import convert_dicom
    from .io.dicom.reader import read_dicom_image, read_dicom_labels
    from .io.dicom.series import scan_dicom
    from .io.dicom.suv import SUVParameters
    from .sample import sample_study_path
    from .phantom import PhantomCase, generate_phantom, write_phantom_cohort
    from .study import Study, StudyFiles, discover_studies, load_study
    from .pet.delineation import delineate
    from .pet.measure import quantify, study_totals
    from .pet.report import write_quantification
    from .pet.seed import segment_from_seed


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'napari_hnc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
