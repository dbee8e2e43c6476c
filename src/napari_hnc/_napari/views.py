"""Multi-planar reading: the axial main view with linked coronal and sagittal views, and a 3D view.

The coronal and sagittal views come from napari-orthogonal-views: each is a napari viewer model
showing copies of the main viewer's layers that share their data arrays (a stroke, an eraser or a
click result shows in every view at once), their contrast, opacity and visibility, and the same
world point. napari-hnc adds what a PET/CT reader needs on top:

- the views are linked through the world point (the sliders), and every view shows it with the
  library's crosshair, drawn at the world point (the library puts it at slider index x step, without
  the world's start: off the point in any scanner file);
- every view is radiological and upright: axial (anterior up, patient's right on screen left),
  coronal (superior up, right on screen left) and sagittal (superior up, anterior on screen left);
- the axes of every view are labelled with the direction they point ("A→P", "R→L", "S→I");
- click mode and the annotation keys work in every view, and a stroke in a side view counts as
  an edit of the study (it is fed to the live refinement like one in the main view).
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from napari.components import ViewerModel

    from .controller import StudyController

#: napari dims order of each plane (the last two axes are shown: rows, then columns). napari's
#: axes point Inferior, Posterior and to the patient's Left (geometry.py), so these are upright.
PLANE_ORDER: dict[str, tuple[int, int, int]] = {"axial": (0, 1, 2), "coronal": (1, 0, 2), "sagittal": (2, 0, 1)}
#: the orientation letters: napari axis -> "from→to" (shown on the axes overlay and the sliders)
AXIS_LABELS = ("S→I", "A→P", "R→L")
#: the side views are framed this long after they are shown (ms): their canvases get their size first
FRAME_AFTER_MS = 100
#: a view asked to redraw counts as drawing for at most this long (s): a hidden canvas never draws
DRAW_WAIT_S = 0.25
#: the library's views (its "right" and "bottom" widgets) and the plane napari-hnc shows in each
_SLOTS = {"sagittal": "right_widget", "coronal": "bottom_widget"}
#: the library's view orders are relative to the last three axes
_RELATIVE = {plane: tuple(a - 3 for a in PLANE_ORDER[plane]) for plane in _SLOTS}


def label_axes(viewer: "ViewerModel") -> None:
    """Name every axis by the direction it points, and show them in the view's top left corner."""
    from napari_orthogonal_views.axes_utils import set_axes_visible

    if viewer.dims.ndim == 3:
        viewer.dims.axis_labels = AXIS_LABELS
        set_axes_visible(viewer, True)


