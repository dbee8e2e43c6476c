"""The cases a user saved through the plugin, kept as a training set for fine-tuning.

Every save of the labels in the napari plugin also records the study here, in the
HECKTOR 2022 layout, so that ``napari-hnc finetune`` and the GUI's "Improve the model"
read it as any dataset::

    <user data>/napari-hnc/saved-cases/        platformdirs (honours XDG_DATA_HOME)
        imagesTr/<case>__CT.nii.gz, <case>__PT.nii.gz    written once per case
        labelsTr/<case>.nii.gz (+ _instances, _provenance.json)   the latest save
        cases.json                                        the record of the saves

``cases.json`` says, per case, when it was saved, how many lesions it has and
whether it was corrected from a model's proposal (a lesion the automatic model
proposed, or any lesion refined by clicks or brush edits) or drawn from nothing.

>>> summarise({"A": {"from_proposal": True}, "B": {"from_proposal": False}})
{'cases': 2, 'corrected_from_proposal': 1, 'drawn': 1}
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from ..errors import HncError
from ..io.atomic import atomic_write_text

log = logging.getLogger(__name__)

INDEX = "cases.json"
ENV_VAR = "NAPARI_HNC_SAVED_CASES"


def saved_cases_dir() -> Path:
    """``$NAPARI_HNC_SAVED_CASES``, or ``<platformdirs user data>/napari-hnc/saved-cases``."""
    import os

    import platformdirs

    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("napari-hnc")) / "saved-cases"


def read_index(folder: str | Path) -> dict[str, dict[str, Any]]:
    """The record of the saves in ``folder`` (empty when there is none)."""
    path = Path(folder) / INDEX
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        log.warning("ignoring the unreadable %s (%s)", path, exc)
        return {}


def summarise(index: dict[str, dict[str, Any]]) -> dict[str, int]:
    """How many cases, and how many of them were corrected from a proposal."""
    corrected = sum(bool(entry.get("from_proposal")) for entry in index.values())
    return {"cases": len(index), "corrected_from_proposal": corrected, "drawn": len(index) - corrected}


def saved_counts(folder: str | Path) -> dict[str, int]:
    """:func:`summarise` of the labels files in ``folder/labelsTr`` (cases without a record count as drawn)."""
    from ..io.sidecars import is_sidecar

    labels = [p for p in (Path(folder) / "labelsTr").glob("*.nii.gz") if not is_sidecar(p)]
    index = read_index(folder)
    return summarise({p.name[: -len(".nii.gz")]: index.get(p.name[: -len(".nii.gz")], {}) for p in labels})


def from_proposal(provenance: dict[str, Any] | None) -> bool:
    """Whether any lesion came from a model: proposed automatically, or made or refined by clicks.

    >>> from_proposal({"lesions": [{"origin": "automatic", "edited": True}]}), from_proposal({"lesions": [{"origin": "edit"}]})
    (True, False)
    """
    lesions = (provenance or {}).get("lesions") or []
    return any(entry.get("origin") in ("automatic", "click") for entry in lesions)


def record_case(study, labels, folder: str | Path | None = None) -> Path:
    """Add (or update) ``study`` with ``labels`` (a Volume on its label grid) in the saved cases.

    Returns the labels file written. The CT and PET are written the first time a case is saved.
    """
    from ..io.nifti import save_labels, write_nifti

    folder = Path(folder) if folder is not None else saved_cases_dir()
    case = study.case_id
    if not case or "/" in case or case.startswith("."):
        raise HncError(f"cannot keep the case {case!r} for training: it needs a plain case id")
    images = folder / "imagesTr"
    for role, suffix in (("ct", "__CT"), ("pet", "__PT")):
        volume, path = getattr(study, role), images / f"{case}{suffix}.nii.gz"
        if volume is None:
            raise HncError(f"case {case} has no {role.upper()}; only studies with CT and PET can train a model")
        if not path.is_file():
            write_nifti(volume, path)
    written = save_labels(labels, study.grid, folder / "labelsTr" / f"{case}.nii.gz")
    index = read_index(folder)
    provenance = labels.metadata.get("provenance") if hasattr(labels, "metadata") else None
    import numpy as np

    array = np.asarray(labels.array if hasattr(labels, "array") else labels)
    index[case] = {"saved": time.strftime("%Y-%m-%dT%H:%M:%S"), "from_proposal": from_proposal(provenance),
                   "lesions": len((provenance or {}).get("lesions") or []), "labelled_voxels": int(np.count_nonzero(array))}
    atomic_write_text(folder / INDEX, json.dumps(index, indent=2) + "\n")
    log.info("case %s kept for training in %s", case, folder)
    return written
