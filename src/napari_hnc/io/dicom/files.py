"""Cheap tests for DICOM files and folders (no pydicom import, a few bytes read per file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

#: Suffixes that are never DICOM; skipped without opening the file.
NOT_DICOM_SUFFIXES = (
    ".nii", ".gz", ".json", ".txt", ".md", ".csv", ".xml", ".png", ".jpg", ".jpeg", ".pdf",
    ".zip", ".py", ".yaml", ".yml", ".html", ".nrrd", ".mha", ".mhd", ".npy", ".npz", ".pt",
    ".safetensors", ".tsv", ".log",
)
DICOM_SUFFIXES = (".dcm", ".ima", ".dicom")


def has_dicom_magic(path: str | Path) -> bool:
    """True when the file carries the ``DICM`` marker after its 128-byte preamble."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom_file(path: str | Path) -> bool:
    """A ``.dcm``/``.ima`` file, or any file with the DICOM marker.

    >>> is_dicom_file("scan.nii.gz")
    False
    """
    path = Path(path)
    name = path.name.lower()
    if name == "dicomdir" or name.startswith(".") or name.endswith(NOT_DICOM_SUFFIXES):
        return False
    if name.endswith(DICOM_SUFFIXES):
        return path.is_file()
    return path.is_file() and has_dicom_magic(path)


def is_dicomdir(path: str | Path) -> bool:
    """A DICOMDIR file: the index of a DICOM export (CD, DVD), not an image.

    >>> is_dicomdir("export/DICOMDIR")
    False
    """
    path = Path(path)
    return path.name.lower() == "dicomdir" and path.is_file()


#: How deep :func:`is_dicom_path` looks below a folder (exports nest PATIENT/STUDY/SERIES/...).
QUICK_CHECK_DEPTH = 6


def iter_dicom_files(folder: str | Path, *, recursive: bool = True, max_depth: int | None = None) -> Iterator[Path]:
    """DICOM files under ``folder`` (sorted within each folder, hidden folders skipped)."""
    folder = Path(folder)
    base_depth = len(folder.parts)
    for root, dirs, names in os.walk(folder):
        too_deep = max_depth is not None and len(Path(root).parts) - base_depth >= max_depth
        dirs[:] = [] if too_deep else sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if is_dicom_file(path):
                yield path
        if not recursive:
            return


def is_dicom_path(path: str | Path) -> bool:
    """True for a DICOM file, or a folder with at least one DICOM file in it or below it."""
    path = Path(path)
    if path.is_file():
        return is_dicom_file(path)
    if path.is_dir():
        return next(iter_dicom_files(path, max_depth=QUICK_CHECK_DEPTH), None) is not None
    return False
