"""Automatic segmentation and click refinement in napari, run by the torch worker.

:class:`Refiner` (one per viewer, owned by the :class:`StudyController`) posts
jobs to the :class:`TorchWorker`; the :class:`~napari_hnc.RefinementSession` is
created and used on the torch thread only. Results come back on the GUI thread
and change only the region they cover. The user's own strokes are watched
(the Labels layer's ``paint`` event): they are sent to the session, mark the
result of any job that was computing over them as stale (it is dropped), and
with live refinement on they make the click-guided model re-run on the lesion.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from napari.layers import Labels
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer

from ..conventions import CLASS_NAMES, PRIMARY
from ..errors import Cancelled, HncError
from ..geometry import LayerGeometry, napari_to_ras, ras_to_napari
from .layers import META_CASE, META_GEOMETRY, META_INSTANCES, META_PROVENANCE, META_ROLE
from .worker import Job, TorchWorker
from .views import set_points

if TYPE_CHECKING:  # pragma: no cover
    from .controller import StudyController

log = logging.getLogger(__name__)

Box = tuple[slice, slice, slice]

#: Click tools: the click-guided model, or a PET rule of napari_hnc.pet.
CLICK_TOOLS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "click-guided model": ("model", {}),
    "PET edge (steepest slope)": ("edge", {}),
    "PET 41% SUVmax": ("percent", {"percent": 41.0}),
    "PET adaptive": ("adaptive", {"fraction": 0.5}),
    "PET SUV 2.5": ("fixed", {"threshold": 2.5}),
    "PET region growing": ("grow", {}),
}
#: The click tool a new viewer starts with: the best on real PET/CT (docs/pet.md, benchmarks/multi_lesion.py).
DEFAULT_TOOL = "PET edge (steepest slope)"


def _union(a: Box | None, b: Box) -> Box:
    if a is None:
        return b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))  # type: ignore[return-value]


def _overlaps(a: Box, b: Box) -> bool:
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b))


class Refiner:
    """Auto-segmentation and click/edit refinement of the viewer's labels layer."""

    def __init__(self, controller: "StudyController") -> None:
        # import the engine here, on the GUI thread, before any job: an import on the torch
        # thread (C extensions load under the import lock) would freeze the GUI for a moment;
        # SimpleITK's holds the GIL for about 0.2 s
        import safetensors.torch  # noqa: F401
        import SimpleITK  # noqa: F401

        from .. import inference, pet  # noqa: F401
        from ..models import registry  # noqa: F401

        self.controller = controller
        self.worker = TorchWorker()
        self.worker.returned.connect(self._returned)
        self.worker.errored.connect(self._errored)
        self.tool = DEFAULT_TOOL
        #: the click-guided model the "click-guided model" tool runs: a name, alias or card path
        self.click_model = "click"
        self.label_class = PRIMARY
        self.live = True
        self.device = "auto"
        #: where automatic segmentation runs: "auto" (the head and neck, found per study), "whole" or a box
        self.region: Any = "auto"
        #: torch threads (set on the worker thread): leave one core to the GUI so the event loop keeps running
        self.threads = self.worker.threads
        self.listeners: list[Callable[[str], None]] = []  # status lines for the dock
        self.lesion_listeners: list[Callable[[Any], None]] = []  # told of every change applied to the labels
        self.mode_listeners: list[Callable[[], None]] = []  # told when click mode or the class changes
        self._session = None  # touched on the torch thread only
        self._models: dict[tuple[str, str], Any] = {}  # loaded models, torch thread only
        self._session_key: tuple[str, str, int] | None = None  # (tool, click model, study) the session was made for
        self._edit_counter = 0
        self._edits: list[tuple[int, Box]] = []
        self._pending_edit: Box | None = None
        self._watched: Labels | None = None
        self._epoch = 0  # bumped when the study changes: older results are dropped
        self._writing = False  # True while napari-hnc itself writes into the layer (its paint events are not edits)
        self._side_views_stale = False  # a result was written and the side views are not redrawn yet
        self._side_views_left: list[str] = []  # the side views still to redraw after it
        self._side_views_since = 0.0  # when the side views went stale (perf_counter seconds)
        self._merging = 0  # automatic proposals being merged into the labels, a slab per event-loop turn
        #: clicks whose markers are not drawn yet (world RAS, positive): drawn together after a quiet spell
        self._pending_markers: list[tuple[np.ndarray, bool]] = []
        self._marker_timer = QTimer()
        self._marker_timer.setSingleShot(True)
        self._marker_timer.timeout.connect(self._flush_markers)

    # ----------------------------------------------------------------- helpers
    def _status(self, text: str) -> None:
        log.info(text)
        for listener in list(self.listeners):
            listener(text)

    def _layer_and_geometry(self, create: bool = True) -> tuple[Labels, LayerGeometry]:
        layer = self.controller.labels_layer() if create else self.controller.layer("labels")
        if not isinstance(layer, Labels):
            raise HncError("the labels layer is gone")
        if META_GEOMETRY not in layer.metadata:
            raise HncError("this labels layer was not made by napari-hnc on the study grid; open the study again")
        self._watch(layer)
        return layer, LayerGeometry.from_metadata(layer.metadata[META_GEOMETRY])

    def file_labels(self) -> np.ndarray:
        """The labels layer's data seen in the file's voxel order (a view)."""
        layer, geometry = self._layer_and_geometry()
        return geometry.to_file(layer.data)

    def file_instances(self) -> np.ndarray:
        """The labels layer's lesion instance ids in the file's voxel order (kept in its metadata)."""
        layer, geometry = self._layer_and_geometry()
        shape = geometry.to_file(layer.data).shape
        instances = layer.metadata.get(META_INSTANCES)
        if instances is None or np.shape(instances) != shape:
            from ..annotation import components

            instances = components(np.array(geometry.to_file(layer.data), dtype=np.uint8))
            layer.metadata[META_INSTANCES] = instances
        return instances

    def _submit(self, kind: str, run, *, key=None, **context) -> Job:
        context.setdefault("edit_counter", self._edit_counter)
        context.setdefault("epoch", self._epoch)
        return self.worker.submit(Job(kind, run, key=key, context=context))

    # ----------------------------------------------------------------- session (torch thread)
    def _ensure_session(self) -> None:
        """Queue the creation of a session for the current tool and labels (no-op when up to date).

        Another tool on the same study keeps the session (its lesions and its undo history) and only
        changes what refines the clicks."""
        study = self.controller.current_study()
        key = (self.tool, self.click_model, id(study))
        if self._session_key == key:
            return
        same_study = self._session_key is not None and self._session_key[-1] == id(study)
        labels = np.array(self.file_labels(), copy=True)
        instances = np.array(self.file_instances(), copy=True)
        method, params = CLICK_TOOLS[self.tool]
        device, threads, click_model = self.device, self.threads, self.click_model

        def run(progress, cancel):
            from ..errors import ModelError
            from ..inference import RefinementSession

            def use(**args) -> str:
                if same_study and self._session is not None:
                    self._session.set_engine(**args)
                else:
                    session = RefinementSession(**args)
                    session.set_study(study.with_labels(None), target=labels, instances=instances)
                    self._session = session
                return self._session.method

            if method != "model":
                return use(model=None, device=device, threshold=method, threshold_params=params)
            try:
                return use(model=self._model(click_model, "click"), device=device, threads=threads)
            except ModelError as exc:
                log.info("no usable click-guided model (%s); clicks use PET thresholds", exc)
                return use(model=None, device=device)

        self._session_key = key
        if not same_study:
            self._session = None
        self._submit("session", run)

    def _session_call(self, kind: str, call: Callable[[Any], Any], **kwargs) -> Job:
        self._ensure_session()

        def run(progress, cancel):
            if self._session is None:
                raise HncError("the refinement session could not start; see the previous message")
            return call(self._session)

        return self._submit(kind, run, **kwargs)

    # ----------------------------------------------------------------- actions
    def set_tool(self, tool: str) -> None:
        if tool not in CLICK_TOOLS:
            raise HncError(f"unknown click tool {tool!r}; choose one of {list(CLICK_TOOLS)}")
        self.tool = tool

    def set_click_model(self, name: str) -> None:
        """Refine with another click-guided model from now on (a name, alias or card path); like another
        tool, it keeps the lesions and the undo history of the study."""
        self.click_model = str(name)

    def set_label_class(self, label: int) -> None:
        """The class of the lesions clicks start from now on (1 primary tumour, 2 lymph node)."""
        self.label_class = int(label)
        self._status(f"New lesions are {CLASS_NAMES[self.label_class]}.")
        for listener in list(self.mode_listeners):
            listener()

    @property
    def click_mode(self) -> bool:
        """True while a left click in the 2D view refines (the mouse callback is installed)."""
        return self._viewer_open() and self.mouse_callback in self.controller.viewer.mouse_drag_callbacks

    def set_click_mode(self, on: bool) -> None:
        """Turn click mode on (left click adds, Shift+click removes) or off."""
        callbacks = self.controller.viewer.mouse_drag_callbacks
        if on and self.mouse_callback not in callbacks:
            self.clicks_layer()
            callbacks.append(self.mouse_callback)
            labels = self.controller.layer("labels")
            if labels is not None:
                labels.mode = "pan_zoom"
            self._status("Click mode on: click a lesion to delineate it, Shift+click to remove from it.")
        elif not on and self.mouse_callback in callbacks:
            callbacks.remove(self.mouse_callback)
            self._status("Click mode off.")
        self.sync_click_mode()
        for listener in list(self.mode_listeners):
            listener()

    def sync_click_mode(self) -> None:
        """The coronal and sagittal views (when shown) take clicks exactly when the main view does."""
        on = self.click_mode
        for model in self.controller.views.models().values():
            callbacks = model.mouse_drag_callbacks
            if on and self.mouse_callback not in callbacks:
                callbacks.append(self.mouse_callback)
            elif not on and self.mouse_callback in callbacks:
                callbacks.remove(self.mouse_callback)

    def accept_lesion(self, lesion: int | None = None) -> Job:
        """Accept (lock) ``lesion`` or the lesion being refined: later clicks and models leave it as it is."""
        def accept(session):
            target = lesion if lesion is not None else session.active_lesion
            if target is None or target not in session.annotation:
                raise HncError("No lesion is being refined: click on a lesion first, then accept it.")
            session.annotation.set_locked(int(target), True)
            session.next_lesion()
            return int(target)

        return self._session_call("accept", accept)

    def click(self, world_ras: Any, positive: bool = True) -> Job:
        """Refine the lesion at a world RAS point (mm) with a positive or negative click."""
        world = np.asarray(world_ras, dtype=float)
        self.controller.current_study().grid.world_to_index(world, what="click")  # clear error now
        label = self.label_class
        self._pending_markers.append((world, positive))
        self._marker_timer.start(MARKER_QUIET_MS)
        return self._session_call("click", lambda s: s.add_click(world, positive, label), world=world)

    def undo(self) -> Job:
        """Undo the last click, stroke, proposal or lesion action (the one undo history of the labels)."""
        return self._session_call("undo", lambda s: s.undo())

    def redo(self) -> Job:
        """Do again what the last undo took back."""
        return self._session_call("redo", lambda s: s.redo())

    def set_class(self, lesion: int, label: int) -> Job:
        """Give lesion ``lesion`` (an instance id) the class ``label``: the one way to change a class."""
        return self._session_call("class", lambda s: s.set_class(int(lesion), int(label)))

    def delete_lesion(self, lesion: int) -> Job:
        """Remove lesion ``lesion`` (an instance id)."""
        return self._session_call("delete", lambda s: s.delete_lesion(int(lesion)))

    def reset(self) -> Job:
        return self._session_call("reset", lambda s: s.reset())

    def next_lesion(self) -> Job:
        return self._session_call("next", lambda s: s.next_lesion())

    def auto_segment(self, model: str = "default") -> Job:
        """Segment the study's head and neck (or :attr:`region`) with an automatic model; fills only unlabelled voxels."""
        from ..inference import segment

        study = self.controller.current_study()
        device, threads, region = self.device, self.threads, self.region
        where = "finding the head and neck" if region == "auto" else f"region {region}"
        self._status(f"Segmenting {study.case_id} with {model} ({where})...")

        def run(progress, cancel):
            loaded = self._model(model, "automatic")
            labels = segment(study, loaded, device, region=region, threads=threads, progress=progress, cancel=cancel)
            return labels, _bounding_box(np.asarray(labels.array) > 0)

        return self._submit("segment", run, key="segment", model=model)

    def cancel(self) -> None:
        self.worker.cancel()

    def pending(self) -> int:
        """Work not finished yet: the worker's jobs, proposals still being merged into the labels, and
        results or click markers not drawn in every view yet."""
        return (self.worker.pending() + self._merging + int(self._side_views_stale)
                + int(bool(self._pending_markers)))

    def study_changed(self) -> None:
        """Another study (or the same one rebuilt from its layers): drop the queued work and the session."""
        self.worker.cancel()
        self._epoch += 1
        self._session_key = None
        self._edits.clear()
        self._pending_edit = None
        self._pending_markers.clear()  # their study's clicks layer is gone
        self._unwatch()

    def _unwatch(self) -> None:
        """Stop listening to the labels layer's paint events."""
        if self._watched is not None:
            try:
                self._watched.events.paint.disconnect(self._on_paint)
            except (TypeError, ValueError, RuntimeError):
                pass
            self._watched = None

    def close(self, timeout: float = 10.0) -> bool:
        """Cancel the work in progress and wait for the worker thread to end (the window is closing)."""
        self._unwatch()
        return self.worker.shutdown(timeout)

    def _model(self, name: str, task: str):
        """A model loaded once per worker (torch thread only)."""
        from ..models.registry import load_model

        if (name, task) not in self._models:
            self._models[(name, task)] = load_model(name, task=task)
        loaded = self._models[(name, task)]
        self.controller.note_model(getattr(getattr(loaded, "card", None), "name", name), getattr(loaded, "card", None))
        return loaded

    def preload(self, model: str | None = "default") -> Job:
        """Load the automatic model and start the click session now, so the first action is quick."""
        self._ensure_session()

        def run(progress, cancel):
            from ..errors import ModelError

            if model is not None:
                try:
                    self._model(model, "automatic")
                except ModelError as exc:
                    log.info("automatic model %s not loaded: %s", model, exc)
            return None

        return self._submit("preload", run)

    # ----------------------------------------------------------------- user edits
    def _watch(self, layer: Labels) -> None:
        if self._watched is layer:
            return
        if self._watched is not None:
            self._watched.events.paint.disconnect(self._on_paint)
        layer.events.paint.connect(self._on_paint)
        self._watched = layer

    def follow(self, layer: Labels, event) -> None:
        """Listen to ``layer``'s strokes from ``event`` on: the first stroke of a study painted before any click.

        The session starts from the labels as they are before this stroke (napari
        emits ``paint`` before it writes it), so the stroke is an edit: on a lesion
        of the proposal or of a loaded file, the click model re-runs with it when live.
        """
        if self._watched is layer or META_GEOMETRY not in layer.metadata:
            return
        self._watch(layer)
        self._ensure_session()
        self._on_paint(event)

    def _on_paint(self, event) -> None:
        """The user painted, erased or filled: mark the region now, send it to the session soon.

        napari emits ``paint`` before it writes the stroke into the data, so the
        labels are read on the next turn of the event loop.
        """
        if self._writing:
            return
        layer = self._watched
        box = _display_box(event.value, layer.data.shape) if layer is not None else None
        if box is None:
            return
        geometry = LayerGeometry.from_metadata(layer.metadata[META_GEOMETRY])
        file_box = geometry.display_box_to_file(box)
        self._edit_counter += 1
        self._edits.append((self._edit_counter, file_box))
        flush = self._pending_edit is None
        self._pending_edit = _union(self._pending_edit, file_box)
        if flush:
            QTimer.singleShot(0, self._flush_edit)

    def _flush_edit(self) -> None:
        region = self._pending_edit
        if region is None or self._watched is None:
            return
        geometry = LayerGeometry.from_metadata(self._watched.metadata[META_GEOMETRY])
        values = np.array(geometry.to_file(self._watched.data)[region], copy=True)
        refine = self.live
        self._pending_edit = None
        self._session_call("edit", lambda s: s.set_mask(values, region, refine=refine), key="edit")

    # ----------------------------------------------------------------- results (GUI thread)
    def _viewer_open(self) -> bool:
        try:
            self.controller.viewer
        except HncError:
            return False
        return True

    def _returned(self, job: Job, result: Any) -> None:
        if job.kind == "click":  # the markers wait until the clicks' results are drawn
            self._marker_timer.start(MARKER_QUIET_MS)
        if not self._viewer_open():  # a result that comes back after the window closed has nowhere to go
            return
        if job.context.get("epoch", self._epoch) != self._epoch:
            log.debug("result of job %s (%s) dropped: its study is no longer shown", job.id, job.kind)
            return
        if self.controller.layer("labels") is None:  # a result never makes a labels layer (removed, or closing)
            self._status("A result was dropped: its labels layer is no longer in the viewer.")
            return
        if job.kind == "session":
            self._status(f"Clicks delineate with: {result}")
        elif job.kind == "accept":
            self._status(f"Lesion {result} accepted: clicks and models will not change it.")
        elif job.kind == "segment":
            self._merge_segmentation(result, job)
        elif result is not None and hasattr(result, "slices"):
            self._apply(result, job)
        self._forget_old_edits()

    def _apply(self, update, job: Job) -> None:
        since = [box for n, box in self._edits if n > job.context["edit_counter"]]
        if any(_overlaps(box, update.slices) for box in since):
            self._status("A result was dropped: you edited its region while it was computed.")
            self._resync(update.slices)
            return
        try:  # a result never makes a labels layer: the user removed it, or the window is closing
            layer, geometry = self._layer_and_geometry(create=False)
        except HncError:
            self._status("A result was dropped: its labels layer is no longer in the viewer.")
            return
        self._write_region(layer, geometry, update.slices, update.labels)
        if update.instances is not None:
            self.file_instances()[update.slices] = update.instances
            layer.metadata[META_PROVENANCE] = update.provenance
        if job.kind != "resync":  # a resync hands the session the layer's own labels: nothing new to report
            self.controller.mark_changed(model_result=True)
            if getattr(update, "lesion", None):  # the lesion being refined is highlighted in the list
                self.controller.set_current_lesion(int(update.lesion))
        for listener in list(self.lesion_listeners):
            listener(update)
        if job.kind != "resync":
            self._status(describe_update(update))
            for message in getattr(update, "messages", ()):
                show_warning(message)

    def _write_region(self, layer: Labels, geometry: LayerGeometry, box: Box, labels: np.ndarray) -> None:
        """Write file-order ``labels`` into ``box`` of the layer and redraw the slices shown.

        The changed voxels are copied in place (a masked copy: a few ms even for a 20 cm region of a
        512x512 CT grid, where napari's ``data_setitem`` with its own undo record took 0.3-1.3 s on the
        GUI thread); a refresh of the shown slice follows (about 7 ms), in the side views a turn later
        (:data:`SIDE_VIEWS_AFTER_MS`). napari's
        own undo history is not kept: Ctrl+Z on the labels is napari-hnc's undo (keys.bind_history_keys).
        """
        display_box = geometry.file_box_to_display(box)
        new = np.empty(tuple(s.stop - s.start for s in display_box), dtype=layer.data.dtype)
        geometry.to_file(new)[...] = labels
        target = layer.data[display_box]
        changed = target != new
        if not changed.any():
            return
        np.copyto(target, new, where=changed)
        self._writing = True
        try:
            layer.refresh(thumbnail=False, extent=False, highlight=False)
        finally:
            self._writing = False
        self.controller.views.expect_draw("axial")
        # the side views are redrawn in a later event-loop turn: two shorter stalls instead of one long one
        self._side_views_later()

    def _side_views_later(self) -> None:
        """Redraw the side views after the main one, each in an event-loop turn of its own."""
        if not self._side_views_stale:
            self._side_views_stale = True
            self._side_views_since = time.perf_counter()
            QTimer.singleShot(SIDE_VIEWS_AFTER_MS, self._refresh_side_views)
        else:
            self._side_views_left = []  # a new result while redrawing: every side view again

    def _refresh_side_views(self) -> None:
        """Redraw the side views after a result (once, however many results asked), one per turn.

        While the worker computes (the next click), the redraw waits for it, up to :data:`SIDE_VIEWS_WAIT_S`:
        drawing beside inference is slow, and the GUI would stall for longer."""
        if not self._side_views_stale or not self._viewer_open():
            return
        views = self.controller.views
        waited = time.perf_counter() - self._side_views_since
        if views.drawing() or (self.worker.pending() and waited < SIDE_VIEWS_WAIT_S):  # one view per frame
            QTimer.singleShot(SIDE_VIEWS_AFTER_MS, self._refresh_side_views)
            return
        if not self._side_views_left:
            self._side_views_left = list(views.models())
        if self._side_views_left:
            name = self._side_views_left.pop(0)
            views.refresh("labels", names=[name])
            views.mirror_points("clicks", names=[name])  # the click markers, in the same frame
        if self._side_views_left:
            QTimer.singleShot(SIDE_VIEWS_AFTER_MS, self._refresh_side_views)
        else:
            self._side_views_stale = False

    def _resync(self, box: Box, origin: str = "edit") -> None:
        """Give the session the layer's labels in ``box`` (after a dropped result, or a merged proposal)."""
        values = np.array(self.file_labels()[box], copy=True)
        self._session_call("resync", lambda s: s.set_mask(values, box, refine=False, origin=origin))

    def _merge_segmentation(self, result, job: Job) -> None:
        """Put the proposal into unlabelled voxels, a slab at a time so the GUI stays responsive."""
        labels, box = result
        region = labels.metadata.get("region_description", "")
        self._status(f"Automatic segmentation ({job.context['model']}) ran in the {region}")
        if box is None:
            show_info(f"Automatic segmentation ({job.context['model']}) found no lesion in the {region}.")
            return
        layer, geometry = self._layer_and_geometry()
        self._ensure_session()  # made from the labels before the proposal, so that Undo takes the proposal away
        proposal = np.asarray(labels.array)
        later = [b for n, b in self._edits if n > job.context["edit_counter"]]
        step = max(1, MERGE_VOXELS // max(1, int(np.prod([s.stop - s.start for s in box[1:]]))))
        slabs = [(slice(z, min(z + step, box[0].stop)),) + tuple(box[1:]) for z in range(box[0].start, box[0].stop, step)]
        added = [0]

        def merge(i: int = 0) -> None:
            if i == len(slabs):
                self._merging -= 1
                layer.refresh()
                self._side_views_later()
                message = (f"Automatic segmentation ({job.context['model']}) added {added[0]} voxels. "
                           f"Your own labels were kept. Region: {region}")
                show_info(message)
                self._status(message)
                self.controller.mark_changed(model_result=True)
                self._resync(box, origin="automatic")
                for listener in list(self.lesion_listeners):
                    listener(None)
                return
            slab = slabs[i]
            target = geometry.to_file(layer.data)[slab]
            fill = (target == 0) & (proposal[slab] > 0)
            for edited in later:  # never put labels where the user has worked since
                local = _local(edited, slab)
                if local is not None:
                    fill[local] = False
            target[fill] = proposal[slab][fill]
            added[0] += int(fill.sum())
            QTimer.singleShot(0, lambda: merge(i + 1))

        self._merging += 1
        merge()

    def _errored(self, job: Job, exc: BaseException) -> None:
        if job.kind == "click":
            self._marker_timer.start(MARKER_QUIET_MS)
        if job.kind == "session":
            self._session_key = None
        what = JOB_NAMES.get(job.kind, job.kind)
        if isinstance(exc, Cancelled):
            show_info(f"{what} was cancelled.")
            self._status(f"{what} was cancelled.")
            return
        if isinstance(exc, HncError):
            show_error(str(exc))
        else:
            show_error(f"{what} did not work: {exc}")
            log.error("job %s failed", job.kind, exc_info=exc)
        self._status(f"{what} did not work; see the message.")

    def _forget_old_edits(self) -> None:
        if self.worker.pending() == 0:
            self._edits.clear()

    # ----------------------------------------------------------------- clicks shown
    def clicks_layer(self):
        """The study's Points layer showing the clicks (green positive, red negative), made once.

        It shares the labels layer's transform (its points are in the labels' voxel coordinates): a
        layer in plain world millimetres would set napari's slider step to 1 mm, and one CT slice
        would take several key presses.
        """
        viewer = self.controller.viewer
        study = self.controller.current_study()
        name = f"{study.case_id} clicks"
        if name not in viewer.layers:
            labels = self.controller.labels_layer()
            self.controller._adding = True
            try:
                viewer.add_points(np.zeros((0, 3)), name=name, size=4, face_color="lime", border_color="white",
                                  opacity=0.9, ndim=3, affine=labels.affine.affine_matrix,
                                  metadata={META_ROLE: "clicks", META_CASE: study.case_id})
            finally:
                self.controller._adding = False
            viewer.layers.selection.active = labels
        return viewer.layers[name]

    def _flush_markers(self) -> None:
        """Draw the markers of the clicks made since the last time, in one go.

        Markers wait for a quiet spell (:data:`MARKER_QUIET_MS` without a click or a result): a quick
        click's labels come first, and drawing its marker never competes with the worker for the CPU
        while the click is computed; a burst of clicks gets one redraw for all its markers; a slow
        click's marker still comes while it is computed. They also wait for a view still redrawing
        a result (one view per frame).
        """
        if not self._pending_markers or not self._viewer_open():
            return
        if self.controller.views.drawing():
            self._marker_timer.start(SIDE_VIEWS_AFTER_MS)  # a click meanwhile restarts the quiet spell
            return
        pending, self._pending_markers = self._pending_markers, []
        try:
            self._show_clicks([world for world, _ in pending], [positive for _, positive in pending])
        except HncError:  # the study was closed meanwhile
            return
        self.controller.views.expect_draw("axial")
        self._side_views_later()  # then in the side views, a view per frame

    def _show_click(self, world: np.ndarray, positive: bool) -> None:
        self._show_clicks([world], [positive])

    def _show_clicks(self, worlds: list[np.ndarray], positives: list[bool]) -> None:
        """Add markers at world RAS points (green positive, red negative) with one data change."""
        layer = self.clicks_layer()
        points = np.array([layer.world_to_data(ras_to_napari(world)) for world in worlds], dtype=float)
        colours = np.array([[0.0, 1.0, 0.0, 1.0] if positive else [1.0, 0.0, 0.0, 1.0] for positive in positives])
        old = len(layer.data)
        faces = np.asarray(layer.face_color)[:old]
        set_points(layer, np.concatenate([np.asarray(layer.data, dtype=float).reshape(-1, 3), points]),
                   np.concatenate([faces.reshape(-1, 4), colours]))

    # ----------------------------------------------------------------- mouse
    def mouse_callback(self, viewer, event):
        """Left click (no drag) in 2D: a positive click; with Shift: a negative click."""
        if event.button != 1 or viewer.dims.ndisplay != 2:
            return
        yield
        moved = False
        while event.type == "mouse_move":
            moved = True
            yield
        if moved:
            return
        try:
            self.click(napari_to_ras(np.asarray(event.position)[-3:]), positive="Shift" not in event.modifiers)
        except HncError as exc:
            show_error(str(exc))


def describe_update(update) -> str:
    """A status line for a change the session made."""
    verbs = {"click": "updated", "edit": "updated from your edit", "undo": "undone", "redo": "redone", "reset": "reset",
             "class": "given a new class", "delete": "deleted"}
    what = f"Lesion {update.lesion}" if update.lesion else "The labels"
    return " ".join([f"{what} {verbs.get(update.action, 'changed')}.", *getattr(update, "messages", ())])


#: what each job is, in the user's words (for messages)
JOB_NAMES = {"segment": "Automatic segmentation", "click": "The click", "edit": "Refining after your edit",
             "undo": "Undo", "redo": "Redo", "class": "Changing the class", "delete": "Deleting the lesion",
             "session": "Preparing click refinement", "accept": "Accepting the lesion", "reset": "Resetting the lesion",
             "next": "Finishing the lesion", "preload": "Loading the models", "resync": "Updating the session"}

#: voxels merged per turn of the event loop (a few ms each)
MERGE_VOXELS = 2_000_000
#: Click markers are drawn after this long (ms) without a click or a result.
MARKER_QUIET_MS = 350
#: After a result, the side views are redrawn this long (ms) after the main one, in an event-loop turn
#: of their own (the three software-rendered views redrawn in one turn stalled the GUI for up to 200 ms).
SIDE_VIEWS_AFTER_MS = 15
#: ... and wait for the worker to finish what it computes for at most this long (s).
SIDE_VIEWS_WAIT_S = 0.3


def _bounding_box(mask: np.ndarray) -> Box | None:
    """Box around the True voxels of ``mask`` (None when empty); runs on the torch thread."""
    from scipy import ndimage

    found = ndimage.find_objects(mask.astype(np.uint8))
    return found[0] if found and found[0] is not None else None  # type: ignore[return-value]


def _local(box: Box, within: Box) -> Box | None:
    """``box`` in the coordinates of ``within`` (clipped), or None when they do not overlap."""
    if not _overlaps(box, within):
        return None
    return tuple(slice(max(b.start, w.start) - w.start, min(b.stop, w.stop) - w.start)
                 for b, w in zip(box, within))  # type: ignore[return-value]


def _display_box(atoms, shape) -> Box | None:
    """Bounding box (display order) of a napari paint event's history atoms."""
    lo, hi = np.full(3, np.iinfo(np.int64).max), np.full(3, -1)
    for atom in atoms or []:
        key = getattr(atom, "slice_key", None)
        if key is not None:
            start = [s.indices(n)[0] for s, n in zip(key, shape)]
            stop = [s.indices(n)[1] for s, n in zip(key, shape)]
        else:
            indices = atom[0]
            if not len(indices[0]):
                continue
            start = [int(np.min(i)) for i in indices]
            stop = [int(np.max(i)) + 1 for i in indices]
        lo, hi = np.minimum(lo, start), np.maximum(hi, stop)
    if np.any(hi < 0):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))  # type: ignore[return-value]


