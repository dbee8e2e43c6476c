"""The Study dock: open a study, adjust the fusion, save the labels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, FileEdit, FloatSlider, Label, PushButton
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info

from ...conventions import CT_WINDOWS, DEFAULT_CT_WINDOW
from ...errors import HncError
from ...study import Study, load_study
from ..controller import controller_for

if TYPE_CHECKING:  # pragma: no cover
    import napari


class StudyWidget(Container):
    """Open a PET/CT study, set the CT window and PET range, save labels."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer") -> None:
        super().__init__(labels=True)
        self.controller = controller_for(napari_viewer)
        self.path = FileEdit(label="Study", mode="r", filter="*.nii.gz *.nii")
        self.open_button = PushButton(text="Open study")
        self.info = Label(value=self.controller.summary())
        self.ct_window = ComboBox(label="CT window", choices=list(CT_WINDOWS), value=DEFAULT_CT_WINDOW)
        self.pet_max = FloatSlider(label="PET max (SUV)", min=1.0, max=40.0, step=0.5, value=10.0)
        self.pet_opacity = FloatSlider(label="PET opacity", min=0.0, max=1.0, step=0.05, value=1.0)
        self.save_path = FileEdit(label="Save labels to", mode="w", filter="*.nii.gz")
        self.save_button = PushButton(text="Save labels")
        self.extend([
            self.path, self.open_button, self.info, self.ct_window, self.pet_max,
            self.pet_opacity, self.save_path, self.save_button,
        ])
        self.open_button.changed.connect(self._open)
        self.ct_window.changed.connect(self.controller.set_ct_window)
        self.pet_max.changed.connect(lambda v: self.controller.set_pet_display(suv_max=v))
        self.pet_opacity.changed.connect(lambda v: self.controller.set_pet_display(opacity=v))
        self.save_button.changed.connect(self._save)

    def _open(self) -> None:
        """Read the files in a worker thread, then add the layers on the GUI thread."""
        self.open_button.enabled = False
        self._worker = create_worker(
            load_study,
            Path(self.path.value),
            _connect={"returned": self._show, "errored": self._failed, "finished": self._done},
        )

    def _show(self, study: Study) -> None:
        self.controller.open(study)
        self.info.value = self.controller.summary()
        self.save_path.value = Path(self.path.value).with_name(f"{study.case_id}_labels.nii.gz")

    def _done(self) -> None:
        self.open_button.enabled = True

    def _failed(self, exc: Exception) -> None:
        show_error(str(exc) if isinstance(exc, HncError) else f"Could not open the study: {exc!r}")

    def _not_kept(self, exc: Exception) -> None:
        show_error(f"The labels were saved, but the case could not be kept for improving the model: {exc}")

    def _save(self) -> None:
        try:
            written = self.controller.save_labels(Path(self.save_path.value))
        except HncError as exc:
            show_error(str(exc))
            return
        show_info(f"Labels saved to {written}")
        if self.controller.keep_saved_cases:  # for "Improve the model"; writing the CT/PET once takes seconds
            self._keeper = create_worker(self.controller.saved_case_job(),
                                         _connect={"errored": self._not_kept, "finished": self.controller.models_changed})
