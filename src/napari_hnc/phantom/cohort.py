"""Write phantom cases in the HECKTOR 2022 layout, with one lesion JSON per case.

Layout under ``out``::

    imagesTr/PHANTOM-0007__CT.nii.gz   CT, int16 HU, LPS grid of the preset
    imagesTr/PHANTOM-0007__PT.nii.gz   PET, float32 SUV, its own LPS grid and origin
    labelsTr/PHANTOM-0007.nii.gz       labels on the CT grid: 1 primary, 2 node
    labelsTr/PHANTOM-0007_instances.nii.gz  lesion instance ids (lesion k of the JSON is id k)
    labelsTr/PHANTOM-0007_provenance.json   the instances' record
    lesions/PHANTOM-0007.json          lesions, hot structures, landmarks (world RAS mm)

Case ``k`` of a cohort with seed ``S`` is ``generate_case(S + k, hard_cases=H)``
(``H`` is :data:`~.case.COHORT_HARD_CASES` by default): it can be made alone, and a
held-out range of seeds never overlaps a training range. ``hard_cases=0`` gives
the cohorts of generator version 1, on which the bundled models were trained.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import HncError
from ..io.atomic import atomic_write_text
from ..io.nifti import save_labels, write_nifti
from ..progress import CancelToken, ProgressFn, check, no_progress
from .case import COHORT_HARD_CASES, GENERATOR_VERSION, PhantomCase, case_id, generate_case
from .presets import PhantomPreset, get_preset

log = logging.getLogger(__name__)

LESION_FOLDER = "lesions"


def case_paths(out: str | Path, cid: str) -> dict[str, Path]:
    """Where the files of case ``cid`` go under ``out``."""
    out = Path(out)
    return {
        "ct": out / "imagesTr" / f"{cid}__CT.nii.gz",
        "pet": out / "imagesTr" / f"{cid}__PT.nii.gz",
        "labels": out / "labelsTr" / f"{cid}.nii.gz",
        "instances": out / "labelsTr" / f"{cid}_instances.nii.gz",
        "provenance": out / "labelsTr" / f"{cid}_provenance.json",
        "lesions": out / LESION_FOLDER / f"{cid}.json",
    }


def write_case(case: PhantomCase, out: str | Path) -> dict[str, Path]:
    """Write one case (CT, PET, labels, lesion JSON) under ``out``; every file is written atomically.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as out:
    ...     paths = write_case(generate_case(3, "small"), out)
    ...     print(paths["ct"].relative_to(out).as_posix())
    imagesTr/PHANTOM-0003__CT.nii.gz
    """
    paths = case_paths(out, case.case_id)
    study = case.study
    write_nifti(study.ct, paths["ct"], dtype=np.int16, descrip=f"napari-hnc phantom {case.case_id} CT (HU)")
    write_nifti(study.pet, paths["pet"], dtype=np.float32, descrip=f"napari-hnc phantom {case.case_id} PET (SUVbw)")
    save_labels(study.labels, study.ct, paths["labels"])
    record = case.to_json()
    record["files"] = {k: p.relative_to(Path(out)).as_posix() for k, p in paths.items() if k in ("ct", "pet", "labels", "instances")}
    write_json(record, paths["lesions"])
    return paths


def write_json(record: dict[str, Any], path: Path) -> Path:
    """Write JSON with sorted keys (same content, same bytes), atomically."""
    return atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def write_cohort(out: str | Path, n: int, seed: int = 0, preset: str | PhantomPreset = "default", *,
                 misregistration: bool = True, hard_cases: float | str = COHORT_HARD_CASES,
                 progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                 scanner: str = "default", delineation: str = "extent") -> list[dict[str, Path]]:
    """Generate and write cases ``seed .. seed + n - 1`` under ``out``.

    Parameters
    ----------
    out : str or Path
        Output folder (created); existing files of the same cases are replaced.
    n : int
        Number of cases.
    seed : int
        Seed of the first case; case ``k`` is ``generate_case(seed + k)`` (id ``PHANTOM-<seed+k>``).
    preset : {"default", "small"}
    misregistration : bool
        Allow the random PET/CT offset (up to 3 mm, half of the cases).
    hard_cases : float or str
        Share of hard cases (touching nodes, a node on the primary, a large
        necrotic nodal mass; default 0.3), or a kind forced on every case
        (``"touching"``...); 0 gives the cohorts of generator version 1.
    scanner : {"default", "target"}
        The acquisition ranges (:class:`~napari_hnc.phantom.case.Scanner`): another site's PET/CT.
    delineation : {"extent", "pet41"}
        How the site's labels delineate a lesion (:func:`~napari_hnc.phantom.case.generate_case`).
    progress, cancel
        Progress callback ``(done, total, description)`` and cancel token.

    Returns
    -------
    list of dict
        The paths of each case's files (``ct``, ``pet``, ``labels``, ``lesions``).

    Examples
    --------
    >>> import tempfile, napari_hnc
    >>> with tempfile.TemporaryDirectory() as out:
    ...     written = napari_hnc.write_phantom_cohort(out, n=2, seed=40, preset="small")
    ...     [s.case_id for s in napari_hnc.discover_studies(out)]
    ['PHANTOM-0040', 'PHANTOM-0041']
    """
    if int(n) < 0 or int(seed) < 0:
        raise HncError(f"need n >= 0 cases and a seed >= 0 (got n={n}, seed={seed})")
    preset = get_preset(preset)
    progress = progress or no_progress
    written = []
    for k in range(int(n)):
        check(cancel)
        progress(k, int(n), case_id(seed + k))
        case = generate_case(int(seed) + k, preset, misregistration=misregistration, hard_cases=hard_cases,
                             scanner=scanner, delineation=delineation)
        written.append(write_case(case, out))
    progress(int(n), int(n), "done")
    log.info("wrote %d phantom cases (%s) to %s", n, preset.name, out)
    return written


def read_lesion_files(out: str | Path) -> list[dict[str, Any]]:
    """The lesion JSON records of a phantom folder, by case id."""
    folder = Path(out) / LESION_FOLDER
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise HncError(f"no phantom lesion files in {folder}; generate a cohort first (napari-hnc phantom --out {out})")
    return [json.loads(f.read_text(encoding="utf-8")) for f in files]


def sample_path(seed: int, preset: str = "default") -> Path:
    """CT path of a phantom case kept in the user cache folder (generated on first use)."""
    import platformdirs

    root = Path(platformdirs.user_cache_dir("napari-hnc")) / f"phantom-v{GENERATOR_VERSION}-{preset}-{int(seed)}"
    ct = case_paths(root, case_id(seed))["ct"]
    if ct.is_file():
        return ct
    shutil.rmtree(root, ignore_errors=True)  # an incomplete cached case (only generated files live here)
    tmp = root.with_name(f".{root.name}.{uuid.uuid4().hex[:8]}")
    write_case(generate_case(seed, preset), tmp)
    try:
        os.replace(tmp, root)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return ct
