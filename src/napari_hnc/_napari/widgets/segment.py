"""The Segment & refine dock: automatic proposal, click refinement, live refinement from edits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QTimer
from magicgui.widgets import CheckBox, ComboBox, Container, Label, ProgressBar, PushButton

from ...conventions import CLASS_NAMES, NODE, PRIMARY
from ...errors import HncError
from ..controller import controller_for
from ..keys import tip
from ..refine import CLICK_TOOLS

if TYPE_CHECKING:  # pragma: no cover
    import napari

NO_MODEL = "(no automatic model installed)"
#: Where automatic segmentation runs (shown -> napari_hnc.segment's region).
REGIONS = {"head and neck (found automatically)": "auto", "whole field": "whole"}


def _installed(task: str, alias: str, none: str) -> list[str]:
    """Names of the installed models of ``task``, the one with ``alias`` first (``[none]`` if there is none)."""
    from ...models.registry import available_models

    entries = [e for e in available_models() if e.card.task == task]
    entries.sort(key=lambda e: alias not in e.card.aliases)
    return [e.name for e in entries] or [none]


def automatic_models() -> list[str]:
    """Names of the installed automatic models, the default first."""
    return _installed("automatic", "default", NO_MODEL)


def click_models() -> list[str]:
    """Names of the installed click-guided models, the one with the ``click`` alias first ("click" if none)."""
    return _installed("click", "click", "click")


class SegmentWidget(Container):
    """Run the automatic model and refine lesions with clicks (left click: add, Shift+click: remove)."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer") -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.controller = controller_for(napari_viewer)
        self.refiner = self.controller.refiner
        self.model = ComboBox(label="Model", choices=automatic_models(),
                              tooltip="the automatic model (installed models; train your own with napari-hnc train)")
        self.region = ComboBox(label="Region", choices=list(REGIONS),
                               tooltip="where the automatic model looks for lesions")
        self.segment_button = PushButton(text="Segment automatically",
                                         tooltip="propose lesions; voxels you labelled yourself are kept")
        self.cancel_button = PushButton(text="Cancel", tooltip="stop the running segmentation")
        self.progress = ProgressBar(label="Progress", min=0, max=1, value=0)
        self.tool = ComboBox(label="Click tool", choices=list(CLICK_TOOLS), value=self.refiner.tool,
                             tooltip="what a click delineates with: a PET rule (edge, the default, measured best on real PET/CT) or the click-guided model")
        self.click_model = ComboBox(label="Click model", choices=click_models(),
                                    tooltip="the click-guided model the click-guided tool runs (installed models; "
                                            "improve one from your saved cases in the Improve dock)")
        self.refiner.set_click_model(self.click_model.value)
        self.label_class = ComboBox(label="Class", choices=[(CLASS_NAMES[c], c) for c in (PRIMARY, NODE)],
                                    tooltip=f"class of new lesions ({tip('primary tumour', 'primary')}, "
                                            f"{tip('lymph node', 'node')})")
        self.click_mode = CheckBox(text="Click to refine (Shift+click removes)", value=False,
                                   tooltip=tip("a left click delineates the lesion under it", "click_mode"))
        self.live = CheckBox(text="Re-run the model on my brush edits", value=self.refiner.live,
                             tooltip="after a brush or eraser stroke, refine that lesion again keeping your strokes")
        self.undo_button = PushButton(text="Undo", tooltip=tip("undo the last click, edit or proposal", "undo"))
        self.redo_button = PushButton(text="Redo", tooltip=tip("redo what undo took back", "redo"))
        self.accept_button = PushButton(text="Accept lesion", tooltip=tip("lock the lesion being refined", "accept"))
        self.reset_button = PushButton(text="Reset lesion", tooltip="remove the clicks and result of the lesion being refined")
        self.next_button = PushButton(text="Finish lesion",
                                      tooltip="the next click outside every lesion starts a new one")
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.extend([
            self.model, self.region, self.segment_button, self.cancel_button, self.progress, self.tool, self.click_model,
            self.label_class,
            self.click_mode, self.live, self.undo_button, self.redo_button, self.accept_button, self.reset_button, self.next_button,
            self.status,
        ])
        self.segment_button.changed.connect(self._segment)
        self.cancel_button.changed.connect(self.refiner.cancel)
        self.region.changed.connect(lambda v: setattr(self.refiner, "region", REGIONS[v]))
        self.tool.changed.connect(self.refiner.set_tool)
        self.click_model.changed.connect(self.refiner.set_click_model)
        self.label_class.changed.connect(lambda v: self.refiner.set_label_class(v) if v != self.refiner.label_class else None)
        self.live.changed.connect(lambda v: setattr(self.refiner, "live", bool(v)))
        self.click_mode.changed.connect(self._click_mode)
        self.undo_button.changed.connect(self.refiner.undo)
        self.redo_button.changed.connect(self.refiner.redo)
        self.accept_button.changed.connect(lambda: self.refiner.accept_lesion())
        self.reset_button.changed.connect(self.refiner.reset)
        self.next_button.changed.connect(self.refiner.next_lesion)
        self.refiner.listeners.append(self._show_status)
        self.controller.model_listeners.append(self._refresh_models)
        self.refiner.mode_listeners.append(self._mode_changed)
        self.refiner.worker.progressed.connect(self._progressed)
        self.refiner.worker.busy.connect(self._busy)
        self.native.destroyed.connect(self._detach)
        QTimer.singleShot(0, lambda: self.controller.attach_window(self.native))
        if self.controller.study is not None:
            self.refiner.preload(None if self.model.value == NO_MODEL else self.model.value)

    def _detach(self, *_args) -> None:
        """The dock was closed: the viewer's worker outlives it, so stop telling it anything."""
        try:
            worker = self.refiner.worker
            pairs = ((worker.progressed, self._progressed), (worker.busy, self._busy))
            for signal, slot in pairs:
                signal.disconnect(slot)
        except (TypeError, RuntimeError):  # already gone (the viewer closed first)
            pass
        if self._show_status in self.refiner.listeners:
            self.refiner.listeners.remove(self._show_status)
        if self._mode_changed in self.refiner.mode_listeners:
            self.refiner.mode_listeners.remove(self._mode_changed)
        if self._refresh_models in self.controller.model_listeners:
            self.controller.model_listeners.remove(self._refresh_models)

    def _refresh_models(self) -> None:
        """A model was added (Improve dock): offer it, keeping the current choice."""
        for combo, names in ((self.model, automatic_models), (self.click_model, click_models)):
            current = combo.value
            combo.choices = names()
            if current in combo.choices:
                combo.value = current

    def _segment(self) -> None:
        if self.model.value == NO_MODEL:
            self.status.value = "No automatic model is installed; see the README (napari-hnc train)."
            return
        try:
            self.refiner.auto_segment(self.model.value)
        except HncError as exc:
            self.status.value = str(exc)

    def _click_mode(self, on: bool) -> None:
        if bool(on) != self.refiner.click_mode:
            self.refiner.set_click_mode(bool(on))

    def _mode_changed(self) -> None:
        """Click mode or the class changed (a key, or this dock): show it."""
        self.click_mode.value = self.refiner.click_mode
        if self.label_class.value != self.refiner.label_class:
            self.label_class.value = self.refiner.label_class

    def _progressed(self, job, done: int, total: int, description: str) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = min(done, self.progress.max)
        self.progress.label = description or "Progress"

    def _busy(self, busy: bool) -> None:
        self.segment_button.enabled = not busy
        if not busy:
            self.progress.value = 0

    def _show_status(self, text: str) -> None:
        self.status.value = text
