"""Annotation keys, bound through napari's public keybinding API (``viewer.bind_key``).

The keys are ones napari leaves free (no viewer or layer default uses them); the active
layer's own keys (1-7, P, E, ...) keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from ..conventions import NODE, PRIMARY

if TYPE_CHECKING:  # pragma: no cover
    from .controller import StudyController

#: action -> (key, what it does); shown in the docks' tooltips and the README
KEYS: dict[str, tuple[str, str]] = {
    "click_mode": ("K", "click mode on/off (left click adds, Shift+click removes)"),
    "primary": ("Q", "new lesions are primary tumour"),
    "node": ("W", "new lesions are lymph node"),
    "next_lesion": ("N", "go to the next lesion"),
    "previous_lesion": ("Shift-N", "go to the previous lesion"),
    "undo": ("U", "undo the last click, edit or proposal (Ctrl+Z on the labels too)"),
    "redo": ("Shift-U", "redo what undo took back (Ctrl+Shift+Z on the labels too)"),
    "accept": ("J", "accept the lesion being refined (lock it)"),
    "toggle_pet": ("H", "show or hide the PET"),
    "ct_window": ("G", "next CT window preset"),
    "move_point": ("T", "move every view to the point under the mouse (the crosshair's centre)"),
}


def tip(text: str, action: str) -> str:
    """A tooltip naming the action's key: ``tip("Undo", "undo") == "Undo (key U)"``."""
    return f"{text} (key {KEYS[action][0]})"


def _actions(controller: "StudyController") -> dict[str, Callable[[], object]]:
    def refiner():
        return controller.refiner

    return {
        "click_mode": lambda: refiner().set_click_mode(not refiner().click_mode),
        "primary": lambda: refiner().set_label_class(PRIMARY),
        "node": lambda: refiner().set_label_class(NODE),
        "next_lesion": lambda: controller.go_to_lesion(+1),
        "previous_lesion": lambda: controller.go_to_lesion(-1),
        "undo": lambda: refiner().undo(),
        "redo": lambda: refiner().redo(),
        "accept": lambda: refiner().accept_lesion(),
        "toggle_pet": controller.toggle_pet,
        "ct_window": controller.next_ct_window,
    }


def bind_keys(viewer, controller: "StudyController") -> None:
    """Bind :data:`KEYS` on ``viewer`` (again safe: existing napari-hnc bindings are replaced)."""
    for action, run in _actions(controller).items():
        key = KEYS[action][0]

        def callback(_viewer, run=run):
            _guarded(run)

        callback.__doc__ = KEYS[action][1]
        viewer.bind_key(key, callback, overwrite=True)
    viewer.bind_key(KEYS["move_point"][0], move_point, overwrite=True)


def move_point(viewer) -> None:
    """Move the world point (every view's slices and crosshair) to the mouse position in ``viewer``.

    It replaces the side-view library's own key, which moves to slider index position / step and
    leaves out where the world starts: in a scanner file it jumps far from the mouse."""
    position = np.asarray(viewer.cursor.position, dtype=float)
    if position.size != viewer.dims.ndim or not np.isfinite(position).all():
        return
    low = np.array([r.start for r in viewer.dims.range], dtype=float)
    high = np.array([r.stop for r in viewer.dims.range], dtype=float)
    viewer.dims.point = tuple(np.clip(position, np.minimum(low, high), np.maximum(low, high)))


#: napari's own undo keys on a Labels layer, taken over so that there is one undo history (the session's)
HISTORY_KEYS = {"undo": "Control-Z", "redo": "Control-Shift-Z"}


def bind_history_keys(layer, controller: "StudyController") -> None:
    """Ctrl+Z / Ctrl+Shift+Z on the study's labels layer undo and redo napari-hnc's steps (clicks, strokes,
    proposals), not napari's own history of the layer: two histories would undo each other's work."""
    for action, key in HISTORY_KEYS.items():
        def callback(_layer, action=action):
            _guarded(getattr(controller.refiner, action))

        callback.__doc__ = KEYS[action][1]
        layer.bind_key(key, callback, overwrite=True)


def _guarded(run: Callable[[], object]) -> None:
    from napari.utils.notifications import show_error

    from ..errors import HncError

    try:
        run()
    except HncError as exc:
        show_error(str(exc))


__all__ = ["HISTORY_KEYS", "KEYS", "bind_history_keys", "bind_keys", "tip"]
