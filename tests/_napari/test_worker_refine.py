"""The torch worker thread and click/edit refinement in napari (results on the GUI thread, region only)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from qtpy.QtCore import QThread

import napari_hnc
from napari_hnc._napari.controller import controller_for
from napari_hnc._napari.worker import Job, TorchWorker
from napari_hnc.geometry import LayerGeometry, ras_to_napari
from napari_hnc.models import Model, preset_card, save_model
from napari_hnc.models.card import ModelCard


# --------------------------------------------------------------------------- worker


def test_jobs_run_in_order_off_the_gui_thread_and_return_on_it(qtbot):
    worker = TorchWorker()
    seen, threads = [], []
    worker.returned.connect(lambda job, result: (seen.append(result), threads.append(QThread.currentThread())))
    for i in range(3):
        worker.submit(Job("n", lambda p, c, i=i: (i, threading.current_thread().name)))
    qtbot.waitUntil(lambda: len(seen) == 3, timeout=5000)
    assert [r[0] for r in seen] == [0, 1, 2]
    assert all(name == "napari-hnc torch worker" for _, name in seen)
    from qtpy.QtWidgets import QApplication

    assert all(t is QApplication.instance().thread() for t in threads)
    worker.shutdown()
    assert not worker.alive


def test_a_newer_job_with_the_same_key_supersedes_a_queued_one(qtbot):
    worker = TorchWorker()
    gate = threading.Event()
    done = []
    worker.returned.connect(lambda job, result: done.append(result))
    worker.submit(Job("block", lambda p, c: gate.wait(5) and "block"))
    for i in range(4):
        worker.submit(Job("edit", lambda p, c, i=i: f"edit{i}", key="edit"))
    worker.submit(Job("click", lambda p, c: "click"))
    gate.set()
    qtbot.waitUntil(lambda: len(done) == 3, timeout=5000)
    assert done == ["block", "edit3", "click"]
    worker.shutdown()


def test_errors_and_cancellation_come_back_as_signals(qtbot):
    from napari_hnc.errors import Cancelled, HncError

    worker = TorchWorker()
    errors, progress = [], []
    worker.errored.connect(lambda job, exc: errors.append(exc))
    worker.progressed.connect(lambda job, d, t, s: progress.append((d, t, s)))
    worker.submit(Job("bad", lambda p, c: (_ for _ in ()).throw(HncError("missing weights: train one"))))

    def long(progress_fn, cancel):
        for i in range(1000):
            progress_fn(i, 1000, "tiles")
            cancel.raise_if_cancelled()
            threading.Event().wait(0.01)

    worker.submit(Job("long", long))
    qtbot.waitUntil(lambda: len(progress) > 2, timeout=5000)
    worker.cancel()
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=5000)
    assert "missing weights" in str(errors[0]) and isinstance(errors[1], Cancelled)
    assert progress[0] == (0, 1000, "tiles")
    worker.shutdown()


# --------------------------------------------------------------------------- refinement


@pytest.fixture
def sample_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    return viewer


def _wait_idle(qtbot, refiner):
    qtbot.wait(30)  # edits are sent on the next turn of the event loop
    qtbot.waitUntil(lambda: refiner.worker.pending() == 0, timeout=60000)
    qtbot.wait(50)


def _cleared_for_clicks(viewer, tool="PET 41% SUVmax"):
    """The sample study opened in ``viewer`` with its labels cleared and a click tool chosen: (controller, labels, refiner)."""
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl = controller_for(viewer)
    labels = viewer.layers["STS_001 labels"]
    labels.data[...] = 0
    ctl.refiner.set_tool(tool)
    return ctl, labels, ctl.refiner


def _hot_spot(study):
    pet = study.pet.array
    return study.pet.voxel_to_world(np.unravel_index(int(np.argmax(pet)), pet.shape))


def test_a_pet_click_adds_a_lesion_inside_its_region_only(sample_viewer, qtbot):
    ctl = controller_for(sample_viewer)
    layer = ctl.labels_layer()
    layer.data[...] = 0
    far = (0, 0, 0)
    layer.data[far] = 2  # the user's own label far away
    refiner = ctl.refiner
    refiner.set_tool("PET 41% SUVmax")
    updates, kinds = [], []
    refiner.worker.returned.connect(lambda job, r: updates.append(r) if job.kind == "click" else None)
    refiner.worker.returned.connect(lambda job, r: kinds.append(job.kind))
    refiner.click(_hot_spot(ctl.study))
    _wait_idle(qtbot, refiner)
    (update,) = updates
    assert "edit" not in kinds  # writing the result into the layer is not taken for a user's edit
    file_labels = LayerGeometry.from_metadata(layer.metadata["napari_hnc_geometry"]).to_file(layer.data)
    lesion = file_labels == 1
    assert lesion.sum() > 50
    outside = np.ones(lesion.shape, bool)
    outside[update.slices] = False
    assert not lesion[outside].any()
    assert layer.data[far] == 2
    assert (file_labels[update.slices] == update.labels).all()
    # the click's marker follows its result once clicks pause
    qtbot.waitUntil(lambda: f"{ctl.study.case_id} clicks" in sample_viewer.layers, timeout=5000)


def test_a_result_computed_over_a_fresh_edit_is_dropped(sample_viewer, qtbot):
    ctl = controller_for(sample_viewer)
    layer = ctl.labels_layer()
    layer.data[...] = 0
    refiner = ctl.refiner
    refiner.set_tool("PET 41% SUVmax")
    refiner.live = False
    hot = _hot_spot(ctl.study)
    gate = threading.Event()
    refiner._ensure_session()
    refiner.worker.submit(Job("block", lambda p, c: gate.wait(10)))
    refiner.click(hot)  # queued behind the block
    # the user paints right on the hot spot while the click is waiting
    display = tuple(int(round(v)) for v in layer.world_to_data(ras_to_napari(hot)))
    layer.paint(display, 2)
    gate.set()
    _wait_idle(qtbot, refiner)
    file_labels = LayerGeometry.from_metadata(layer.metadata["napari_hnc_geometry"]).to_file(layer.data)
    assert (file_labels == 1).sum() == 0  # the click's lesion was dropped
    assert layer.data[display] == 2  # the stroke is kept
    # the session now sees the stroke: a new click elsewhere keeps it
    refiner.next_lesion()
    refiner.click(hot + np.array([0.0, 0.0, 0.0]))
    _wait_idle(qtbot, refiner)
    assert layer.data[display] in (1, 2)


@pytest.fixture
def installed_models(tmp_path, monkeypatch):
    """Tiny random automatic and click-guided models installed in a user model folder."""
    folder = tmp_path / "models"
    auto = preset_card("auto", name="tiny-auto").with_changes(
        arguments={"base_channels": 2, "depth": 1}, patch_size=(32, 32, 32), spacing_mm=(4.0, 4.0, 4.0),
        aliases=("default",))
    click = preset_card("click", name="tiny-click").with_changes(
        arguments={"base_channels": 2, "depth": 1, "heads": 1}, patch_size=(16, 16, 16), spacing_mm=(4.0, 4.0, 4.0),
        aliases=("click",))
    for card, seed in ((auto, 1), (click, 2)):
        save_model(Model.random(card, seed=seed).networks, card, folder)
    monkeypatch.setenv("NAPARI_HNC_MODELS", str(folder))
    return folder


def test_automatic_segmentation_fills_only_unlabelled_voxels(sample_viewer, qtbot, installed_models):
    ctl = controller_for(sample_viewer)
    layer = ctl.labels_layer()
    before = np.array(layer.data)
    refiner = ctl.refiner
    refiner.device = "cpu"
    statuses = []
    refiner.listeners.append(statuses.append)
    refiner.auto_segment("tiny-auto")
    _wait_idle(qtbot, refiner)
    after = np.asarray(layer.data)
    kept = before > 0
    assert (after[kept] == before[kept]).all()  # the expert labels stay as they were
    changed = after != before
    assert (before[changed] == 0).all()
    assert "finding the head and neck" in statuses[0]
    # the sample is a 19 cm crop of a thigh: the whole field is used, and the status line says so
    assert any("ran in the whole field: the field of view is 190 mm tall" in s for s in statuses), statuses


def test_edits_feed_back_into_the_click_model(sample_viewer, qtbot, installed_models):
    ctl = controller_for(sample_viewer)
    layer = ctl.labels_layer()
    layer.data[...] = 0
    refiner = ctl.refiner
    refiner.device = "cpu"
    refiner.set_tool("click-guided model")
    actions = []
    refiner.worker.returned.connect(lambda job, r: actions.append((job.kind, getattr(r, "action", None))))
    hot = _hot_spot(ctl.study)
    refiner.click(hot)
    _wait_idle(qtbot, refiner)
    display = tuple(int(round(v)) for v in layer.world_to_data(ras_to_napari(hot)))
    stroke = (display[0], display[1] + 2, display[2] + 2)
    value = 0 if layer.data[stroke] == 1 else 1
    layer.paint(stroke, value)  # the user paints (or erases) inside the lesion's region
    _wait_idle(qtbot, refiner)
    assert ("edit", "edit") in actions  # the model re-ran on the edited lesion
    assert layer.data[stroke] == value  # and kept the stroke


def test_strokes_on_a_loaded_lesion_rerun_the_click_model_when_live(sample_viewer, qtbot, installed_models):
    # The expert lesion of the sample was never clicked: strokes on it used to re-run nothing.
    ctl = controller_for(sample_viewer)
    layer = ctl.labels_layer()
    refiner = ctl.refiner
    refiner.device = "cpu"
    refiner.set_tool("click-guided model")
    assert refiner.live
    runs = []
    refiner.worker.returned.connect(lambda job, r: runs.append((job.kind, refiner._session.last_run.get("passes"))))
    inside = np.argwhere(np.asarray(layer.data) > 0)
    stroke = tuple(int(v) for v in inside[len(inside) // 2])
    layer.paint(stroke, 0)  # the user erases a voxel of the loaded lesion
    _wait_idle(qtbot, refiner)
    assert any(kind == "edit" and passes for kind, passes in runs), runs  # the model ran on that lesion
    assert layer.data[stroke] == 0  # and kept the stroke


def test_mouse_click_without_drag_is_a_click_and_shift_is_negative(sample_viewer):
    ctl = controller_for(sample_viewer)
    calls = []
    ctl.refiner.click = lambda world, positive=True: calls.append((np.round(world, 3), positive))
    hot = _hot_spot(ctl.study)

    def press_release(modifiers, moves=0):
        event = SimpleNamespace(button=1, type="mouse_press", position=tuple(ras_to_napari(hot)), modifiers=modifiers)
        gen = ctl.refiner.mouse_callback(sample_viewer, event)
        next(gen)
        for _ in range(moves):
            event.type = "mouse_move"
            next(gen)
        event.type = "mouse_release"
        with pytest.raises(StopIteration):
            next(gen)

    press_release([])
    press_release(["Shift"])
    press_release([], moves=2)  # a drag pans, it is not a click
    assert [p for _, p in calls] == [True, False]
    assert np.allclose(calls[0][0], hot, atol=1e-3)


def test_segment_dock_wires_the_refiner(make_napari_viewer, installed_models):
    from napari_hnc._napari.widgets.segment import SegmentWidget

    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    widget = SegmentWidget(viewer)
    assert "tiny-auto" in widget.model.choices
    widget.tool.value = "PET adaptive"
    assert widget.refiner.tool == "PET adaptive"
    widget.label_class.value = 2
    assert widget.refiner.label_class == 2
    assert widget.refiner.region == "auto"
    widget.region.value = "whole field"
    assert widget.refiner.region == "whole"
    widget.click_mode.value = True
    assert widget.refiner.mouse_callback in viewer.mouse_drag_callbacks
    widget.click_mode.value = False
    assert widget.refiner.mouse_callback not in viewer.mouse_drag_callbacks


def test_a_refinements_messages_reach_the_status_line_and_a_warning(sample_viewer, monkeypatch):
    import napari_hnc._napari.refine as refine
    from napari_hnc.inference.region import RegionUpdate

    ctl = controller_for(sample_viewer)
    refiner = ctl.refiner
    layer = ctl.labels_layer()
    file_labels = LayerGeometry.from_metadata(layer.metadata["napari_hnc_geometry"]).to_file(np.asarray(layer.data))
    box = (slice(0, 2), slice(0, 2), slice(0, 2))
    cut = "The lesion reaches the left side(s) of model hnc-click's region at its bound and may be cut there."
    update = RegionUpdate(box, np.array(file_labels[box]), 1, "click", lesion=3, messages=(cut,))
    warnings, statuses = [], []
    monkeypatch.setattr(refine, "show_warning", warnings.append)
    refiner.listeners.append(statuses.append)
    refiner._returned(Job("click", lambda progress, cancel: None, context={"edit_counter": 10**6}), update)
    assert warnings == [cut]
    assert statuses[-1] == f"Lesion 3 updated. {cut}"


def test_a_result_for_a_removed_labels_layer_is_dropped_and_makes_no_layer(sample_viewer, qtbot):
    # The user deletes the labels layer (or closes the window) while a click is computed:
    # the result has nowhere to go, and must not add a new layer to a viewer that is closing.
    ctl = controller_for(sample_viewer)
    refiner = ctl.refiner
    refiner.set_tool("PET 41% SUVmax")
    statuses = []
    refiner.listeners.append(statuses.append)
    gate = threading.Event()
    refiner.worker.submit(Job("hold", lambda progress, cancel: gate.wait(30)))  # the click waits behind this job
    refiner.click(_hot_spot(ctl.study))
    sample_viewer.layers.remove(ctl.labels_layer())
    gate.set()
    _wait_idle(qtbot, refiner)
    assert ctl.layer("labels") is None
    assert any("dropped" in text for text in statuses)


def test_the_segment_dock_chooses_the_click_model_and_another_keeps_the_lesions(make_napari_viewer, qtbot,
                                                                                installed_models):
    from napari_hnc._napari.widgets.segment import SegmentWidget

    other = preset_card("click", name="tiny-click-b").with_changes(
        arguments={"base_channels": 2, "depth": 1, "heads": 1}, patch_size=(16, 16, 16), spacing_mm=(4.0, 4.0, 4.0))
    save_model(Model.random(other, seed=5).networks, other, installed_models)
    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment")  # the window owns it and closes it with the viewer
    qtbot.wait(20)  # the dock attaches to its main window on the next turn of the event loop
    assert widget.click_model.choices[0] == "tiny-click"  # the model with the click alias comes first
    assert {"tiny-click", "tiny-click-b", "hnc-click", "hnc-click-phantoms"} <= set(widget.click_model.choices)
    assert "tiny-auto" not in widget.click_model.choices
    refiner = widget.refiner
    refiner.device = "cpu"
    widget.tool.value = "click-guided model"
    assert refiner.click_model == "tiny-click"
    layer = refiner.controller.labels_layer()
    layer.data[...] = 0
    refiner.click(_hot_spot(refiner.controller.study))
    _wait_idle(qtbot, refiner)
    session = refiner._session
    assert session.engine.model.card.name == "tiny-click"
    widget.click_model.value = "tiny-click-b"
    assert refiner.click_model == "tiny-click-b"
    refiner.click(_hot_spot(refiner.controller.study))
    _wait_idle(qtbot, refiner)
    # the same session (its lesions and undo history), refined by the other model from now on
    assert refiner._session is session and session.engine.model.card.name == "tiny-click-b"
