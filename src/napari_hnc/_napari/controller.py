"""One controller per viewer: the open study, its layers and the actions on them.

Widgets read parameters and call one method here; nothing here draws widgets.
There is no global state: :func:`controller_for` keeps one controller per
viewer in a weak dictionary, so a closed viewer takes its controller with it.
"""

from __future__ import annotations

import logging
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from napari.layers import Image, Labels, Layer

from ..conventions import ct_contrast_limits
from ..errors import HncError
from ..geometry import Volume, ras_to_napari
from ..study import Study, load_study
from .layers import META_CASE, META_INSTANCES, META_PROVENANCE, META_ROLE, labels_layer, layer_volume, study_layers
from .worker import Job
from ..io.autosave import autosave_interval_s

if TYPE_CHECKING:  # pragma: no cover
    from napari.components import ViewerModel

log = logging.getLogger(__name__)

_CONTROLLERS: "weakref.WeakKeyDictionary[Any, StudyController]" = weakref.WeakKeyDictionary()

#: autosave this long after the last model result (ms)
AUTOSAVE_AFTER_RESULT_MS = 1000

#: Layer roles that belong to one study (removed together when another study replaces it).
STUDY_ROLES = ("ct", "pet", "labels", "reference", "clicks")


def ask_restore(question: str) -> bool:
    """Ask the user (a Yes/No box); tests replace :attr:`StudyController.ask`."""
    from qtpy.QtWidgets import QApplication, QMessageBox

    if QApplication.instance() is None:
        return False
    answer = QMessageBox.question(None, "napari-hnc", question,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.Yes)
    return answer == QMessageBox.StandardButton.Yes


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class StudyController:
    """The study shown in one napari viewer and the operations the docks need."""

    def __init__(self, viewer: "ViewerModel") -> None:
        self._viewer = weakref.ref(viewer)
        self.study: Study | None = None
        #: the case whose layers this controller works on (kept while the study is rebuilt from layers)
        self.case: str | None = None
        self._refiner = None
        self._views = None
        self._display_2d = None  # the 2D display the 3D view put aside
        #: Called (no arguments) when a model was added, e.g. by the Improve dock.
        self.model_listeners: list = []
        #: Keep every saved study for "Improve the model" (the saved cases, :mod:`napari_hnc.training.saved_cases`).
        self.keep_saved_cases = True
        self._case_keeper = None  # the worker keeping the last saved case (keep_case)
        self._measure_worker = None
        self._autosaver = None
        self._result_timer = None
        #: told (no arguments) when the open study changes: the docks refresh their status
        self.listeners: list[Callable[[], None]] = []
        #: asks a Yes/No question (a message box); replaced in tests and scripts
        self.ask: Callable[[str], bool] = ask_restore
        #: bumped on every change to the labels (a user's stroke, a model or rule result)
        self.generation = 0
        self._saved_generation = 0
        self._autosaved_generation = 0
        self._adding = False
        self._timer = None
        self._watched: "weakref.WeakSet[Labels]" = weakref.WeakSet()
        self.session_info: dict[str, Any] = {}
        #: the lesion (instance id) the user went to last, and who is told when it changes
        self.current_lesion: int | None = None
        self.lesion_listeners: list[Callable[[int | None], None]] = []
        #: told after every change to the labels: "edit" (a user's stroke) or "model" (a click or model result)
        self.change_listeners: list[Callable[[str], None]] = []
        viewer.layers.events.inserted.connect(self._on_layers_changed)
        viewer.layers.events.removed.connect(self._on_layers_changed)

    @property
    def views(self):
        """The coronal and sagittal views beside the axial one (:class:`~napari_hnc._napari.views.PlaneViews`)."""
        if self._views is None:
            from .views import PlaneViews

            self._views = PlaneViews(self)
        return self._views

    @property
    def refiner(self):
        """Automatic segmentation and click refinement through this viewer's torch worker."""
        if self._refiner is None or not self._refiner.worker.alive:
            from .refine import Refiner

            self._refiner = Refiner(self)
        return self._refiner

    def measure_worker(self):
        """The thread that measures the lesions (apart from the torch worker, so the table never waits
        for a segmentation); stopped with the window like the torch worker."""
        if self._measure_worker is None or not self._measure_worker.alive:
            from .worker import TorchWorker

            self._measure_worker = TorchWorker(name="napari-hnc measure worker", torch=False)
        return self._measure_worker

    @property
    def viewer(self) -> "ViewerModel":
        viewer = self._viewer()
        if viewer is None:
            raise HncError("the viewer of this controller was closed")
        return viewer

    # ----------------------------------------------------------------- opening
    def open(self, source: str | Path | Study, **load_kwargs: Any) -> Study:
        """Load a study (path or :class:`Study`) and show it fused; adds an empty labels layer if needed.

        The study shown before is closed first: its unsaved labels are autosaved (and the user is
        told where), its layers removed. A newer autosave of the study being opened is offered back.
        """
        study = source if isinstance(source, Study) else load_study(source, **load_kwargs)
        self.close_study(reason=f"to open {study.case_id}")
        study = self._offer_restore(study)
        if study.labels is None:
            study = study.with_labels(study.empty_labels())
        self._adding = True
        try:
            for data, kwargs, layer_type in study_layers(study):
                self.viewer.add_layer(Layer.create(data, kwargs, layer_type))
        finally:
            self._adding = False
        self._set_study(study)
        self._watch_labels()
        from .views import label_axes

        label_axes(self.viewer)
        self.viewer.reset_view()
        self.go_to(self._focus_point(study))
        if self._views is not None and self._views.shown:
            self._views.frame()
        return study

    def _set_study(self, study: Study | None) -> None:
        self.study = study
        self.case = study.case_id if study is not None else None
        self.generation = self._saved_generation = self._autosaved_generation = 0
        if study is not None:
            restored = study.labels is not None and study.labels.metadata.get("restored_from")
            if restored:  # restored labels are unsaved work
                self.generation = 1
            self.session_info = {"opened": _now(), "sources": self._sources(study), "edits": 0, "models": {}}
            self._start_timer()
        if self._refiner is not None:
            self._refiner.study_changed()
        self._notify()

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()

    @staticmethod
    def _sources(study: Study) -> dict[str, str | None]:
        files = study.files.paths() if study.files is not None else {}
        out = {}
        for role in ("ct", "pet", "labels"):
            path = files.get(role)
            vol = getattr(study, role)
            if path is None and vol is not None:
                path = vol.metadata.get("path") or vol.metadata.get("source_path")
            out[role] = str(path) if path else None
        return out

    def close_study(self, reason: str = "") -> None:
        """Autosave the open study's unsaved labels (saying so) and remove its layers."""
        if self.study is None and not self._study_layers():
            return
        if self.changed:
            written = self.autosave(force=True, wait=True)
            if written is not None:
                from napari.utils.notifications import show_info

                show_info(f"The unsaved labels of {self.case} were autosaved to {written}"
                          f"{' ' + reason if reason else ''}; opening {self.case} again offers them back.")
        self._adding = True
        try:
            for layer in self._study_layers():
                self.viewer.layers.remove(layer)
        finally:
            self._adding = False
        self.study = None
        self.case = None
        if self._refiner is not None:
            self._refiner.study_changed()

    def _study_layers(self) -> list[Layer]:
        """The layers of the current case (all napari-hnc layers when no case is known)."""
        try:
            layers = list(self.viewer.layers)
        except HncError:
            return []
        return [layer for layer in layers if layer.metadata.get(META_ROLE) in STUDY_ROLES
                and (self.case is None or layer.metadata.get(META_CASE) == self.case)]

    def _on_layers_changed(self, event) -> None:
        """File > Open or a removed layer: the study is rebuilt from the layers on next use.

        A layer of another case replaces the open study (autosaved first), never sits on top of it.
        """
        layer = event.value
        role, case = layer.metadata.get(META_ROLE), layer.metadata.get(META_CASE)
        if self._adding or role not in ("ct", "pet", "labels"):
            return
        if event.type == "removed" and role == "labels" and case == self.case and self.changed:
            self.autosave(force=True, layer=layer, wait=True)  # the viewer closes, or the user removed the layer
        if event.type == "inserted":
            if self.case is not None and case != self.case:
                self.close_study(reason=f"to open {case}")
            self.case = case
            if role == "labels":
                self._watch_labels(layer)
        self.study = None
        if self._refiner is not None:
            self._refiner.study_changed()
        if event.type == "inserted":
            self._start_timer()
        self._notify()

    # ----------------------------------------------------------------- changes, autosave, recovery
    @property
    def changed(self) -> bool:
        """True when the labels changed since they were last saved by the user."""
        return self.generation != self._saved_generation

    def mark_changed(self, *, edit: bool = False, model_result: bool = False) -> None:
        """The labels changed (a user's stroke when ``edit``); a model result is autosaved at once."""
        self.generation += 1
        if edit:
            self.session_info["edits"] = self.session_info.get("edits", 0) + 1
        if model_result and autosave_interval_s() > 0:  # NAPARI_HNC_AUTOSAVE_S=0 turns autosave off
            self._autosave_soon()
        for listener in list(self.change_listeners):
            listener("edit" if edit else "model")

    def note_model(self, name: str, card: Any) -> None:
        """Record a model used on this study (its name and card) for the provenance record."""
        models = self.session_info.setdefault("models", {})
        models[name] = {"task": getattr(card, "task", None), "format_version": getattr(card, "format_version", None),
                        "aliases": list(getattr(card, "aliases", ()) or ())}

    def provenance(self, layer: Labels | None = None) -> dict[str, Any]:
        """The provenance record of the labels: the lesions' history plus this session's sources and edits."""
        layer = layer if layer is not None else self.layer("labels")
        record = dict(layer.metadata.get(META_PROVENANCE) or {}) if layer is not None else {}
        record.setdefault("lesions", [])
        refiner = self._refiner
        session = {**self.session_info, "written": _now()}
        if refiner is not None:
            from .refine import CLICK_TOOLS

            method, params = CLICK_TOOLS[refiner.tool]
            session["click_tool"] = {"name": refiner.tool, "method": method, "parameters": params}
        record["session"] = session
        return record

    def _snapshot(self, layer: Labels | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Copies of what a save writes: the labels, the layer's state, its instances and provenance (GUI thread)."""
        import copy

        layer = layer if layer is not None else self.labels_layer()
        attributes = layer.as_layer_data_tuple()[1]
        meta = dict(attributes.get("metadata") or {})
        if meta.get(META_INSTANCES) is not None:
            meta[META_INSTANCES] = np.array(meta[META_INSTANCES], copy=True)
        meta[META_PROVENANCE] = copy.deepcopy(self.provenance(layer))
        attributes["metadata"] = meta
        return np.array(layer.data, copy=True), attributes

    @staticmethod
    def _volume_for_saving(data: np.ndarray, attributes: dict[str, Any]) -> Volume:
        """The labels Volume with its lesion instances (connected components when none) and provenance (any thread)."""
        from ..annotation import components

        volume = layer_volume(data, attributes)
        if volume.metadata.get("instances") is None:
            volume.metadata["instances"] = components(np.asarray(volume.array, dtype=np.uint8))
        volume.metadata["provenance"] = attributes["metadata"][META_PROVENANCE]
        return volume

    def autosave(self, force: bool = False, layer: Labels | None = None, wait: bool = False) -> Path | None:
        """Autosave the labels when they changed since the last autosave; returns the file.

        The labels are copied here (a few ms) and written by a background thread, so the window never
        waits for the compression; ``wait`` writes before returning (closing, switching studies).
        """
        from ..io.autosave import autosave_path, write_autosave

        if layer is None and not isinstance(self.layer("labels"), Labels):
            return None
        if not force and self.generation == self._autosaved_generation:
            return None
        try:
            study = self.current_study()
            snapshot = self._snapshot(layer)
        except HncError as exc:
            log.warning("autosave failed: %s", exc)
            return None
        grid, case = study.grid, study.case_id
        self._autosaved_generation = self.generation

        def write(progress=None, cancel=None) -> Path:
            return write_autosave(self._volume_for_saving(*snapshot), grid, case)

        if not wait:
            self._autosave_worker().submit(Job("autosave", write, key="autosave"))
            return autosave_path(case)
        self._finish_autosaves()  # an older write still running must not land after this one
        try:
            written = write()
        except (HncError, OSError) as exc:
            log.warning("autosave failed: %s", exc)
            return None
        log.info("autosaved %s", written)
        return written

    def _autosave_soon(self) -> None:
        """Autosave shortly after a model result: a burst of clicks is copied once, not once per click
        (the copy of a CT-sized labels grid takes 50-200 ms on the GUI thread)."""
        from qtpy.QtCore import QTimer
        from qtpy.QtWidgets import QApplication

        if QApplication.instance() is None:
            self.autosave()
            return
        if self._result_timer is None:
            self._result_timer = QTimer()
            self._result_timer.setSingleShot(True)
            self._result_timer.setInterval(AUTOSAVE_AFTER_RESULT_MS)
            self._result_timer.timeout.connect(lambda: self.autosave() if self._viewer() is not None else None)
        self._result_timer.start()

    def _autosave_worker(self):
        if self._autosaver is None or not self._autosaver.alive:
            from .worker import TorchWorker

            self._autosaver = TorchWorker(name="napari-hnc autosave worker", torch=False)
            self._autosaver.errored.connect(lambda job, exc: log.warning("autosave failed: %s", exc))
        return self._autosaver

    def _finish_autosaves(self) -> None:
        """Wait for the autosave being written (queued ones are superseded by the caller's)."""
        if self._autosaver is not None:
            self._autosaver.shutdown()
            self._autosaver = None

    def _start_timer(self) -> None:
        from ..io.autosave import autosave_interval_s

        interval = autosave_interval_s()
        if self._timer is not None or interval <= 0:
            return
        from qtpy.QtCore import QTimer
        from qtpy.QtWidgets import QApplication

        if QApplication.instance() is None:  # a headless ViewerModel: no event loop, no timer
            return
        self._timer = QTimer()
        self._timer.setInterval(int(interval * 1000))
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def shutdown(self, *_args: Any) -> None:
        """The window is closing: keep the unsaved labels, cancel the work and wait for the worker."""
        self._stop_timer()
        if self._result_timer is not None:
            try:
                self._result_timer.stop()
            except RuntimeError:
                pass
        try:
            if self.changed:
                self.autosave(force=True, wait=True)
        except HncError:
            pass
        self._finish_autosaves()
        if self._refiner is not None:
            self._refiner.close()
        if self._measure_worker is not None:
            self._measure_worker.shutdown()

    def attach_window(self, widget: Any) -> None:
        """Shut down with the main window ``widget`` is in (called by the docks once they are docked)."""
        from qtpy.QtWidgets import QMainWindow

        window = widget.window() if widget is not None else None
        known = getattr(self, "_window", None)
        if not isinstance(window, QMainWindow) or (known is not None and known() is window):
            return
        self._window = weakref.ref(window)  # a strong one would keep the closed viewer alive
        window.destroyed.connect(self.shutdown)

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            try:
                timer.stop()
            except RuntimeError:  # already deleted with the application
                pass

    def _tick(self) -> None:
        if self._viewer() is None:
            self._stop_timer()
            return
        self.autosave()

    def _offer_restore(self, study: Study) -> Study:
        from ..io.autosave import discard_autosave, find_autosave, read_autosave

        saved = study.files.labels if study.files is not None else None
        found = find_autosave(study.case_id, saved)
        if found is None:
            return study
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.stat().st_mtime))
        question = (f"napari-hnc autosaved labels of {study.case_id} on {when}, newer than "
                    f"{'the saved labels' if saved else 'any saved labels'}. Restore them?")
        if not self.ask(question):
            discard_autosave(study.case_id)
            return study
        restored = read_autosave(found, study.grid)
        if restored is None:
            return study
        restored.metadata["restored_from"] = str(found)
        return study.with_labels(restored)

    def _focus_point(self, study: Study) -> np.ndarray:
        labels = np.asarray(study.labels.array) if study.labels is not None else None
        if labels is not None and labels.any():
            from ..pet.components import largest_lesion_centre

            return study.grid.voxel_to_world(largest_lesion_centre(labels))
        if study.pet is not None:
            peak = np.unravel_index(int(np.argmax(study.pet.array)), study.pet.shape)
            return study.pet.voxel_to_world(peak)
        return study.grid.center_world()

    def go_to(self, world_ras: Any) -> None:
        """Move the sliders to a world RAS point (mm)."""
        point = ras_to_napari(world_ras)
        for axis, value in enumerate(point):
            self.viewer.dims.set_point(axis, float(value))

    # ----------------------------------------------------------------- layers
    def layer(self, role: str) -> Layer | None:
        """This study's layer of a role ("ct", "pet", "labels"); the selected one wins among several."""
        case = self.case
        candidates = [
            layer for layer in self.viewer.layers
            if layer.metadata.get(META_ROLE) == role and (case is None or layer.metadata.get(META_CASE) == case)
        ]
        selected = [layer for layer in candidates if layer in self.viewer.layers.selection]
        return (selected or candidates or [None])[-1]

    def current_study(self) -> Study:
        """The open study, or one rebuilt from the CT/PET layers napari-hnc opened (File > Open)."""
        if self.study is not None:
            return self.study
        volumes = {}
        for role in ("ct", "pet"):
            layer = self.layer(role)
            if isinstance(layer, Image):
                volume = layer_volume(layer.data, layer.as_layer_data_tuple()[1])
                volume.metadata.update(role=role, units=layer.metadata.get("units"))
                volumes[role] = volume
        if not volumes:
            raise HncError("no CT or PET opened by napari-hnc is shown; open a study first (File > Open, or the Study dock)")
        case = next(iter(l.metadata.get(META_CASE) for l in self.viewer.layers if l.metadata.get(META_CASE)), "study")
        study = Study(volumes.get("ct"), volumes.get("pet"), None, case_id=case)
        self.study = study
        if not self.session_info.get("sources"):
            self.session_info = {"opened": _now(), "sources": self._sources(study), "edits": 0, "models": {}}
        return study

    def labels_layer(self) -> Labels:
        """The study's labels layer, created empty on the label grid if there is none."""
        layer = self.layer("labels")
        if isinstance(layer, Labels):
            return layer
        study = self.current_study()
        data, kwargs, _ = labels_layer(study.empty_labels(), case_id=study.case_id)
        kwargs["metadata"]["header"] = study.grid.metadata.get("header")
        self._adding = True
        try:
            layer = self.viewer.add_labels(data, **kwargs)
        finally:
            self._adding = False
        self._watch_labels(layer)
        return layer

    def _watch_labels(self, layer: Labels | None = None) -> None:
        """Count the user's strokes on the labels layer (its ``paint`` event) as unsaved changes."""
        layer = layer if layer is not None else self.layer("labels")
        if isinstance(layer, Labels) and layer not in self._watched:
            from .keys import bind_history_keys

            self._watched.add(layer)
            layer.events.paint.connect(self._on_paint)
            bind_history_keys(layer, self)

    def _on_paint(self, event) -> None:
        if self._refiner is not None and self._refiner._writing:  # napari-hnc's own writes are not edits
            return
        self.mark_changed(edit=True)
        layer = event.source
        if isinstance(layer, Labels) and layer.metadata.get(META_CASE) == self.case:
            self.refiner.follow(layer, event)  # strokes before any click reach the session too

    def labels_volume(self) -> Volume:
        """The labels as a Volume on the image grid they were drawn on."""
        layer = self.labels_layer()
        return layer_volume(layer.data, layer.as_layer_data_tuple()[1])

    def quantify(self):
        """Per-lesion table (MTV, SUVmax/mean/peak, TLG, centroid) of the labels layer."""
        from ..pet import quantify

        return quantify(self.current_study(), self.labels_volume())

    def save_labels(self, path: str | Path) -> Path:
        """Write the labels layer to NIfTI on its image's grid (atomically), with its provenance beside it.

        A folder (or an empty path) gets ``<case>_labels.nii.gz`` inside it.
        """
        path = Path(path) if str(path).strip() else Path(".")
        if path.is_dir():
            path = path / self.default_labels_name()
        from ..io.nifti import save_labels

        self.session_info["saved"] = _now()
        volume = self._volume_for_saving(*self._snapshot())
        written = save_labels(volume, volume, path)
        self._saved_generation = self.generation
        return Path(written)

    def write_report(self, labels_path: str | Path, done: Callable[[dict], None] | None = None):
        """Beside saved labels, in a worker thread: the lesion table and the fused PET/CT picture (an axial
        slice through each lesion, a coronal PET MIP with the contours; :func:`napari_hnc.display.write_labels_report`).

        Returns the worker; ``done`` gets the written paths. Errors become a notification.
        """
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error, show_info

        from ..display import write_labels_report

        study, labels = self.current_study(), self._volume_for_saving(*self._snapshot())

        def finished(paths: dict) -> None:
            show_info("Saved beside the labels: " + ", ".join(Path(p).name for p in paths.values()))
            if done is not None:
                done(paths)

        worker = create_worker(write_labels_report, study, labels, Path(labels_path),
                               _connect={"returned": finished,
                                         "errored": lambda exc: show_error(f"The lesion table and picture were not saved: {exc}")})
        self._report_worker = worker  # kept alive until it is done
        return worker

    def default_labels_name(self) -> str:
        case = self.case or next((l.metadata.get(META_CASE) for l in self.viewer.layers if l.metadata.get(META_CASE)), None)
        return f"{case or 'study'}_labels.nii.gz"

    def default_save_path(self) -> Path | None:
        """``<case>_labels.nii.gz`` beside the study's CT (or PET), or None when no source file is known."""
        for role in ("ct", "pet"):
            layer = self.layer(role)
            source = layer.metadata.get("source_path") if layer is not None else None
            if source:
                folder = Path(source) if Path(source).is_dir() else Path(source).parent
                return folder / self.default_labels_name()
        return None

    def keep_case(self):
        """Add the study and its labels to the saved cases for "Improve the model", in a worker thread (writing
        the CT/PET once takes seconds); the docks hear of it (:meth:`models_changed`) when it is done.

        Returns the worker. Errors become a notification.
        """
        from napari.qt.threading import create_worker
        from napari.utils.notifications import show_error

        from ..training.saved_cases import record_case

        worker = create_worker(record_case, self.current_study(), self.labels_volume(),
                               _connect={"finished": self.models_changed,
                                         "errored": lambda exc: show_error(
                                             "The labels were saved, but the case could not be kept for improving "
                                             f"the model: {exc}")})
        self._case_keeper = worker  # kept alive until it is done
        return worker

    def models_changed(self) -> None:
        """Tell the docks that the installed models changed."""
        for listener in list(self.model_listeners):
            listener()

    # ----------------------------------------------------------------- display
    def set_ct_window(self, window: str | tuple[float, float]) -> None:
        layer = self.layer("ct")
        if isinstance(layer, Image):
            layer.contrast_limits = ct_contrast_limits(window)

    def set_pet_display(self, suv_max: float | None = None, opacity: float | None = None) -> None:
        layer = self.layer("pet")
        if not isinstance(layer, Image):
            return
        if suv_max is not None:
            layer.contrast_limits_range = (0.0, max(float(suv_max), layer.contrast_limits_range[1]))
            layer.contrast_limits = (0.0, float(suv_max))
        if opacity is not None:
            layer.opacity = float(opacity)

    def toggle_pet(self) -> None:
        """Show or hide the PET."""
        layer = self.layer("pet")
        if layer is not None:
            layer.visible = not layer.visible

    def next_ct_window(self) -> str | None:
        """Switch the CT to the next window preset; returns its name."""
        from ..conventions import CT_WINDOWS

        layer = self.layer("ct")
        if not isinstance(layer, Image):
            return None
        names = list(CT_WINDOWS)
        current = [n for n in names if np.allclose(layer.contrast_limits, ct_contrast_limits(n))]
        name = names[(names.index(current[0]) + 1) % len(names)] if current else names[0]
        self.set_ct_window(name)
        return name

    def lesion_centres(self) -> list[tuple[int, np.ndarray]]:
        """``(instance id, world RAS centre of its bounding box)`` of every lesion, by id."""
        from scipy import ndimage

        layer = self.layer("labels")
        if not isinstance(layer, Labels):
            return []
        instances = self.refiner.file_instances()
        grid = self.current_study().grid
        out = []
        for index, box in enumerate(ndimage.find_objects(instances), start=1):
            if box is not None:
                centre = [(s.start + s.stop - 1) / 2.0 for s in box]
                out.append((index, grid.voxel_to_world(centre)))
        return out

    def set_current_lesion(self, lesion: int | None) -> None:
        """The lesion being worked on (highlighted in the Lesions list)."""
        self.current_lesion = lesion
        for listener in list(self.lesion_listeners):
            listener(lesion)

    def go_to_lesion(self, step: int = 1) -> int | None:
        """Move to the next (``step`` 1) or previous (-1) lesion after the current one; returns its id."""
        centres = self.lesion_centres()
        if not centres:
            from napari.utils.notifications import show_info

            show_info("There is no lesion yet: click on one in click mode (key K), or segment automatically.")
            return None
        ids = [i for i, _ in centres]
        if self.current_lesion in ids:
            position = (ids.index(self.current_lesion) + step) % len(ids)
        else:
            position = 0 if step > 0 else len(ids) - 1
        lesion, centre = centres[position]
        self.go_to(centre)
        self.set_current_lesion(lesion)
        return lesion

    def summary(self) -> str:
        """One line per image of the open study."""
        if self.study is None:
            try:
                self.current_study()
            except HncError:
                return "No study open."
        lines = [f"Case {self.study.case_id} ({self.study.layout})"]
        for role in ("ct", "pet"):
            vol = getattr(self.study, role)
            if vol is not None:
                spacing = " x ".join(f"{s:.2f}" for s in vol.spacing)
                units = f", {vol.metadata.get('units')}" if role == "pet" else ""
                lines.append(f"{role.upper()}: {vol.shape} voxels of {spacing} mm{units}")
        return "\n".join(lines)


def controller_for(viewer: "ViewerModel") -> StudyController:
    """The viewer's controller, created on first use."""
    if viewer not in _CONTROLLERS:
        from .keys import bind_keys

        from .preferences import prefer_hnc_reader

        _CONTROLLERS[viewer] = controller = StudyController(viewer)
        bind_keys(viewer, controller)
        prefer_hnc_reader()  # File > Open of a study file no longer asks which plugin reads it
    return _CONTROLLERS[viewer]


def open_study(viewer: "ViewerModel", path: str | Path | Study, **load_kwargs: Any) -> Study:
    """Open a PET/CT study in a napari viewer, fused and aligned in world millimetres.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    path : str, Path or Study
        Anything :func:`napari_hnc.load_study` accepts, or a loaded Study.
    **load_kwargs
        Passed to :func:`napari_hnc.load_study` (``ct=``, ``pet=``, ``labels=``...).

    Examples
    --------
    >>> import napari, napari_hnc
    >>> viewer = napari.Viewer()  # doctest: +SKIP
    >>> napari_hnc.open_study(viewer, napari_hnc.sample_study_path())  # doctest: +SKIP
    """
    return controller_for(viewer).open(path, **load_kwargs)