class PlaneViews:
    """The coronal and sagittal views of one viewer (made on first :meth:`show`)."""

    def __init__(self, controller: "StudyController") -> None:
        self._controller = weakref.ref(controller)
        self._manager_ref = None
        self._bound: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._asked: dict[str, float] = {}  # view -> when it was asked to redraw and has not drawn since
        self._draw_hooks: dict[str, Any] = {}  # view -> the draw emitter its hook is connected to

    @property
    def controller(self) -> "StudyController":
        return self._controller()

    @property
    def _manager(self):
        """The library's manager (it holds the viewer, and lets go of it when the window closes: held weakly)."""
        return self._manager_ref() if self._manager_ref is not None else None

    @property
    def shown(self) -> bool:
        manager = self._manager
        return manager is not None and manager.is_shown()

    def _get_manager(self):
        manager = self._manager
        if manager is None:
            from napari.layers import Labels, Points
            from napari_orthogonal_views.ortho_view_manager import _get_manager

            _crosshair_at_the_world_point()
            manager = _get_manager(self.controller.viewer)
            manager.register_layer_hook(Labels, self._link_labels, name="napari_hnc_labels")
            # the library does not keep the clicks (a Points layer) in step: mirroring every added point and its
            # selection into the side views held the GUI 0.12-0.3 s a click (napari-hnc copies them: mirror_points)
            manager.set_layer_hook("points_selection", None)
            manager.set_sync_filters({Points: {"forward_exclude": "*", "reverse_exclude": "*"}})
            self._manager_ref = weakref.ref(manager)
        return manager

    def show(self) -> None:
        """Show the coronal and sagittal views beside the axial one, at the current world point."""
        viewer = self.controller.viewer
        point = tuple(viewer.dims.point)
        label_axes(viewer)
        manager = self._get_manager()
        manager.show()
        for plane, slot in _SLOTS.items():
            getattr(manager, slot).order = _RELATIVE[plane]
        manager.update_dims_order()  # the library's default side view lies on its side
        viewer.dims.point = point  # showing centres the crosshair on the data; stay on the lesion
        manager.set_cross_hairs(True)
        manager.set_axes(True)
        for model in self.models().values():
            self._bind(model)
        self._follow_point()
        self.controller.refiner.sync_click_mode()
        from qtpy.QtCore import QTimer

        QTimer.singleShot(FRAME_AFTER_MS, self.frame)

    def frame(self) -> None:
        """Fit the whole study into each side view (once their canvases have their size)."""
        for model in self.models().values():
            model.reset_view()

    def hide(self) -> None:
        manager = self._manager
        if manager is not None:
            manager.hide()  # it hides the main view's axes too: they are put back
            label_axes(self.controller.viewer)

    def toggle(self) -> bool:
        """Show the side views, or hide them when shown; returns whether they are shown."""
        self.hide() if self.shown else self.show()
        return self.shown

    def models(self) -> dict[str, "ViewerModel"]:
        """The side views' viewer models by plane ("coronal", "sagittal"); empty when hidden."""
        if not self.shown:
            return {}
        manager = self._manager
        return {plane: getattr(manager, slot).vm_container.viewer_model for plane, slot in _SLOTS.items()}

    def qt_viewers(self) -> dict[str, Any]:
        """The side views' Qt viewers (their canvases) by plane; empty when hidden."""
        if not self.shown:
            return {}
        manager = self._manager
        return {plane: getattr(manager, slot).qt_viewer for plane, slot in _SLOTS.items()}

    def canvases(self) -> dict[str, Any]:
        """Every view's canvas by plane: "axial" (the main view) and, when shown, "coronal" and "sagittal"."""
        main = getattr(getattr(self.controller.viewer, "window", None), "_qt_viewer", None)  # a Viewer's own canvas
        out = {"axial": main.canvas} if main is not None else {}
        out.update({plane: qt_viewer.canvas for plane, qt_viewer in self.qt_viewers().items()})
        return out

    def expect_draw(self, name: str) -> None:
        """Note that view ``name`` was asked to redraw: :meth:`drawing` is True until it has drawn."""
        canvas = self.canvases().get(name)
        if canvas is None:
            return
        emitter = canvas.events.draw
        if self._draw_hooks.get(name) is not emitter:  # a view (re)made since: hook its canvas
            emitter.connect(lambda _event=None, name=name: self._asked.pop(name, None))
            self._draw_hooks[name] = emitter
        self._asked[name] = time.perf_counter()

    def drawing(self) -> bool:
        """Whether a view asked to redraw has not drawn yet (for at most :data:`DRAW_WAIT_S`).

        Qt draws every canvas of a window that needs it in one turn, then composes the whole window
        once: asking a second view to redraw before the first has drawn puts both in one stall. Redraws
        napari-hnc asks for itself (results in the side views, click markers) wait for this."""
        now = time.perf_counter()
        self._asked = {name: when for name, when in self._asked.items() if now - when < DRAW_WAIT_S}
        return bool(self._asked)

    def _follow_point(self) -> None:
        """Keep the crosshair in every side view when the world point moves.

        The library re-centres a side view from slider indices without their start (wrong for
        millimetre worlds that do not start at 0); this runs after it and puts the point back in view.
        """
        emitters = [self.controller.viewer.dims.events.current_step]
        emitters += [model.dims.events.current_step for model in self.models().values()]
        for emitter in emitters:
            emitter.disconnect(self._keep_in_view)
            emitter.connect(self._keep_in_view, position="last")

    def _keep_in_view(self, _event=None) -> None:
        for model in (self.controller.viewer, *self.models().values()):
            keep_in_view(model)

    def _link_labels(self, original, copy) -> list:
        """A stroke in a side view is a stroke on the study's labels: its ``paint`` event is re-emitted on
        the original layer (the session and the unsaved-changes count listen to it), and Ctrl+Z there
        undoes napari-hnc's steps as in the main view (a library layer hook: returns what to undo)."""
        from .keys import HISTORY_KEYS, bind_history_keys

        def forward(event) -> None:
            original.events.paint(value=event.value)

        copy.events.paint.connect(forward)
        controller = self.controller
        if controller is not None:
            bind_history_keys(copy, controller)
        return [(copy.events.paint, forward),
                lambda: [copy.bind_key(key, None, overwrite=True) for key in HISTORY_KEYS.values()]]

    def _bind(self, model: "ViewerModel") -> None:
        """The annotation keys in a side view (a key goes to the view under the mouse)."""
        if model in self._bound:
            return
        from .keys import bind_keys

        bind_keys(model, self.controller)
        self._bound.add(model)

    def refresh(self, role: str = "labels", names: Sequence[str] | None = None) -> None:
        """Redraw the side views' copies of the study layer ``role`` (after writing into its data).

        ``names``: only these views ("coronal", "sagittal"); default all."""
        original = self.controller.layer(role)
        if original is None:
            return
        for name, model in self.models().items():
            if names is not None and name not in names:
                continue
            for layer in model.layers:
                if layer.data is original.data:
                    layer.refresh(thumbnail=False, extent=False, highlight=False)  # the thumbnail of a copy is never shown
                    self.expect_draw(name)

    def mirror_points(self, role: str = "clicks", names: Sequence[str] | None = None) -> None:
        """Copy the points (and their face colours) of the study layer ``role`` into the side views' copy of it.

        The library does not keep Points copies in step (mirroring every point and its selection held the GUI
        0.12-0.3 s a click): napari-hnc copies the click markers itself, a view per frame, once they are drawn
        in the axial view. ``names``: only these views; default all."""
        original = self.controller.layer(role)
        if original is None:
            return
        data = np.asarray(original.data, dtype=float)
        faces = np.asarray(original.face_color)
        for name, model in self.models().items():
            if names is not None and name not in names:
                continue
            copy = next((layer for layer in model.layers if layer.name == original.name), None)
            if copy is None or (len(copy.data) == len(data) and np.array_equal(np.asarray(copy.data), data)):
                continue
            set_points(copy, data, faces)
            self.expect_draw(name)


