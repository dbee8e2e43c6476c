"""Writing output files safely: atomic writes, clear errors, no accidental overwrites.

Every file napari-hnc writes goes through :func:`atomic_write`: the content is
written to a hidden temporary file beside the target (``.<name>.<random>.tmp``)
and renamed over the target only when complete, so an existing file is never
half-overwritten. An operating-system error (read-only folder, full disk, a
parent that is a file) becomes an :class:`~napari_hnc.errors.OutputError` that
names the file and says what to do; the temporary file is removed, and a
failure to remove it never hides that message. Temporaries left behind by a
killed process are removed at the next write of the same file.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "a.txt", "hello").read_text()
'hello'
>>> try:
...     refuse_existing([folder / "a.txt"], overwrite=False)
... except OutputError as exc:
...     print(str(exc).split("; ")[1])
nothing was written. Pass --overwrite to replace it
"""

from __future__ import annotations

import errno
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable

from ..errors import OutputError, OutputExistsError

log = logging.getLogger(__name__)

#: A temporary file untouched for this long belongs to a write that was killed.
STALE_AFTER_S = 60.0
TMP_MARK = ".tmp"


def temporary_path(path: Path, suffix: str = "") -> Path:
    """A hidden temporary name beside ``path``: ``.<name>.<random>.tmp<suffix>``."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TMP_MARK}{suffix}")


def stale_temporaries(path: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Temporary files of earlier writes of ``path`` that nobody has touched for ``older_than_s``."""
    try:
        candidates = list(path.parent.glob(f".{_glob_escape(path.name)}.*{TMP_MARK}*"))
    except OSError:
        return []
    now = time.time()
    out = []
    for tmp in candidates:
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime > older_than_s:
                out.append(tmp)
        except OSError:
            continue
    return out


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it exists; a failure is logged, never raised (it must not hide another error)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove the temporary file %s (%s)", path, exc)


def ensure_folder(folder: str | Path) -> Path:
    """Create ``folder`` (and its parents) if needed; :class:`OutputError` when that is impossible."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    blocker = _file_in_the_way(folder / "-")
    if blocker is not None:
        raise _blocked(folder, blocker, "create the folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(folder, exc, what="create the folder") from None
    return folder


def check_writable(folder: str | Path) -> Path:
    """Create ``folder`` if needed and check that a file can be written there (a cheap probe).

    Long jobs (a cohort) call it first, so that a read-only or misnamed output
    folder is reported at once, not after hours of work.
    """
    folder = ensure_folder(folder)
    probe = temporary_path(folder / "napari-hnc-write-check")
    try:
        probe.write_bytes(b"")
    except OSError as exc:
        raise output_error(folder, exc, what="write files in", folder=folder) from None
    finally:
        remove_quietly(probe)
    return folder


def atomic_write(path: str | Path, write: Callable[[Path], object], *, suffix: str = "") -> Path:
    """Write a file atomically: ``write(tmp)`` fills a temporary file, which then replaces ``path``.

    Parameters
    ----------
    path : str or Path
        The file to write; its folder is created if needed.
    write : callable
        Called with the temporary path; writes the whole content there.
    suffix : str
        Ending of the temporary name, for writers that choose the format by it
        (``".nii.gz"``, ``".png"``).

    Raises
    ------
    OutputError
        The file could not be written (the message says why and what to do);
        an existing file at ``path`` is unchanged.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder. Give a file name (e.g. {path / 'out'}{suffix})")
    ensure_folder(path.parent)
    for stale in stale_temporaries(path):
        log.info("removing %s, left by an interrupted write", stale)
        remove_quietly(stale)
    tmp = temporary_path(path, suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        raise output_error(path, exc) from None
    except BaseException:
        remove_quietly(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


_REASONS = {
    errno.EACCES: "permission denied: {folder} is not writable by you",
    errno.EPERM: "permission denied: {folder} is not writable by you",
    errno.EROFS: "{folder} is on a read-only file system",
    errno.ENOSPC: "the disk holding {folder} is full",
    errno.EDQUOT: "your disk quota for {folder} is used up",
    errno.EISDIR: "{path} is a folder",
    errno.ENAMETOOLONG: "the file name is too long",
}
_FIXES = {
    errno.ENOSPC: "Free some disk space, or write to another folder",
    errno.EDQUOT: "Free some disk space, or write to another folder",
    errno.EISDIR: "Give a file name, not a folder",
}


def output_error(path: str | Path, exc: OSError, *, what: str = "write", folder: Path | None = None) -> OutputError:
    """An :class:`OutputError` for ``exc`` raised while writing ``path``, naming the cause and the fix.

    >>> print(output_error("/data/out/q.csv", OSError(errno.ENOSPC, "No space left on device")))
    could not write /data/out/q.csv (the disk holding /data/out is full); any existing file there is unchanged. \
Free some disk space, or write to another folder, or choose another output path
    """
    path = Path(path)
    blocker = _file_in_the_way(path)
    if blocker is not None:
        return _blocked(path, blocker, what)
    code = getattr(exc, "errno", None)
    reason = _REASONS.get(code, f"{type(exc).__name__}: {exc.strerror or exc}")  # type: ignore[arg-type]
    reason = reason.format(folder=folder if folder is not None else path.parent, path=path)
    fix = _FIXES.get(code, "Check that the folder exists and is writable and that the disk is not full")  # type: ignore[arg-type]
    unchanged = "; any existing file there is unchanged" if what == "write" else ""
    return OutputError(f"could not {what} {path} ({reason}){unchanged}. {fix}, or choose another output path")


def _blocked(path: Path, blocker: Path, what: str) -> OutputError:
    return OutputError(
        f"could not {what} {path}: {blocker} is a file, not a folder; nothing was written. "
        "Choose another output path, or move that file away"
    )


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` that exists and is not a folder, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
        if parent.is_symlink():  # a dangling link where a folder should be
            return parent
    return None


def swap_in_folder(stage: str | Path, out: str | Path) -> Path:
    """Rename the complete folder ``stage`` to ``out`` (beside it, on the same file system).

    An older ``out`` is renamed aside first and removed only after the new one is in place, so
    ``out`` is at every moment either the old folder or the new one, never a mixture.
    """
    import shutil

    stage, out = Path(stage), Path(out)
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    try:
        os.replace(stage, out)
    except OSError as exc:
        if old is not None:
            os.replace(old, out)
        raise output_error(out, exc, what="create the folder") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def refuse_existing(paths: Iterable[str | Path], overwrite: bool, option: str = "--overwrite") -> None:
    """Raise :class:`~napari_hnc.errors.OutputExistsError` when any of ``paths`` exists and ``overwrite`` is False.

    Commands call this before any work, so nothing is computed for nothing and
    no file a user made (reference labels, edited tables) is ever replaced
    without being asked.
    """
    if overwrite:
        return
    taken = [str(p) for p in paths if Path(p).exists()]
    if taken:
        several = len(taken) > 1
        raise OutputExistsError(
            f"{', '.join(taken[:5])}{' and more' if len(taken) > 5 else ''} already exist{'' if several else 's'}; "
            f"nothing was written. Pass {option} to replace {'them' if several else 'it'}"
        )
