"""npe2 reader: a study folder (NIfTI or DICOM), or any NIfTI / DICOM file, to CT / PET / labels layers."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..io.dicom.files import is_dicom_file, is_dicom_path
from ..io.nifti import is_nifti
from ..study import is_study_path, load_study, load_volume
from .layers import LayerDataTuple, study_layers, volume_layer


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerDataTuple]] | None:
    """Return :func:`read` for NIfTI and DICOM files and for folders holding them, else None."""
    paths = path if isinstance(path, list) else [path]
    if all(_readable(Path(p)) for p in paths):
        return read
    return None


def _readable(path: Path) -> bool:
    if path.is_dir():
        return (
            any(is_nifti(p) for p in path.iterdir())
            or any((path / sub).is_dir() for sub in ("imagesTr", "imagesTs"))
            or is_dicom_path(path)
        )
    return is_nifti(path) or is_dicom_file(path)


def read(path: str | list[str]) -> list[LayerDataTuple]:
    """Layers for each path.

    A study folder (NIfTI layouts or DICOM: CT, PET in SUV, RTSTRUCT/SEG masks),
    or a file named after a known layout, gives the whole study (CT, PET,
    labels); any other NIfTI file, or one DICOM file, gives one layer (the
    file's series), shown as CT, PET or labels according to its name and values.
    """
    paths = path if isinstance(path, list) else [path]
    layers: list[LayerDataTuple] = []
    for p in map(Path, paths):
        if is_study_path(p):
            layers += study_layers(load_study(p))
        else:
            volume = load_volume(p)
            layers.append(volume_layer(volume, volume.metadata["role"], case_id=volume.metadata["case_id"]))
    return layers
