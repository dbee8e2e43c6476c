"""DICOM studies to NIfTI in the HECKTOR 2022 layout: ``<case>__CT.nii.gz``, ``<case>__PT.nii.gz``, ``<case>.nii.gz``.

The PET is written in SUV (float32), the CT in HU, the labels (uint8) on the CT
grid (on the PET grid when there is no CT). Every file is written atomically,
and ``<case>__dicom.json`` beside them records where each image came from and
how the SUV was computed. The result opens with :func:`napari_hnc.load_study`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import HncError
from ..atomic import atomic_write_text
from ..nifti import save_labels, write_nifti
from .names import RoiMap
from .series import DicomStudy, scan_dicom
from .suv import SUVParameters

log = logging.getLogger(__name__)

_PROVENANCE_KEYS = ("modality", "series_uid", "study_uid", "patient_id", "series_description", "manufacturer",
                    "n_files", "units", "suv", "path", "rois", "source_path")


@dataclass(frozen=True)
class Converted:
    """The files written for one study."""

    case_id: str
    paths: dict[str, Path] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.case_id}: " + ", ".join(f"{k} -> {v}" for k, v in self.paths.items())


def convert_dicom(
    path: str | Path,
    out: str | Path,
    *,
    suv: SUVParameters | None = None,
    roi_map: RoiMap | None = None,
    overwrite: bool = False,
) -> list[Converted]:
    """Convert every study with a CT or PET series under ``path`` (see the module docstring).

    Parameters
    ----------
    path : str or Path
        A DICOM folder (searched recursively): one study, or many (one per StudyInstanceUID).
    out : str or Path
        Output folder (created).
    suv : SUVParameters, optional
        Values replacing or completing the PET header (applied to every study).
    roi_map : dict, optional
        Mask names to classes, tried before the defaults.
    overwrite : bool
        Replace existing output files; by default an existing file is an error
        (so labels edited by hand are never replaced by accident).

    Examples
    --------
    With a DICOM export on disk::

        [c.case_id for c in convert_dicom("dicom/STS_001", "nifti/")]   # ['STS_001']
    ['STS_001']
    """
    studies = [s for s in scan_dicom(path) if s.ct or s.pet]
    if not studies:
        raise HncError(f"no CT or PET DICOM series found under {path}; pass the folder that holds the DICOM files")
    return [convert_study(s, out, suv=suv, roi_map=roi_map, overwrite=overwrite) for s in studies]


def convert_study(
    study: DicomStudy | dict[str, Any],
    out: str | Path,
    *,
    suv: SUVParameters | None = None,
    roi_map: RoiMap | None = None,
    overwrite: bool = False,
    case_id: str | None = None,
) -> Converted:
    """Convert one study: a :class:`DicomStudy`, or ``{"ct": ..., "pet": ..., "labels": ...}`` paths."""
    from ...study import load_study
    from .reader import pick_mask

    if isinstance(study, DicomStudy):
        grid = study.grid_series
        mask = pick_mask(list(study.masks), grid.uid, grid.modality).files[0] if study.masks and grid else None
        files = {"ct": study.ct and study.ct.folder, "pet": study.pet and study.pet.folder, "labels": mask}
        case_id = case_id or study.case_id
    else:
        files = study
    loaded = load_study(**{k: v for k, v in files.items() if v is not None}, case_id=case_id, suv=suv, roi_map=roi_map)
    case = loaded.case_id
    out = Path(out)
    targets = {"ct": out / f"{case}__CT.nii.gz", "pet": out / f"{case}__PT.nii.gz", "labels": out / f"{case}.nii.gz"}
    wanted = {k: p for k, p in targets.items() if getattr(loaded, k) is not None}
    _check_free(list(wanted.values()) + [out / f"{case}__dicom.json"], overwrite)
    paths: dict[str, Path] = {}
    if loaded.ct is not None:
        paths["ct"] = write_nifti(loaded.ct, wanted["ct"], descrip="napari-hnc: CT (HU) from DICOM")
    if loaded.pet is not None:
        units = loaded.pet.metadata.get("units", "SUVbw")
        paths["pet"] = write_nifti(loaded.pet, wanted["pet"], descrip=f"napari-hnc: PET ({units}) from DICOM")
    if loaded.labels is not None:
        paths["labels"] = save_labels(loaded.labels, loaded.grid, wanted["labels"])
    paths["provenance"] = _write_json(out / f"{case}__dicom.json", _provenance(loaded))
    log.info("converted %s", case)
    return Converted(case, paths)


def _check_free(paths: list[Path], overwrite: bool) -> None:
    taken = [str(p) for p in paths if p.exists()]
    if taken and not overwrite:
        raise HncError(f"{', '.join(taken)} already exist(s); nothing was written. Pass overwrite=True (CLI: --overwrite) to replace")


def _provenance(study) -> dict[str, Any]:
    record: dict[str, Any] = {"case_id": study.case_id, "written_by": "napari-hnc convert"}
    for role in ("ct", "pet", "labels"):
        volume = getattr(study, role)
        if volume is not None:
            record[role] = {k: volume.metadata[k] for k in _PROVENANCE_KEYS if volume.metadata.get(k) is not None}
    return record


def _write_json(path: Path, record: dict[str, Any]) -> Path:
    return atomic_write_text(path, json.dumps(record, indent=2, default=str))
