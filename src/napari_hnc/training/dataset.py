"""The dataset index of a training run: which studies, and which fold validates.

Studies are found with :func:`napari_hnc.discover_studies` in one of the
dataset layouts (``hecktor2022``, ``hecktor2021``, ``autopet``); each needs CT,
PET and labels. Folds are split by *group*, so that no patient is in both the
training and the validation part: the case for HECKTOR, the patient (the folder
above the study folder) for autoPET, which has several studies per patient.

>>> [sorted(fold) for fold in split_folds(["a", "b", "c", "d", "e", "f"], folds=3, seed=0)]
[['d', 'e'], ['a', 'c'], ['b', 'f']]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import StudyError
from ..study import StudyFiles, discover_studies

log = logging.getLogger(__name__)

LAYOUTS = ("hecktor2022", "hecktor2021", "autopet")


@dataclass(frozen=True)
class Case:
    """One study of the index: its files and the group its fold is decided by."""

    case_id: str
    files: StudyFiles
    group: str


def group_of(files: StudyFiles) -> str:
    """The unit that folds keep together: the patient for autoPET, the case otherwise."""
    if files.layout == "autopet" and files.ct is not None:
        return files.ct.parent.parent.name
    return files.case_id


def index_dataset(root: str | Path, layout: str) -> list[Case]:
    """All studies of ``layout`` under ``root`` that have CT, PET and labels, sorted by case id.

    Raises
    ------
    StudyError
        The folder does not exist, or holds no complete study of that layout.
    """
    if layout not in LAYOUTS:
        raise StudyError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    root = Path(root)
    if not root.is_dir():
        raise StudyError(f"the training data folder {root} does not exist; check the path")
    found = [s for s in discover_studies(root) if s.layout == layout]
    complete = [s for s in found if s.ct is not None and s.pet is not None and s.labels is not None]
    if len(complete) < len(found):
        skipped = sorted(s.case_id for s in found if s not in complete)
        log.warning("%d %s studies lack CT, PET or labels and are left out: %s", len(skipped), layout, skipped[:10])
    if not complete:
        raise StudyError(
            f"no {layout} study with CT, PET and labels under {root}; check --layout (the file names: "
            "hecktor2022 <id>__CT/__PT.nii.gz + labelsTr/<id>.nii.gz, hecktor2021 <id>_ct/_pt/_gtvt.nii.gz, "
            "autopet CTres/SUV/SEG.nii.gz)"
        )
    ids = [s.case_id for s in complete]
    if len(set(ids)) != len(ids):
        raise StudyError(f"case ids repeat under {root}; every study needs its own id")
    return [Case(s.case_id, s, group_of(s)) for s in complete]


def detect_layout(root: str | Path) -> str:
    """The dataset layout of most complete studies under ``root`` (for commands where ``--layout`` is optional).

    Raises
    ------
    StudyError
        No complete study of any layout is there.
    """
    root = Path(root)
    if not root.is_dir():
        raise StudyError(f"the training data folder {root} does not exist; check the path")
    counts: dict[str, int] = {}
    for s in discover_studies(root):
        if s.layout in LAYOUTS and s.ct is not None and s.pet is not None and s.labels is not None:
            counts[s.layout] = counts.get(s.layout, 0) + 1
    if not counts:
        raise StudyError(f"no study with CT, PET and labels under {root} in a known layout ({', '.join(LAYOUTS)}); "
                         "pass --layout, or save labels through the napari-hnc plugin first")
    return max(sorted(counts), key=counts.get)  # type: ignore[arg-type]


def split_folds(groups: Sequence[str], folds: int, seed: int = 0) -> list[list[str]]:
    """The distinct ``groups`` shuffled with ``seed`` and dealt into ``folds`` lists."""
    unique = sorted(set(groups))
    if folds < 2 or folds > len(unique):
        raise StudyError(f"cannot split {len(unique)} patient(s) into {folds} folds; use 2..{len(unique)} folds")
    order = np.random.default_rng(seed).permutation(len(unique))
    return [[unique[i] for i in order[k::folds]] for k in range(folds)]


def train_val_split(cases: Sequence[Case], folds: int, fold: int, seed: int = 0) -> tuple[list[Case], list[Case]]:
    """Training and validation cases of fold ``fold`` (0-based) of ``folds``.

    >>> from napari_hnc.study import StudyFiles
    >>> cases = [Case(f"c{i}", StudyFiles(f"c{i}", "hecktor2022"), f"c{i}") for i in range(10)]
    >>> train, val = train_val_split(cases, folds=5, fold=1)
    >>> len(train), len(val), set(c.case_id for c in train) & set(c.case_id for c in val)
    (8, 2, set())
    """
    if not 0 <= fold < folds:
        raise StudyError(f"fold {fold} does not exist; use 0..{folds - 1}")
    held = set(split_folds([c.group for c in cases], folds, seed)[fold])
    return [c for c in cases if c.group not in held], [c for c in cases if c.group in held]
