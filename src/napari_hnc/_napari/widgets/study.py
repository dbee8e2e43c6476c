"""The Study dock: open a study, adjust the fusion, save the labels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, FileEdit, FloatSlider, Label, PushButton
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer

from ...conventions import CT_WINDOWS, DEFAULT_CT_WINDOW
from ...errors import HncError
from ...study import Study, load_study
from ..controller import controller_for
from ..keys import tip

if TYPE_CHECKING:  # pragma: no cover
    import napari

STUDY_FILES = "*.nii.gz *.nii *.dcm"


def choose_folder(parent=None) -> str:
    """Ask for a study or DICOM folder (a folder dialog); '' when cancelled. Tests replace it."""
    from qtpy.QtWidgets import QFileDialog

    return QFileDialog.getExistingDirectory(parent, "Open a study or DICOM folder")


def _unset(path) -> bool:
    """No path chosen: empty, or "." (which magicgui's file field turns into the working folder)."""
    if path is None or str(path).strip() in ("", "."):
        return True
    return Path(path) == Path.cwd()


class StudyWidget(Container):
    """Open a PET/CT study, set the CT window and PET range, save labels."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer") -> None:
        super().__init__(labels=True)
        self.controller = controller_for(napari_viewer)
        self.path = FileEdit(label="Study", mode="r", filter=STUDY_FILES,
                             tooltip="a file of the study (NIfTI or DICOM); the other files of the study are found beside it")
        self.folder_button = PushButton(text="Select folder (study or DICOM)",
                                        tooltip="choose a study folder or a DICOM folder instead of a file")
        self.open_button = PushButton(text="Open study", tooltip="read the study (the window stays responsive)")
        self.info = Label(value=self.controller.summary())
        self.info.native.setWordWrap(True)
        self.ct_window = ComboBox(label="CT window", choices=list(CT_WINDOWS), value=DEFAULT_CT_WINDOW,
                                  tooltip=tip("CT window preset", "ct_window"))
        self.pet_max = FloatSlider(label="PET max (SUV)", min=1.0, max=40.0, step=0.5, value=10.0,
                                   tooltip="SUV shown as white in the PET colour map")
        self.pet_opacity = FloatSlider(label="PET opacity", min=0.0, max=1.0, step=0.05, value=1.0,
                                       tooltip=tip("PET opacity (0 hides the PET)", "toggle_pet"))
        self.views_button = PushButton(text="Coronal and sagittal views",
                                       tooltip="show or hide the coronal and sagittal views beside the axial one (linked)")
        self.view_3d_button = PushButton(text="3D view",
                                         tooltip="lesions as surfaces over a PET maximum-intensity projection; press again for the slices")
        self.save_path = FileEdit(label="Save labels to", mode="w", filter="*.nii.gz",
                                  tooltip="a .nii.gz file; the lesion instances and the provenance go beside it")
        self.save_button = PushButton(text="Save labels",
                                      tooltip="save the labels on the CT grid (atomically), with the lesion table and a fused PET/CT picture beside them")
        self.extend([
            self.path, self.folder_button, self.open_button, self.info, self.ct_window, self.pet_max,
            self.pet_opacity, self.views_button, self.view_3d_button, self.save_path, self.save_button,
        ])
        self.views_button.changed.connect(self.controller.views.toggle)
        self.view_3d_button.changed.connect(self._toggle_3d)
        self.open_button.changed.connect(self._open)
        self.folder_button.changed.connect(self._choose_folder)
        self.ct_window.changed.connect(self.controller.set_ct_window)
        self.pet_max.changed.connect(lambda v: self.controller.set_pet_display(suv_max=v))
        self.pet_opacity.changed.connect(lambda v: self.controller.set_pet_display(opacity=v))
        self.save_button.changed.connect(self._save)
        self.controller.listeners.append(self._study_changed)
        self.native.destroyed.connect(self._detach)
        QTimer.singleShot(0, lambda: self.controller.attach_window(self.native))
        self._study_changed()

    def _detach(self, *_args) -> None:
        if self._study_changed in self.controller.listeners:
            self.controller.listeners.remove(self._study_changed)

    def _toggle_3d(self) -> None:
        from ..views import toggle_3d

        shown = toggle_3d(self.controller)
        self.view_3d_button.text = "Back to the slices" if shown else "3D view"

    def _choose_folder(self) -> None:
        folder = choose_folder(self.native)
        if folder:
            self.path.value = folder

    def _open(self) -> None:
        """Read the files in a worker thread, then add the layers on the GUI thread."""
        if _unset(self.path.value):
            show_error("Choose a study file or folder first (Select file, or Select folder).")
            return
        self.open_button.enabled = False
        self._worker = create_worker(
            load_study,
            Path(self.path.value),
            _connect={"returned": self._show, "errored": self._failed, "finished": self._done},
        )

    def _show(self, study: Study) -> None:
        self.controller.open(study)

    def _study_changed(self) -> None:
        """The open study changed (this dock, File > Open, another study): status and default save path."""
        try:
            self.info.value = self.controller.summary()
            shown = self.save_path.value
            if _unset(shown) or (self._default_path is not None and Path(shown) == self._default_path):
                default = self.controller.default_save_path()
                if default is not None:
                    self.save_path.value = self._default_path = default
        except RuntimeError:  # the dock's Qt widgets are gone
            self._detach()

    _default_path: Path | None = None  # the save path this dock proposed (replaced when the study changes)

    def _done(self) -> None:
        self.open_button.enabled = True

    def _failed(self, exc: Exception) -> None:
        show_error(str(exc) if isinstance(exc, HncError) else f"Could not open the study: {exc}")

    def _save(self) -> None:
        path = self.save_path.value
        if _unset(path):
            path = self.controller.default_save_path()
            if path is None:
                show_error("Choose where to save the labels (Save labels to).")
                return
        from ..save import save_with_report

        save_with_report(self.controller, path)  # also keeps the case for "Improve the model"
