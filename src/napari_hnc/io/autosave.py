"""Autosaved annotations: where they go, when they are due, and whether one should be offered back.

An autosave of case ``C`` is ``<user data>/napari-hnc/autosave/C/C_labels.nii`` (uncompressed) with its
instance map and provenance sidecars (:mod:`napari_hnc.io.sidecars`), written atomically by
:func:`napari_hnc.io.nifti.save_labels`. The user data folder is platformdirs' (on Linux
``$XDG_DATA_HOME``, by default ``~/.local/share``). No Qt here: the GUI owns the timer.

Examples
--------
>>> import os
>>> os.environ["NAPARI_HNC_AUTOSAVE_S"] = "15"
>>> autosave_interval_s()
15.0
>>> del os.environ["NAPARI_HNC_AUTOSAVE_S"]
>>> autosave_interval_s()
60.0
>>> safe_case_name("HN/01 a")
'HN_01_a'
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from ..geometry import Volume

log = logging.getLogger(__name__)

#: Environment variable with the autosave interval in seconds (0 turns autosave off).
AUTOSAVE_ENV = "NAPARI_HNC_AUTOSAVE_S"
DEFAULT_INTERVAL_S = 60.0


def autosave_interval_s() -> float:
    """Seconds between autosaves (``NAPARI_HNC_AUTOSAVE_S``, default 60; 0 or less: no autosave)."""
    text = os.environ.get(AUTOSAVE_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        return float(text)
    except ValueError:
        log.warning("%s=%r is not a number of seconds; autosaving every %.0f s", AUTOSAVE_ENV, text,
                    DEFAULT_INTERVAL_S)
        return DEFAULT_INTERVAL_S


def autosave_root() -> Path:
    """``<user data folder>/napari-hnc/autosave`` (honours ``XDG_DATA_HOME`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-hnc", appauthor=False)) / "autosave"


def safe_case_name(case_id: str) -> str:
    """A case id usable as one folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(case_id).strip()).strip("._") or "study"


def autosave_path(case_id: str) -> Path:
    """The autosaved labels file of a case (it may not exist)."""
    name = safe_case_name(case_id)
    # uncompressed: gzip-compressing a CT-sized grid holds the GIL for seconds (the window would freeze)
    return autosave_root() / name / f"{name}_labels.nii"


def write_autosave(labels: Volume, like: Volume, case_id: str) -> Path:
    """Write ``labels`` (with their instances and provenance metadata) as the case's autosave, atomically."""
    from .nifti import save_labels

    path = autosave_path(case_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_labels(labels, like, path)


def find_autosave(case_id: str, saved: str | Path | None = None) -> Path | None:
    """The case's autosave when it is newer than the labels saved at ``saved`` (or there are none)."""
    path = autosave_path(case_id)
    if not path.is_file():
        return None
    if saved is not None and Path(saved).is_file() and Path(saved).stat().st_mtime >= path.stat().st_mtime:
        return None
    return path


def read_autosave(path: str | Path, grid: Volume) -> Volume | None:
    """The autosaved labels on ``grid`` with their sidecars, or None when they do not fit the grid."""
    from ..study import load_volume
    from .sidecars import read_sidecars

    volume = load_volume(Path(path), "labels")
    if not volume.same_grid(grid):
        log.warning("the autosave %s is not on this study's grid; it is not offered", path)
        return None
    volume.metadata.update(read_sidecars(path, volume))
    return volume


def discard_autosave(case_id: str) -> None:
    """Remove a case's autosave (after the labels were saved by the user, or the restore declined)."""
    from .sidecars import sidecar_paths

    path = autosave_path(case_id)
    for file in (path, *sidecar_paths(path)):
        try:
            file.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove the old autosave %s: %s", file, exc)
