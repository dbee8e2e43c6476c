"""One undo history: the plugin's Undo/Redo, its keys and napari's Ctrl+Z / Ctrl+Shift+Z on the labels are the same."""

from __future__ import annotations

import numpy as np
from napari.utils.key_bindings import KeyBinding
from qtpy.QtCore import Qt

import napari_hnc
from napari_hnc._napari.controller import controller_for
from napari_hnc._napari.keys import HISTORY_KEYS, KEYS

from .test_worker_refine import _cleared_for_clicks, _hot_spot, _wait_idle, installed_models  # noqa: F401


def _press_on_layer(layer, key):
    layer.keymap[KeyBinding.from_str(key)](layer)  # the layer's own keymap comes before napari's Labels keys


def _press(viewer, key):
    viewer.keymap[KeyBinding.from_str(key)](viewer)


def test_ctrl_z_undoes_the_plugins_steps_and_ctrl_shift_z_redoes_them(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl = controller_for(viewer)
    viewer.window.resize(1600, 1000)
    ctl.views.show()
    labels = viewer.layers["STS_001 labels"]
    labels.data[...] = 0
    refiner = ctl.refiner
    refiner.set_tool("PET 41% SUVmax")
    refiner.click(_hot_spot(ctl.study))
    _wait_idle(qtbot, refiner)
    after_click = np.array(labels.data)
    assert after_click.any()
    labels.paint((2, 2, 2), 2)  # a brush stroke far from the lesion: an edit the session records
    _wait_idle(qtbot, refiner)
    after_stroke = np.array(labels.data)
    assert after_stroke[2, 2, 2] == 2
    _press_on_layer(labels, HISTORY_KEYS["undo"])  # napari's undo key on the labels
    _wait_idle(qtbot, refiner)
    assert np.array_equal(labels.data, after_click)
    # a real Ctrl+Z in the coronal view (its copy of the labels is the active layer there)
    viewer.layers.selection.active = labels
    coronal = ctl.views.qt_viewers()["coronal"]
    coronal.canvas.native.setFocus()
    qtbot.keyClick(coronal.canvas.native, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    _wait_idle(qtbot, refiner)
    assert not np.asarray(labels.data).any()
    _press_on_layer(labels, HISTORY_KEYS["redo"])
    _wait_idle(qtbot, refiner)
    assert np.array_equal(labels.data, after_click)
    _press(viewer, KEYS["redo"][0])  # the plugin's redo key
    _wait_idle(qtbot, refiner)
    assert np.array_equal(labels.data, after_stroke)
    _press(viewer, KEYS["undo"][0])
    _wait_idle(qtbot, refiner)
    assert np.array_equal(labels.data, after_click)


def test_undo_after_a_proposal_removes_it_and_ctrl_z_does_not_bring_it_back(make_napari_viewer, qtbot,
                                                                            installed_models):  # noqa: F811
    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl = controller_for(viewer)
    labels = viewer.layers["STS_001 labels"]
    labels.data[...] = 0
    refiner = ctl.refiner
    refiner.device = "cpu"
    refiner.auto_segment("tiny-auto")
    _wait_idle(qtbot, refiner)
    proposal = np.array(labels.data)
    assert proposal.any()
    refiner.undo()  # the dock's Undo
    _wait_idle(qtbot, refiner)
    assert not np.asarray(labels.data).any()
    _press_on_layer(labels, HISTORY_KEYS["undo"])  # nothing older to undo: the proposal stays gone
    _wait_idle(qtbot, refiner)
    assert not np.asarray(labels.data).any()
    _press_on_layer(labels, HISTORY_KEYS["redo"])
    _wait_idle(qtbot, refiner)
    assert np.array_equal(labels.data, proposal)


def test_changing_the_click_tool_keeps_the_undo_history(make_napari_viewer, qtbot):
    ctl, labels, refiner = _cleared_for_clicks(make_napari_viewer())
    refiner.click(_hot_spot(ctl.study))
    _wait_idle(qtbot, refiner)
    after_click = np.array(labels.data)
    assert after_click.any()
    refiner.set_tool("PET edge (steepest slope)")
    labels.paint((2, 2, 2), 2)  # an edit made under the new tool
    _wait_idle(qtbot, refiner)
    assert "edge" in refiner._session.method  # the same session, refining with the new tool
    refiner.undo()
    _wait_idle(qtbot, refiner)
    assert np.array_equal(labels.data, after_click)
    refiner.undo()  # the click made with the first tool is undone too
    _wait_idle(qtbot, refiner)
    assert not np.asarray(labels.data).any()
    refiner.redo()
    _wait_idle(qtbot, refiner)
    assert np.array_equal(labels.data, after_click)
