"""DICOM series and masks as Volumes: what :func:`napari_hnc.load_study` calls for DICOM paths."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from ...errors import HncWarning, StudyError, UnitsError
from ...geometry import Volume
from ..suv_range import check_suv
from .names import RoiMap
from .series import DicomSeries, DicomStudy, cached_header, scan_dicom, scan_series, series_of_file
from .slices import read_slices, regular_volume
from .suv import SUVParameters, suv_factors

log = logging.getLogger(__name__)

Role = Literal["ct", "pet"]
_MODALITY = {"ct": "CT", "pet": "PT"}
_ROLE = {"CT": "ct", "PT": "pet"}


def one_study(path: Path) -> DicomStudy:
    """The single study with a CT or PET series in a DICOM folder (clear errors otherwise)."""
    studies = [s for s in scan_dicom(path) if s.ct or s.pet]
    if len(studies) > 1:
        raise StudyError(
            f"{path} holds {len(studies)} DICOM studies ({', '.join(s.case_id for s in studies[:5])}); "
            "pass the folder of one study or series"
        )
    if not studies:
        found = sorted({s.modality for s in scan_series(path)})
        raise StudyError(
            f"no CT or PET series in {path} (found {found or 'no DICOM files'}); pass a folder holding "
            "the CT and/or PET DICOM slices"
        )
    _warn_ignored(studies[0])
    return studies[0]


def dicom_study_files(path: str | Path):
    """:class:`~napari_hnc.study.StudyFiles` of the study in a DICOM folder (layout ``"dicom"``).

    ``ct`` and ``pet`` are the series' folders, ``labels`` the RTSTRUCT or SEG
    file that belongs to the CT (else the PET), if any.
    """
    from ...study import StudyFiles

    study = one_study(Path(path))
    grid = study.grid_series
    labels = None
    if study.masks and grid is not None:
        labels = pick_mask(list(study.masks), grid.uid, grid.modality).files[0]
    folder = lambda s: s.folder if s is not None else None  # noqa: E731
    return StudyFiles(study.case_id, "dicom", folder(study.ct), folder(study.pet), labels)


def find_series(path: str | Path, role: Role | None = None) -> DicomSeries:
    """The CT (``role="ct"``) or PET series of a folder or file; the only image series if no role."""
    path = Path(path)
    if path.is_file():
        series = series_of_file(path)
        if role and series.modality != _MODALITY[role]:
            raise StudyError(f"{path} is a {series.modality} image, not a {_MODALITY[role]} one; check which file is which")
        return series
    study = one_study(path)
    chosen = study.ct if role == "ct" else study.pet if role == "pet" else (study.ct or study.pet)
    if chosen is None:
        raise StudyError(f"no {_MODALITY[role or 'ct']} series in {path}; it holds only {_describe(study)}")
    if role is None and study.ct and study.pet:
        raise StudyError(f"{path} holds both a CT and a PET series; open it as a study (load_study)")
    return chosen


def _describe(study: DicomStudy) -> str:
    return ", ".join(s.describe() for s in (study.ct, study.pet) if s is not None) or "masks"


def _warn_ignored(study: DicomStudy) -> None:
    extra = [s for s in study.ignored if s.modality in _ROLE]
    if extra:
        used = [s.describe() for s in (study.ct, study.pet) if s is not None]
        warnings.warn(
            f"study {study.case_id}: several series of one modality; using {used} and ignoring "
            f"{[s.describe() for s in extra]}. Pass the folder of the series you want (ct=..., pet=...)",
            HncWarning,
            stacklevel=4,
        )


def read_series(series: DicomSeries, suv: SUVParameters | None = None) -> Volume:
    """One CT (HU) or PET (SUV) series as a Volume with its provenance in ``metadata``."""
    role = _ROLE.get(series.modality)
    if role is None:
        raise StudyError(f"the {series.describe()} is not a CT or PET image series")
    slices = read_slices(series, integer_ok=role == "ct")
    where = series.describe()
    values = slices.values
    meta = _provenance(series, role)
    if role == "pet":
        result = suv_factors(slices.headers, suv, where=where)
        values = (values * result.factors[None, None, :].astype(np.float32)).astype(np.float32, copy=False)
        meta.update(units=result.units, suv=result.as_metadata())
        log.info("%s: %s, factor %s", where, result.method, result.as_metadata()["factor"])
        _check_converted(values, result, suv, where)
    else:
        meta["units"] = "HU"
    array, affine = regular_volume(slices, values, where)
    return Volume(array, affine, meta)


def _check_converted(values: np.ndarray, result, suv: SUVParameters | None, where: str) -> None:
    """Refuse an SUV image whose maximum is impossible (unless allowed); warn about anything unusual."""
    check = check_suv(values, converted=True)
    if check.implausible and not (suv is not None and suv.allow_implausible):
        decay = result.as_metadata().get("decay_s")
        timing = f" ({decay / 3600:.2f} h of decay, {result.scan_reference_rule})" if decay is not None else ""
        raise UnitsError(
            f"{where}: after conversion to {result.units}{timing}, {check.problems[0]}. Check the header values "
            "(napari-hnc convert --weight/--dose/--injection-time/--scan-time, or SUVParameters) -- or, if you are "
            "sure, pass SUVParameters(allow_implausible=True) (CLI --allow-implausible-suv)"
        )
    for problem in check.problems:
        warnings.warn(f"{where}: {problem}", HncWarning, stacklevel=4)


def _provenance(series: DicomSeries, role: str) -> dict:
    first = series.first
    return {
        "role": role, "path": str(series.folder), "header": None, "format": "dicom",
        "modality": series.modality, "series_uid": series.uid, "study_uid": series.study_uid,
        "patient_id": series.patient_id, "series_description": series.description,
        "manufacturer": str(first.get("Manufacturer", "") or ""), "n_files": len(series.files),
        "frame_of_reference_uid": str(first.get("FrameOfReferenceUID", "") or ""),
    }


def read_dicom_image(path: str | Path, role: Role | None = None, *, suv: SUVParameters | None = None) -> Volume:
    """The CT or PET series in a folder (or the series of one file) as a Volume; PET in SUV.

    Parameters
    ----------
    path : str or Path
        A series folder, a study folder (the series of ``role`` is picked), or one file of the series.
    role : {"ct", "pet"}, optional
        Which series to read from a folder holding both.
    suv : SUVParameters, optional
        Values that replace or complete the header for the SUV conversion.

    Examples
    --------
    With a DICOM export on disk::

        pet = read_dicom_image("STS_001/FDG_PET", "pet")
        pet.metadata["units"], pet.metadata["suv"]["decay_correction"]   # ('SUVbw', 'START')
    """
    return read_series(find_series(path, role), suv)


def read_dicom_labels(path: str | Path, grid: Volume, roi_map: RoiMap | None = None) -> Volume:
    """Labels on ``grid`` from an RTSTRUCT or SEG file, or from the best mask in a folder.

    A folder's mask is the one that references the grid's series, else one drawn
    on an image of the grid's modality, else the first (with a warning).
    """
    path = Path(path)
    if path.is_dir():
        masks = [s for s in scan_series(path) if s.modality in ("RTSTRUCT", "SEG")]
        if not masks:
            raise StudyError(f"no RTSTRUCT or SEG file in {path}")
        path = pick_mask(masks, grid.metadata.get("series_uid"), grid.metadata.get("modality")).files[0]
    series = series_of_file(path)
    if series.modality == "RTSTRUCT":
        from .rtstruct import rasterise_rtstruct

        return rasterise_rtstruct(cached_header(path), grid, roi_map)
    if series.modality == "SEG":
        from .seg import seg_labels

        return seg_labels(path, grid, roi_map)
    raise StudyError(f"{path} is a {series.modality} file, not an RTSTRUCT or SEG mask")


def pick_mask(masks: list[DicomSeries], uid: str | None, modality: str | None) -> DicomSeries:
    """The mask that belongs to the image series ``uid`` of ``modality`` (see :func:`read_dicom_labels`)."""
    if len(masks) == 1:
        return masks[0]
    ranked = sorted(masks, key=lambda m: (uid in referenced_series(m.first), modality in referenced_modalities(m.first)), reverse=True)
    log.info("%d mask files; using %s", len(masks), ranked[0].files[0])
    top = (uid in referenced_series(ranked[0].first), modality in referenced_modalities(ranked[0].first))
    if not any(top):
        warnings.warn(
            f"{len(masks)} mask files and none refers to the {modality or 'image'} series; using "
            f"{ranked[0].files[0]}. Pass labels=... to choose another",
            HncWarning,
            stacklevel=3,
        )
    return ranked[0]


def referenced_series(ds) -> set[str]:
    """Series UIDs an RTSTRUCT or SEG refers to."""
    uids = set()
    for ref in ds.get("ReferencedSeriesSequence", []):
        uids.add(str(ref.get("SeriesInstanceUID", "")))
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uids.add(str(series.get("SeriesInstanceUID", "")))
    return uids - {""}


_SOP_MODALITY = {"1.2.840.10008.5.1.4.1.1.2": "CT", "1.2.840.10008.5.1.4.1.1.2.1": "CT",
                 "1.2.840.10008.5.1.4.1.1.128": "PT", "1.2.840.10008.5.1.4.1.1.130": "PT"}


def referenced_modalities(ds) -> set[str]:
    """Modalities of the images an RTSTRUCT's contours or a SEG's sources refer to (by SOP class)."""
    classes = set()
    for roi in ds.get("ROIContourSequence", []):
        for contour in roi.get("ContourSequence", [])[:3]:
            for image in contour.get("ContourImageSequence", []):
                classes.add(str(image.get("ReferencedSOPClassUID", "")))
    for ref in ds.get("ReferencedSeriesSequence", []):
        for image in ref.get("ReferencedInstanceSequence", [])[:3]:
            classes.add(str(image.get("ReferencedSOPClassUID", "")))
    return {_SOP_MODALITY[c] for c in classes if c in _SOP_MODALITY}
