"""The Improve dock: fine-tune a model on the cases saved so far, on the torch worker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label, ProgressBar, PushButton, SpinBox
from napari.utils.notifications import show_info

from ..controller import controller_for
from ..worker import Job

if TYPE_CHECKING:  # pragma: no cover
    import napari

NO_MODEL = "(no model installed)"
KIND = "finetune"


def installed_models() -> list[str]:
    """Every installed model (automatic and click-guided), user versions first."""
    from ...models.registry import available_models

    names = list(dict.fromkeys(e.name for e in available_models()))
    return names or [NO_MODEL]


def saved_summary() -> str:
    from ...training.saved_cases import saved_cases_dir, saved_counts

    counts = saved_counts(saved_cases_dir())
    return (f"{counts['cases']} case(s) saved, {counts['corrected_from_proposal']} corrected from a proposal"
            if counts["cases"] else "No case saved yet: save corrected labels in the Study dock")


class ImproveWidget(Container):
    """Fine-tune the chosen model on the saved cases; the new version is added, the old one kept."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer") -> None:
        super().__init__(labels=True)
        self.controller = controller_for(napari_viewer)
        self.worker = self.controller.refiner.worker
        self.model = ComboBox(label="Model", choices=installed_models())
        self.cases = Label(value=saved_summary())
        self.epochs = SpinBox(label="Epochs", min=1, max=100, value=4)
        self.steps = SpinBox(label="Steps per epoch", min=1, max=10000, value=100)
        self.improve_button = PushButton(text="Improve the model")
        self.cancel_button = PushButton(text="Cancel")
        self.progress = ProgressBar(label="Progress", min=0, max=1, value=0)
        self.status = Label(value="")
        self.extend([self.model, self.cases, self.epochs, self.steps, self.improve_button, self.cancel_button,
                     self.progress, self.status])
        self.job: Job | None = None
        self.improve_button.changed.connect(self.improve)
        self.cancel_button.changed.connect(self.cancel)
        self.worker.returned.connect(self._returned)
        self.worker.errored.connect(self._errored)
        self.worker.progressed.connect(self._progressed)
        self.controller.model_listeners.append(self.refresh)
        self.native.destroyed.connect(self._detach)

    def improve(self) -> Job | None:
        """Queue the fine-tune on the torch worker (returns the job)."""
        from ...training.improve import improve_model

        if self.job is not None or self.model.value == NO_MODEL:
            return None
        parent, epochs, steps = self.model.value, int(self.epochs.value), int(self.steps.value)
        self.job = self.worker.submit(Job(KIND, lambda progress, cancel: improve_model(
            parent, epochs=epochs, steps_per_epoch=steps, progress=progress, cancel=cancel)))
        self.improve_button.enabled = False
        self.status.value = f"Improving {parent} on the saved cases..."
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel.cancel()
            self.status.value = "Cancelling (at the next step)..."

    def refresh(self) -> None:
        """Re-read the installed models and the saved cases."""
        current = self.model.value
        self.model.choices = installed_models()
        if current in self.model.choices:
            self.model.value = current
        self.cases.value = saved_summary()

    def _mine(self, job: Job) -> bool:
        return self.job is not None and job is self.job

    def _progressed(self, job: Job, done: int, total: int, description: str) -> None:
        if self._mine(job):
            self.progress.max = max(total, 1)
            self.progress.value = min(done, self.progress.max)
            self.progress.label = description or "Progress"

    def _returned(self, job: Job, card_path: Any) -> None:
        if not self._mine(job):
            return
        self._finish(f"New version {Path(card_path).stem}; the previous one stays available")
        show_info(f"napari-hnc: the improved model {Path(card_path).stem} is installed ({card_path})")
        self.controller.models_changed()

    def _errored(self, job: Job, exc: BaseException) -> None:
        if self._mine(job):  # the notification comes from the worker's own error handler (Refiner)
            self._finish(f"Not improved: {exc}")

    def _finish(self, text: str) -> None:
        self.job = None
        self.improve_button.enabled = True
        self.progress.value = 0
        self.status.value = text

    def _detach(self, *_args) -> None:
        try:
            for signal, slot in ((self.worker.returned, self._returned), (self.worker.errored, self._errored),
                                 (self.worker.progressed, self._progressed)):
                signal.disconnect(slot)
        except (TypeError, RuntimeError):
            pass
        if self.refresh in self.controller.model_listeners:
            self.controller.model_listeners.remove(self.refresh)
