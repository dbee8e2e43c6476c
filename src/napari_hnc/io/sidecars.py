"""The files saved beside a labels NIfTI: the lesion instance map and the provenance record.

For labels ``X.nii.gz`` they are ``X_instances.nii.gz`` (uint16 instance ids on
the labels' grid and header, so touching lesions survive a save and reload) and
``X_provenance.json`` (how each lesion was made: model, PET rule and its
parameters, clicks in world RAS mm, edits, class changes). No dataset layout
takes either for a study's labels.

Examples
--------
>>> sidecar_paths("labelsTr/CHUM-001.nii.gz")
(PosixPath('labelsTr/CHUM-001_instances.nii.gz'), PosixPath('labelsTr/CHUM-001_provenance.json'))
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HncError
from .atomic import atomic_write_text

log = logging.getLogger(__name__)

INSTANCES_SUFFIX = "_instances"
PROVENANCE_SUFFIX = "_provenance"
INSTANCES_DESCRIP = "napari-hnc lesion instances: 0 background, 1..n lesion ids"


def sidecar_paths(labels_path: str | Path) -> tuple[Path, Path]:
    """``(instance map, provenance JSON)`` beside a labels file."""
    from .nifti import strip_nifti_suffix

    path = Path(labels_path)
    stem = strip_nifti_suffix(path.name)
    suffix = path.name[len(stem):] or ".nii.gz"
    return path.with_name(f"{stem}{INSTANCES_SUFFIX}{suffix}"), path.with_name(f"{stem}{PROVENANCE_SUFFIX}.json")


def is_sidecar(path: str | Path) -> bool:
    """True for an instance map or provenance file written beside labels.

    >>> is_sidecar("labelsTr/CHUM-001_instances.nii.gz"), is_sidecar("labelsTr/CHUM-001.nii.gz")
    (True, False)
    """
    from .nifti import strip_nifti_suffix

    name = Path(path).name
    return strip_nifti_suffix(name).endswith(INSTANCES_SUFFIX) or name.endswith(f"{PROVENANCE_SUFFIX}.json")


def write_sidecars(labels_path: Path, like, instances: np.ndarray, provenance: dict[str, Any] | None) -> None:
    """Write the instance map (on ``like``'s grid and header) and the provenance beside ``labels_path``."""
    from .nifti import write_nifti

    inst_path, prov_path = sidecar_paths(labels_path)
    ids = np.asarray(instances)
    if ids.size and ids.max() > np.iinfo(np.uint16).max:
        raise HncError(f"{inst_path}: more than 65535 lesions cannot be saved")
    write_nifti(like.with_array(ids.astype(np.uint16, copy=False)), inst_path, dtype=np.uint16,
                descrip=INSTANCES_DESCRIP)
    document = {"labels": Path(labels_path).name, "instances": inst_path.name, "coordinates": "world RAS+ mm",
                **(provenance or {"lesions": []})}
    atomic_write_text(prov_path, json.dumps(_jsonable(document), indent=1) + "\n")


def read_sidecars(labels_path: str | Path, labels) -> dict[str, Any]:
    """``{"instances": uint16 array, "provenance": dict}`` found beside a labels file (each only when usable)."""
    from .nifti import read_nifti

    inst_path, prov_path = sidecar_paths(labels_path)
    found: dict[str, Any] = {}
    if inst_path.is_file():
        volume = read_nifti(inst_path, role="instances")
        if volume.same_grid(labels):
            found["instances"] = np.asarray(volume.array).astype(np.uint16)
        else:
            log.warning("%s is not on the grid of %s; lesion instances come from connected components",
                        inst_path.name, Path(labels_path).name)
    if prov_path.is_file():
        try:
            found["provenance"] = json.loads(prov_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("could not read %s (%s); the lesions' history is not known", prov_path, exc)
    return found


def has_sidecars(labels_path: str | Path) -> bool:
    return any(p.exists() for p in sidecar_paths(labels_path))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and np.ndim(value) == 0:
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
