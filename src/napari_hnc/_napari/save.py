"""File > Save labels (napari-hnc)…: the labels as NIfTI with the lesion table and fused picture beside them.

napari's own File > Save offers every writer and starts on the first (its TIFF one), so a name like
``x.nii.gz`` under that filter fails; this menu entry asks for a NIfTI file only and proposes
``<case>_labels.nii.gz`` beside the study.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info

from ..errors import HncError
from .controller import controller_for

if TYPE_CHECKING:  # pragma: no cover
    import napari

NIFTI_FILTER = "NIfTI labels (*.nii.gz *.nii)"


def ask_save_path(default: Path) -> str:
    """Ask where to save (a file dialog for NIfTI files); '' when cancelled. Tests replace it."""
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(None, "Save labels (napari-hnc)", str(default), NIFTI_FILTER)
    return path


def nifti_name(path: str | Path) -> Path:
    """``path`` with ``.nii.gz`` added unless it already ends in ``.nii.gz`` or ``.nii``."""
    path = Path(path)
    return path if path.name.endswith((".nii.gz", ".nii")) else path.with_name(path.name + ".nii.gz")


def save_labels_dialog(viewer: "napari.viewer.Viewer") -> Path | None:
    """Ask for a NIfTI file and save the study's labels there, with their table and picture beside them."""
    controller = controller_for(viewer)
    default = controller.default_save_path() or Path.home() / controller.default_labels_name()
    chosen = ask_save_path(default)
    if not chosen:
        return None
    return save_with_report(controller, nifti_name(chosen))


def save_with_report(controller, path: str | Path) -> Path | None:
    """Save the study's labels to ``path`` and, in a worker, their table and picture beside them, and
    keep the case for "Improve the model" (unless ``controller.keep_saved_cases`` is off).

    The written path, or None after telling the user why nothing was saved.
    """
    try:
        written = controller.save_labels(Path(path))
    except (HncError, OSError) as exc:
        show_error(f"The labels were not saved: {exc}")
        return None
    show_info(f"Labels saved to {written}")
    controller.write_report(written)  # the lesion table and the fused picture, beside them
    if controller.keep_saved_cases:
        controller.keep_case()
    return written

