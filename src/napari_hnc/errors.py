"""Error and warning types whose messages say what went wrong and what to do.

Every error raised on purpose by napari-hnc derives from :class:`HncError`, so a
caller (the CLI, the napari layer) can tell a user mistake from a bug. Messages
name the file or value at fault and end with the fix.
"""

from __future__ import annotations

from pathlib import Path


class HncError(Exception):
    """Base class of the errors napari-hnc raises on purpose."""


class ImageFileError(HncError):
    """A file cannot be used as an image: unreadable, wrong dimensionality, ..."""

    def __init__(self, path: str | Path | None, problem: str, fix: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        self.fix = fix
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}. {fix}")


class StudyError(HncError):
    """The files given do not make a usable PET/CT study."""


class GeometryError(HncError):
    """Grids, affines or coordinates that do not fit together."""


class UnitsError(HncError):
    """Image values in units napari-hnc cannot use (for example a PET not in SUV)."""


class OutputError(HncError):
    """An output file that cannot be written: read-only folder, full disk, a file where a folder should be,
    or an existing file that would be replaced without ``--overwrite``."""


class OutputExistsError(OutputError):
    """An output file exists and would be replaced; nothing was written (pass ``overwrite``)."""


class ClickError(HncError, ValueError):
    """A click (seed point) that cannot be used, for example outside the volume."""


class ModelError(HncError):
    """A model, model card or weight file that cannot be used."""


class Cancelled(HncError):
    """Raised inside a long-running function when its cancel token was set."""


class HncWarning(UserWarning):
    """Something was fixed up or looks suspicious; the work went on."""
