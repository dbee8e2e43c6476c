"""Dataset layouts: which files make a study, and what role each file plays.

Recognised layouts (``DESIGN.md``):

==============  =======================  =======================  ========================
layout          CT                       PET                      labels
==============  =======================  =======================  ========================
hecktor2022     ``<id>__CT.nii.gz``      ``<id>__PT.nii.gz``      ``<id>.nii.gz`` (beside,
                                                                  or in ``labelsTr``)
hecktor2021     ``<id>_ct.nii.gz``       ``<id>_pt.nii.gz``       ``<id>_gtvt.nii.gz``
autopet         ``CTres.nii.gz``         ``SUV.nii.gz``           ``SEG.nii.gz``
dicom           a folder of CT and PET series (and RTSTRUCT / SEG)
generic         ``ct=``                  ``pet=``                 ``labels=``
==============  =======================  =======================  ========================

``.nii`` and ``.nii.gz`` are accepted alike everywhere (``.nii.gz`` is used, with a warning, when
both exist). Files napari-hnc derives from a study -- predictions ``<case>_pred.nii.gz`` and
lesion-instance maps ``<case>_instances.nii.gz`` -- are never taken for an image, a case or
reference labels, so writing them beside a dataset never changes what the dataset holds.
Symbolic links to case folders or files are followed (each real folder is visited once);
a broken link is reported with a warning. Hidden files and folders (names starting with
``.``, such as the temporaries of a write in progress) are not looked at.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from .conventions import DERIVED_SUFFIXES
from .errors import HncWarning, StudyError
from .geometry import Volume
from .io.dicom.files import is_dicom_file, is_dicom_path, is_dicomdir
from .io.nifti import NIFTI_SUFFIXES, is_nifti, strip_nifti_suffix

Role = Literal["ct", "pet", "labels"]
ROLES: tuple[Role, ...] = ("ct", "pet", "labels")

LABEL_FOLDERS = ("labelsTr", "labelsTs", "labels")
IMAGE_FOLDERS = ("imagesTr", "imagesTs", "images")

_H22 = re.compile(r"^(?P<id>.+)__(?P<mod>CT|PT)$")
_H21 = re.compile(r"^(?P<id>.+?)_(?P<mod>ct|pt|gtvt|ct_gtvt)$")
_AUTOPET = {"CTres": "ct", "SUV": "pet", "SEG": "labels"}
_H21_ROLES = {"ct": "ct", "pt": "pet", "gtvt": "labels", "ct_gtvt": "labels"}


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class StudyFiles:
    """Where the files of one study are."""

    case_id: str
    layout: str
    ct: Path | None = None
    pet: Path | None = None
    labels: Path | None = None

    def paths(self) -> dict[str, Path | None]:
        return {"ct": self.ct, "pet": self.pet, "labels": self.labels}


def classify_file(path: str | Path) -> tuple[str, str, Role] | None:
    """``(layout, case_id, role)`` of a file named after a known layout, else None.

    >>> classify_file("imagesTr/CHUM-001__PT.nii.gz")
    ('hecktor2022', 'CHUM-001', 'pet')
    >>> classify_file("CHGJ007_gtvt.nii.gz")
    ('hecktor2021', 'CHGJ007', 'labels')
    """
    path = Path(path)
    if not is_nifti(path) or is_derived(path):
        return None
    stem = strip_nifti_suffix(path.name)
    if stem in _AUTOPET:
        parent = Path(os.path.abspath(path)).parent  # the folders as given: a linked study keeps its names
        return "autopet", f"{parent.parent.name}_{parent.name}", _AUTOPET[stem]  # type: ignore[return-value]
    if m := _H22.match(stem):
        return "hecktor2022", m["id"], ("ct" if m["mod"] == "CT" else "pet")
    if m := _H21.match(stem):
        return "hecktor2021", m["id"], _H21_ROLES[m["mod"]]  # type: ignore[return-value]
    return None


def is_derived(path: str | Path) -> bool:
    """True for files napari-hnc derives from a study (``*_pred``, ``*_instances``), never part of a layout.

    >>> is_derived("labelsTr/CHUM-001_pred.nii.gz"), is_derived("CHUM-001_instances.nii"), is_derived("CHUM-001.nii.gz")
    (True, True, False)
    """
    return is_nifti(path) and strip_nifti_suffix(Path(path).name).endswith(DERIVED_SUFFIXES)


def nifti_file(folder: Path, stem: str) -> Path | None:
    """``folder/<stem>.nii.gz`` or ``folder/<stem>.nii``, whichever exists (``.nii.gz`` if both, with a warning)."""
    found = [folder / f"{stem}{suffix}" for suffix in NIFTI_SUFFIXES if (folder / f"{stem}{suffix}").is_file()]
    if len(found) > 1:
        warnings.warn(
            f"both {found[0].name} and {found[1].name} are in {folder}; using {found[0].name}. "
            "Delete or move the one you do not want",
            HncWarning,
            stacklevel=4,
        )
    return found[0] if found else None


def _hecktor2022_labels(image_dir: Path, case_id: str) -> Path | None:
    if case_id.endswith(DERIVED_SUFFIXES):  # <case>_pred.nii.gz would be a prediction, not reference labels
        return None
    folders = [image_dir] + [image_dir.parent / d for d in LABEL_FOLDERS]
    return next((f for f in (nifti_file(d, case_id) for d in folders) if f is not None), None)


def _siblings(layout: str, case_id: str, folder: Path) -> StudyFiles:
    def existing(stem: str) -> Path | None:
        return nifti_file(folder, stem)

    if layout == "hecktor2022":
        return StudyFiles(
            case_id, layout, existing(f"{case_id}__CT"), existing(f"{case_id}__PT"), _hecktor2022_labels(folder, case_id),
        )
    if layout == "hecktor2021":
        labels = existing(f"{case_id}_gtvt") or existing(f"{case_id}_ct_gtvt")
        return StudyFiles(case_id, layout, existing(f"{case_id}_ct"), existing(f"{case_id}_pt"), labels)
    return StudyFiles(case_id, layout, existing("CTres"), existing("SUV"), existing("SEG"))


def _files_for_file(path: Path) -> StudyFiles | None:
    found = classify_file(path)
    if found is None:
        return _hecktor2022_label_file(path)
    layout, case_id, _ = found
    return _siblings(layout, case_id, path.parent)


def _hecktor2022_label_file(path: Path) -> StudyFiles | None:
    """A HECKTOR 2022 label file ``labelsTr/<id>.nii.gz``: find its images."""
    if not is_nifti(path) or is_derived(path):
        return None
    case_id = strip_nifti_suffix(path.name)
    folders = [path.parent] + [path.parent.parent / d for d in IMAGE_FOLDERS]
    for folder in folders:
        if nifti_file(folder, f"{case_id}__CT") or nifti_file(folder, f"{case_id}__PT"):
            return _siblings("hecktor2022", case_id, folder)
    return None


def iter_nifti_files(root: Path, *, recursive: bool = True) -> Iterator[Path]:
    """NIfTI files under ``root``, sorted within each folder, following symbolic links.

    Each real folder is visited once (a link loop cannot trap the walk); hidden
    files and folders are skipped; a broken link is reported with a warning.
    """
    seen: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(names):
            path = Path(folder) / name
            if name.startswith(".") or not is_nifti(path):
                continue
            if not path.exists():
                warnings.warn(f"{path} is a broken symbolic link (to {os.readlink(path)}); skipped",
                              HncWarning, stacklevel=3)
                continue
            yield path


def discover_studies(root: str | Path, *, recursive: bool = True) -> list[StudyFiles]:
    """All studies of the known layouts under ``root`` (a folder), sorted by case id.

    >>> from napari_hnc.sample import sample_study_path
    >>> [s.case_id for s in discover_studies(sample_study_path().parent)]
    ['STS_001']
    """
    root = Path(root)
    if root.is_file():
        found = _files_for_file(root)
        return [found] if found else []
    files = list(iter_nifti_files(root, recursive=recursive))
    if not recursive:
        for sub in IMAGE_FOLDERS:
            if (root / sub).is_dir():
                files += list(iter_nifti_files(root / sub, recursive=False))
    studies: dict[tuple[str, str, Path], StudyFiles] = {}
    for file in files:
        found = classify_file(file)
        if found is None or found[2] == "labels":
            continue
        layout, case_id, _ = found
        key = (layout, case_id, file.parent.resolve())
        if key not in studies:
            studies[key] = _siblings(layout, case_id, file.parent)
    return sorted(studies.values(), key=lambda s: (s.case_id, str(s.ct or s.pet)))


def find_study_files(path: str | Path) -> StudyFiles:
    """The study that a folder holds, or that a file belongs to.

    A file that follows no known layout is returned as a one-file generic
    study, its role guessed from its name (see :func:`guess_role_from_name`).
    """
    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path} does not exist; check the path")
    if path.is_file():
        found = _files_for_file(path)
        if found is not None:
            return found
        if is_dicomdir(path):
            return _dicomdir_study_files(path)
        if is_dicom_file(path):
            return _dicom_study_files(path.parent)
        role = guess_role_from_name(path) or "ct"
        return StudyFiles(_generic_case_id(path), "generic", **{role: path})
    studies = discover_studies(path, recursive=False)
    if not studies and is_dicom_path(path):
        return _dicom_study_files(path)
    if not studies:
        raise StudyError(
            f"no PET/CT study found in {path}. napari-hnc recognises HECKTOR 2022 "
            "(<id>__CT.nii.gz, <id>__PT.nii.gz, <id>.nii.gz), HECKTOR 2021 (<id>_ct.nii.gz, "
            "<id>_pt.nii.gz, <id>_gtvt.nii.gz) and autoPET (CTres.nii.gz, SUV.nii.gz, SEG.nii.gz); "
            "or DICOM folders; for other names pass the files explicitly: load_study(ct=..., pet=..., labels=...)"
        )
    if len(studies) > 1:
        names = ", ".join(s.case_id for s in studies[:5]) + (", ..." if len(studies) > 5 else "")
        raise StudyError(
            f"{path} holds {len(studies)} studies ({names}); open one file of the study you want, "
            "or process them all with `napari-hnc segment`"
        )
    return studies[0]


def _dicomdir_study_files(path: Path) -> StudyFiles:
    """A DICOMDIR stands for the export it indexes: the DICOM files of its folder."""
    if not is_dicom_path(path.parent):
        raise StudyError(
            f"{path} is a DICOMDIR (the index of a DICOM export), and no DICOM image files are beside it or in the "
            f"folders below {path.parent}; copy the whole export (all its folders), then open that folder"
        )
    return _dicom_study_files(path.parent)


def _dicom_study_files(path: Path) -> StudyFiles:
    from .io.dicom.reader import dicom_study_files

    return dicom_study_files(path)


_NAME_HINTS: tuple[tuple[Role, re.Pattern[str]], ...] = (
    ("labels", re.compile(r"(seg|label|mask|gtv|roi|annot|_pred$|_instances$)", re.I)),
    ("pet", re.compile(r"(^|[^a-z])(pet|pt|suv|fdg)([^a-z]|$)", re.I)),
    ("ct", re.compile(r"(^|[^a-z])(ct|ctres|hu)([^a-z]|$)", re.I)),
)


def guess_role_from_name(path: str | Path) -> Role | None:
    """Guess "ct", "pet" or "labels" from a file's name, then from its folders' names.

    >>> guess_role_from_name("STS_001/PET/nifti/image/image.nii.gz")
    'pet'
    >>> guess_role_from_name("STS_001/PET/nifti/mask/mask.nii.gz")
    'labels'
    """
    path = Path(path)
    for part in [strip_nifti_suffix(path.name)] + [p for p in reversed(path.parent.parts)]:
        for role, pattern in _NAME_HINTS:
            if pattern.search(part):
                return role
    return None


def guess_role_from_values(volume: Volume) -> Role:
    """Guess the role of an image from its values (integers 0..255 with few values: labels)."""
    array = volume.array
    lo, hi = float(np.min(array)), float(np.max(array))
    whole = np.issubdtype(array.dtype, np.integer) or np.array_equal(array[::4, ::4, ::4], np.round(array[::4, ::4, ::4]))
    if whole and lo >= 0 and hi <= 255 and np.unique(array[::2, ::2, ::2]).size <= 16:
        return "labels"
    return "ct" if lo < -200 else "pet"


def _generic_case_id(path: Path) -> str:
    stem = strip_nifti_suffix(path.name)
    generic = {"image", "images", "mask", "ct", "pet", "pt", "suv", "seg", "labels", "label", "nifti", "dicom"}
    for part in [stem] + list(reversed(path.parent.parts)):
        if part.lower() not in generic:
            return part
    return stem