def set_points(layer, data: np.ndarray, faces: np.ndarray) -> None:
    """Give a Points layer of the study these points and face colours, without its data event.

    The points lie inside the study, so the view's dims cannot change: the data event (sent twice,
    each recomputing the viewer's dims) was half the cost of adding a click marker."""
    with layer.events.data.blocker():
        layer.data = data
    layer.face_color = faces


def _crosshair_at_the_world_point() -> None:
    """Draw the library's crosshair at the world point: it puts it at slider index x step, which leaves out
    the world's start (the first slice's position) and misses the point in every scanner file."""
    from napari_orthogonal_views.cross_hair_overlay import CrosshairOverlay, VispyCrosshairOverlay
    from napari_orthogonal_views.ortho_view_manager import overlay_to_visual  # the library's own registry

    if getattr(overlay_to_visual.get(CrosshairOverlay), "at_world_point", False):
        return

    class WorldCrosshair(VispyCrosshairOverlay):
        """The library's crosshair, at ``dims.point`` (world millimetres) instead of index x step."""

        at_world_point = True

        def _move_crosshairs(self) -> None:
            dims = self.viewer.dims
            displayed = list(dims.displayed[::-1])
            if len(displayed) == 2:  # the scene's third coordinate, as the library orders it
                displayed.append((list(dims.not_displayed[::-1]) or [0])[0])
            self.node.set_position(np.asarray(dims.point, dtype=float)[displayed])

    overlay_to_visual[CrosshairOverlay] = WorldCrosshair


def keep_in_view(model: "ViewerModel") -> None:
    """Centre a 2D view on its world point when that point is outside the part of the world it shows."""
    if model.dims.ndisplay != 2:
        return
    rows, cols = model.dims.displayed
    point = np.asarray(model.dims.point, dtype=float)[[rows, cols]]
    height, width = model.canvas.size
    camera = _camera(model)
    half = np.array([height, width], dtype=float) / (2.0 * camera.zoom)
    centre = np.asarray(camera.center, dtype=float)[-2:]
    if np.all(np.abs(point - centre) < half):
        return
    camera.center = (*camera.center[:-2], *point)


def _camera(model: "ViewerModel"):
    """The view's camera (``scene.camera`` since napari 0.9, ``camera`` before)."""
    scene = getattr(model, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else model.camera


# --------------------------------------------------------------------------- 3D


def is_3d(viewer: "ViewerModel") -> bool:
    return viewer.dims.ndisplay == 3


def toggle_3d(controller: "StudyController") -> bool:
    """The one-button 3D view: lesions as iso-surfaces over a PET maximum-intensity projection, the CT hidden.

    Pressed again, it goes back to the 2D slices with the display as it was. Returns True in 3D.
    """
    viewer = controller.viewer
    saved = getattr(controller, "_display_2d", None)
    if viewer.dims.ndisplay == 3 and saved is not None:
        for layer, state in saved.items():
            if layer in viewer.layers:
                for name, value in state.items():
                    setattr(layer, name, value)
        controller._display_2d = None
        viewer.dims.ndisplay = 2
        return False
    layers = {role: controller.layer(role) for role in ("ct", "pet", "labels")}
    controller._display_2d = {
        layer: {name: getattr(layer, name) for name in _STATE[role]}
        for role, layer in layers.items() if layer is not None
    }
    if layers["ct"] is not None:
        layers["ct"].visible = False
    if layers["pet"] is not None:
        layers["pet"].visible = True
        layers["pet"].rendering = "mip"
        layers["pet"].blending = "additive"
    if layers["labels"] is not None:
        layers["labels"].visible = True
        layers["labels"].rendering = "iso_categorical"
        layers["labels"].blending = "translucent"
    viewer.dims.ndisplay = 3
    _camera(viewer).angles = _FRONT_VIEW
    return True


#: what the 3D view changes per layer role (and puts back)
_STATE = {"ct": ("visible",), "pet": ("visible", "rendering", "blending"), "labels": ("visible", "rendering", "blending")}
#: camera (rx, ry, rz) degrees looking at the patient's front, superior up
_FRONT_VIEW = (0.0, 0.0, 90.0)


def world_to_canvas(qt_viewer: Any, world: np.ndarray) -> tuple[float, float]:
    """Canvas pixel (x, y) of a napari world point in a 2D view (for tests and scripted clicks)."""
    model = qt_viewer.viewer
    rows, cols = model.dims.displayed
    view = qt_viewer.canvas.view
    canvas = (view.transform * view.scene.transform).map([world[cols], world[rows], 0, 1])
    return float(canvas[0] / canvas[3]), float(canvas[1] / canvas[3])
