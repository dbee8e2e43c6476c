"""Scan a folder of DICOM files into series and studies, reading headers only.

Every file is read once with ``stop_before_pixels=True``; image pixel data are
read later, only for the series that are used. Headers are cached per file
(keyed by path, size and modification time, up to :data:`HEADER_CACHE_FILES`
files), so opening a study found by :func:`scan_dicom`, or a sub-folder of it,
does not read the headers again.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ...errors import ImageFileError, StudyError
from .files import iter_dicom_files

log = logging.getLogger(__name__)

IMAGE_MODALITIES = ("CT", "PT")
MASK_MODALITIES = ("RTSTRUCT", "SEG")
#: How many files' headers are kept between scans.
HEADER_CACHE_FILES = 4096
_HEADERS: "OrderedDict[tuple[str, int, int], object]" = OrderedDict()


@dataclass(frozen=True, eq=False)
class DicomSeries:
    """The files of one DICOM series and their headers (without pixel data)."""

    uid: str
    modality: str
    files: tuple[Path, ...]
    headers: tuple  # pydicom Datasets, in the order of ``files``

    @property
    def first(self):
        return self.headers[0]

    @property
    def study_uid(self) -> str:
        return str(self.first.get("StudyInstanceUID", ""))

    @property
    def patient_id(self) -> str:
        return str(self.first.get("PatientID", "") or "").strip()

    @property
    def description(self) -> str:
        return str(self.first.get("SeriesDescription", "") or "").strip()

    @property
    def folder(self) -> Path:
        """The deepest folder holding all the files of the series."""
        return Path(os.path.commonpath([str(f.parent) for f in self.files]))

    @property
    def attenuation_corrected(self) -> bool:
        corrected = self.first.get("CorrectedImage")
        return corrected is None or "ATTN" in [str(c).upper() for c in _as_list(corrected)]

    def describe(self) -> str:
        """``"PT series 'PET AC' (267 files) in /data/pet"``."""
        what = f"{self.modality} series"
        if self.description:
            what += f" {self.description!r}"
        count = f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}"
        return f"{what} ({count}) in {self.folder}"


@dataclass(frozen=True, eq=False)
class DicomStudy:
    """The CT, PET and mask series of one study (one StudyInstanceUID)."""

    case_id: str
    ct: DicomSeries | None
    pet: DicomSeries | None
    masks: tuple[DicomSeries, ...] = ()
    ignored: tuple[DicomSeries, ...] = ()

    @property
    def grid_series(self) -> DicomSeries | None:
        """The series the labels live on: the CT, else the PET."""
        return self.ct or self.pet


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]


def _read_header(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    force = path.suffix.lower() in (".dcm", ".ima", ".dicom")
    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True, force=force)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        log.debug("skipped %s: not a readable DICOM file (%s)", path, exc)
        return None


def cached_header(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key in _HEADERS:
        _HEADERS.move_to_end(key)
        return _HEADERS[key]
    header = _read_header(path)
    _HEADERS[key] = header
    while len(_HEADERS) > HEADER_CACHE_FILES:
        _HEADERS.popitem(last=False)
    return header


def scan_series(path: str | Path) -> list[DicomSeries]:
    """All DICOM series in a file's folder or under a folder (recursively), headers only.

    A file gives the series of its folder (its own and its siblings). Files that
    are not DICOM, or have no SeriesInstanceUID, are skipped.
    """
    path = Path(path)
    folder = path.parent if path.is_file() else path
    if not folder.is_dir():
        raise StudyError(f"{path} does not exist; check the path")
    return _group(iter_dicom_files(folder, recursive=not path.is_file()))


def _group(files: Iterable[Path]) -> list[DicomSeries]:
    groups: dict[str, list[tuple[Path, object]]] = {}
    for file in files:
        header = cached_header(file)
        uid = None if header is None else header.get("SeriesInstanceUID")
        if uid is None:
            continue
        groups.setdefault(str(uid), []).append((file, header))
    out = []
    for uid, members in groups.items():
        modality = str(members[0][1].get("Modality", "") or "").upper()
        out.append(DicomSeries(uid, modality, tuple(m[0] for m in members), tuple(m[1] for m in members)))
    return sorted(out, key=lambda s: (s.study_uid, s.modality, str(s.folder)))


def series_of_file(path: str | Path) -> DicomSeries:
    """The series a DICOM file belongs to (with its siblings in the same folder)."""
    path = Path(path)
    header = cached_header(path)
    if header is None or "SeriesInstanceUID" not in header:
        raise ImageFileError(path, "is not a readable DICOM image", "Pass a DICOM file of a CT or PET series")
    uid = str(header.SeriesInstanceUID)
    for series in scan_series(path):
        if series.uid == uid:
            return series
    raise ImageFileError(path, "could not be grouped with its series", "Pass the folder of the series")  # pragma: no cover


def scan_dicom(path: str | Path) -> list[DicomStudy]:
    """The studies (CT, PET, masks) in a DICOM folder, one per StudyInstanceUID.

    Where a study holds several CT or PET series, the largest attenuation-corrected
    one is used and the others are listed in ``ignored`` (a warning says which).

    Examples
    --------
    With a DICOM export on disk::

        studies = scan_dicom("raw/STS_001/")
        studies[0].case_id, studies[0].pet.describe()
        # ('STS_001', "PT series 'PET AC' (267 files) in raw/STS_001/FDG_PET/image")
    """
    by_study: dict[str, list[DicomSeries]] = {}
    for series in scan_series(path):
        by_study.setdefault(series.study_uid, []).append(series)
    studies = [_make_study(members, Path(path)) for members in by_study.values()]
    return sorted(studies, key=lambda s: s.case_id)


def _make_study(members: list[DicomSeries], root: Path) -> DicomStudy:
    ct, ct_rest = _pick([s for s in members if s.modality == "CT"])
    pet, pet_rest = _pick([s for s in members if s.modality == "PT"])
    masks = tuple(s for s in members if s.modality in MASK_MODALITIES)
    other = tuple(s for s in members if s.modality not in IMAGE_MODALITIES + MASK_MODALITIES)
    ids = [s.patient_id for s in members if s.patient_id]
    case_id = ids[0] if ids else (root.name if root.is_dir() else root.parent.name)
    return DicomStudy(_safe_case_id(case_id), ct, pet, masks, tuple(ct_rest + pet_rest) + other)


def _pick(candidates: list[DicomSeries]) -> tuple[DicomSeries | None, list[DicomSeries]]:
    if not candidates:
        return None, []
    ranked = sorted(candidates, key=lambda s: (s.attenuation_corrected, len(s.files)), reverse=True)
    return ranked[0], ranked[1:]


def _safe_case_id(text: str) -> str:
    """A case id usable in file names: ``"A/B 1"`` -> ``"A_B_1"``."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text.strip())
    return cleaned.strip("._") or "dicom"
