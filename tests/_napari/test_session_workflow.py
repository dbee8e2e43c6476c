"""A physician's session: one study at a time, autosave and recovery, closing while busy, the keys, the docks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import nibabel as nib
import numpy as np
import pytest

import napari_hnc
from napari_hnc._napari.controller import controller_for
from napari_hnc._napari.worker import Job, TorchWorker
from napari_hnc.io.autosave import autosave_path

from .test_worker_refine import _cleared_for_clicks, _hot_spot

# each test has its own user data folder (tests/_napari/conftest.py): platformdirs honours XDG_DATA_HOME


@pytest.fixture
def two_studies(tmp_path):
    from synthetic import write_hecktor2022

    return (write_hecktor2022(tmp_path / "a", "CASEA", with_labels=False),
            write_hecktor2022(tmp_path / "b", "CASEB", with_labels=False))


def _paint_somewhere(layer, value=2):
    index = tuple(n // 2 for n in layer.data.shape)
    layer.paint(index, value)  # a real brush stroke (emits napari's paint event)
    return index


# --------------------------------------------------------------------------- exit while busy


def test_closing_the_window_while_the_worker_segments_cancels_and_joins_it(make_napari_viewer, qtbot):
    from qtpy.QtCore import QEvent
    from qtpy.QtWidgets import QApplication

    from napari_hnc._napari.widgets.dock import HncDock

    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    dock = HncDock(viewer)
    viewer.window.add_dock_widget(dock, name="napari-hnc")
    qtbot.wait(20)  # the dock attaches to its main window on the next turn of the event loop
    worker = controller_for(viewer).refiner.worker
    started, stopped = threading.Event(), []

    def slow_engine(progress, cancel):  # a segmentation that would take a minute
        started.set()
        for _ in range(6000):
            if cancel.cancelled:
                stopped.append(True)
                cancel.raise_if_cancelled()
            threading.Event().wait(0.01)

    job = worker.submit(Job("segment", slow_engine))
    assert started.wait(10)
    viewer.close()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    qtbot.waitUntil(lambda: not worker.alive, timeout=10000)
    assert job.cancel.cancelled and stopped == [True]


def test_python_exits_cleanly_while_torch_runs_in_the_worker():
    script = """
import threading, torch
from napari_hnc._napari.worker import Job, TorchWorker
started = threading.Event()
def busy(progress, cancel):
    started.set()
    x = torch.randn(256, 256)
    for _ in range(100000):
        cancel.raise_if_cancelled()
        x = torch.tanh(x @ x)
TorchWorker().submit(Job("segment", busy))
started.wait(30)
print("exiting")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr


def test_the_worker_sets_its_own_torch_threads(qtbot):
    import torch

    worker = TorchWorker(threads=1)
    seen = []
    worker.returned.connect(lambda job, result: seen.append(result))
    worker.submit(Job("threads", lambda p, c: torch.get_num_threads()))
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen == [1]  # set on the worker thread itself (OpenMP keeps the count per thread)
    worker.shutdown()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread niceness is set on Linux only")
def test_the_worker_thread_yields_the_cpu_to_the_gui(qtbot):
    import os

    from napari_hnc._napari.worker import WORKER_NICENESS

    worker = TorchWorker(threads=1, torch=False)
    seen = []
    worker.returned.connect(lambda job, result: seen.append(result))
    worker.submit(Job("nice", lambda p, c: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    gui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(gui + WORKER_NICENESS, 19)]  # the worker's thread only: the GUI thread keeps its own
    worker.shutdown()


# --------------------------------------------------------------------------- one study at a time


def test_a_second_study_replaces_the_first_and_its_unsaved_labels_are_autosaved(make_napari_viewer, two_studies,
                                                                                 monkeypatch):
    from napari.utils import notifications

    told = []
    monkeypatch.setattr(notifications, "show_info", told.append)
    a, b = two_studies
    viewer = make_napari_viewer()
    ctl = controller_for(viewer)
    napari_hnc.open_study(viewer, a["ct"])
    layer = ctl.labels_layer()
    _paint_somewhere(layer)
    painted = int((np.asarray(layer.data) == 2).sum())
    assert painted and ctl.changed
    napari_hnc.open_study(viewer, b["ct"])
    assert sorted(l.name for l in viewer.layers) == ["CASEB CT", "CASEB PET", "CASEB labels"]
    assert ctl.current_study().case_id == "CASEB" and not ctl.changed
    saved = autosave_path("CASEA")
    assert saved.is_file() and any("CASEA" in t and str(saved) in t for t in told)
    assert int((np.asarray(nib.load(saved).dataobj) == 2).sum()) == painted


def test_file_open_of_another_case_replaces_the_study_too(make_napari_viewer, two_studies):
    a, b = two_studies
    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, a["ct"])
    viewer.open(str(b["ct"]), plugin="napari-hnc")
    assert all(l.name.startswith("CASEB") for l in viewer.layers)
    assert controller_for(viewer).current_study().case_id == "CASEB"


def test_a_ct_opened_alone_then_its_pet_segment_sees_the_pet(make_napari_viewer, tmp_path, qtbot, monkeypatch):
    from synthetic import write_hecktor2022

    from napari_hnc._napari.widgets.study import StudyWidget

    paths = write_hecktor2022(tmp_path, "SOLO", with_labels=False)
    ct_only, pet_only = tmp_path / "ct_only", tmp_path / "pet_only"
    ct_only.mkdir()
    pet_only.mkdir()
    ct_file, pet_file = ct_only / "SOLO__CT.nii.gz", pet_only / "SOLO__PT.nii.gz"
    ct_file.write_bytes(paths["ct"].read_bytes())
    pet_file.write_bytes(paths["pet"].read_bytes())
    viewer = make_napari_viewer()
    widget = StudyWidget(viewer)
    ctl = controller_for(viewer)
    viewer.open(str(ct_file), plugin="napari-hnc")
    assert "SOLO" in widget.info.value and "PET" not in widget.info.value  # the dock sees File > Open
    assert ctl.current_study().pet is None
    viewer.open(str(pet_file), plugin="napari-hnc")
    assert ctl.current_study().pet is not None  # not the stale CT-only study
    assert sorted(l.name for l in viewer.layers) == ["SOLO CT", "SOLO PET"]
    assert "PET" in widget.info.value
    # the save path defaults beside the CT, and "." is never used as a file name
    from napari_hnc._napari.widgets import study as study_mod

    errors = []
    monkeypatch.setattr(study_mod, "show_error", errors.append)
    widget.save_path.value = "."
    widget._save()
    assert not errors
    assert (ct_only / "SOLO_labels.nii.gz").is_file()


def test_select_folder_opens_a_study_folder(make_napari_viewer, tmp_path, qtbot, monkeypatch):
    from synthetic import write_hecktor2022

    from napari_hnc._napari.widgets import study as study_mod

    paths = write_hecktor2022(tmp_path / "folder", "FOLD", with_labels=False)
    monkeypatch.setattr(study_mod, "choose_folder", lambda parent=None: str(paths["ct"].parent))
    viewer = make_napari_viewer()
    widget = study_mod.StudyWidget(viewer)
    widget.folder_button.clicked.emit()
    assert str(widget.path.value) == str(paths["ct"].parent)
    widget.open_button.clicked.emit()
    qtbot.waitUntil(lambda: len(viewer.layers) == 3, timeout=20000)
    assert "FOLD" in widget.info.value


# --------------------------------------------------------------------------- autosave and recovery


def test_autosave_on_the_interval_then_restore_after_a_crash(make_napari_viewer, qtbot, monkeypatch):
    monkeypatch.setenv("NAPARI_HNC_AUTOSAVE_S", "0.2")
    viewer = make_napari_viewer()
    ctl = controller_for(viewer)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    layer = ctl.labels_layer()
    layer.paint((10, 5, 5), 2)
    painted = np.array(layer.data)
    saved = autosave_path("STS_001")
    sidecar = saved.with_name("STS_001_labels_provenance.json")
    qtbot.waitUntil(sidecar.is_file, timeout=10000)  # written by the timer (in the background), nothing else
    provenance = json.loads(sidecar.read_text())
    assert provenance["session"]["edits"] == 1
    assert provenance["session"]["sources"]["ct"].endswith(".nii.gz") and provenance["session"]["opened"]
    # "the process dies": nothing else is written; a new window opens the same study
    ctl._timer.stop()
    asked = []
    viewer2 = make_napari_viewer()
    ctl2 = controller_for(viewer2)
    ctl2.ask = lambda question: asked.append(question) or True
    napari_hnc.open_study(viewer2, napari_hnc.sample_study_path())
    assert asked and "STS_001" in asked[0] and "Restore" in asked[0]
    restored = np.asarray(viewer2.layers["STS_001 labels"].data)
    assert restored[10, 5, 5] == 2 and np.array_equal(restored, painted)
    assert ctl2.changed  # restored work is unsaved until saved


def test_a_declined_restore_keeps_the_saved_labels(make_napari_viewer):
    viewer = make_napari_viewer()
    ctl = controller_for(viewer)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl.labels_layer().paint((10, 5, 5), 2)
    assert ctl.autosave(wait=True) is not None
    viewer2 = make_napari_viewer()
    ctl2 = controller_for(viewer2)
    ctl2.ask = lambda question: False
    napari_hnc.open_study(viewer2, napari_hnc.sample_study_path())
    assert np.asarray(viewer2.layers["STS_001 labels"].data)[10, 5, 5] == 0
    assert not autosave_path("STS_001").exists()


def test_a_model_result_is_autosaved_at_once(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    ctl = controller_for(viewer)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl.labels_layer().data[...] = 0
    refiner = ctl.refiner
    refiner.set_tool("PET 41% SUVmax")
    pet = ctl.study.pet
    refiner.click(pet.voxel_to_world(np.unravel_index(int(np.argmax(pet.array)), pet.shape)))
    sidecar = autosave_path("STS_001").with_name("STS_001_labels_provenance.json")
    qtbot.waitUntil(sidecar.is_file, timeout=30000)
    provenance = json.loads(sidecar.read_text())
    assert provenance["session"]["click_tool"]["method"] == "percent"
    assert provenance["lesions"] and provenance["lesions"][0]["history"]


# --------------------------------------------------------------------------- the click layer, the keys


def test_click_mode_keeps_the_slider_step(make_napari_viewer):
    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    steps = [r.step for r in viewer.dims.range]
    refiner = controller_for(viewer).refiner
    refiner.set_click_mode(True)
    pet = controller_for(viewer).study.pet
    refiner._show_click(pet.voxel_to_world(np.array(pet.shape) // 2), True)
    assert [r.step for r in viewer.dims.range] == pytest.approx(steps)  # one CT slice is one key press
    points = viewer.layers["STS_001 clicks"]
    world = np.asarray(points.data_to_world(points.data[0]))
    from napari_hnc.geometry import ras_to_napari

    assert np.allclose(world, ras_to_napari(pet.voxel_to_world(np.array(pet.shape) // 2)), atol=1e-3)


def test_click_markers_follow_the_results_and_come_together(make_napari_viewer, qtbot):
    """The labels of a click are drawn first; the markers of a burst of clicks come in one go once it pauses."""
    viewer = make_napari_viewer()
    ctl, labels, refiner = _cleared_for_clicks(viewer)
    refiner.set_click_mode(True)
    pet = ctl.study.pet
    peak = _hot_spot(ctl.study)
    corner = pet.voxel_to_world(np.array([2, 2, 2]))  # cold background: a negative click there removes nothing
    refiner.click(peak, positive=True)
    refiner.click(corner, positive=False)
    qtbot.waitUntil(lambda: np.asarray(labels.data).any(), timeout=30000)
    points = viewer.layers["STS_001 clicks"]
    assert len(points.data) == 0  # the result is on screen before any marker
    qtbot.waitUntil(lambda: len(points.data) == 2, timeout=5000)
    faces = np.asarray(points.face_color)
    assert np.allclose(faces[0], [0, 1, 0, 1]) and np.allclose(faces[1], [1, 0, 0, 1])  # green +, red -
    from napari_hnc.geometry import ras_to_napari

    assert np.allclose(points.data_to_world(points.data[0]), ras_to_napari(peak), atol=1e-3)
    qtbot.wait(500)
    assert len(points.data) == 2  # each marker drawn once


def _press(viewer, key):
    from napari.utils.key_bindings import KeyBinding

    viewer.keymap[KeyBinding.from_str(key)](viewer)


def test_annotation_keys(make_napari_viewer, qtbot):
    from napari_hnc._napari.keys import KEYS

    viewer = make_napari_viewer()
    ctl = controller_for(viewer)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    refiner = ctl.refiner
    _press(viewer, KEYS["click_mode"][0])
    assert refiner.click_mode
    _press(viewer, KEYS["click_mode"][0])
    assert not refiner.click_mode
    _press(viewer, KEYS["node"][0])
    assert refiner.label_class == 2
    _press(viewer, KEYS["primary"][0])
    assert refiner.label_class == 1
    pet = viewer.layers["STS_001 PET"]
    _press(viewer, KEYS["toggle_pet"][0])
    assert not pet.visible
    _press(viewer, KEYS["toggle_pet"][0])
    assert pet.visible
    ct = viewer.layers["STS_001 CT"]
    before = tuple(ct.contrast_limits)
    _press(viewer, KEYS["ct_window"][0])
    assert tuple(ct.contrast_limits) != before
    viewer.dims.set_point(0, viewer.dims.range[0].start)  # away from the lesion
    _press(viewer, KEYS["next_lesion"][0])
    labels = viewer.layers["STS_001 labels"]
    plane = int(round(labels.world_to_data(viewer.dims.point)[0]))
    assert np.asarray(labels.data)[plane].any() and ctl.current_lesion == 1
    refiner.set_tool("PET 41% SUVmax")
    labels.data[...] = 0
    refiner.click(ctl.study.pet.voxel_to_world(np.unravel_index(int(np.argmax(ctl.study.pet.array)),
                                                                ctl.study.pet.shape)))
    qtbot.waitUntil(lambda: np.asarray(labels.data).any(), timeout=30000)
    _press(viewer, KEYS["undo"][0])
    qtbot.waitUntil(lambda: not np.asarray(labels.data).any(), timeout=30000)
    assert "Shift" in KEYS["previous_lesion"][0]


# --------------------------------------------------------------------------- docks


def test_lesion_list_updates_after_a_click_and_a_double_click_goes_there(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QAbstractItemView

    from napari_hnc._napari.widgets.lesions import LesionsWidget

    viewer = make_napari_viewer()
    ctl = controller_for(viewer)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    widget = LesionsWidget(viewer)
    qtbot.waitUntil(lambda: widget.frame is not None and len(widget.frame) == 1, timeout=30000)  # no Measure press
    labels = ctl.labels_layer()
    labels.data[...] = 0
    refiner = ctl.refiner
    refiner.set_tool("PET 41% SUVmax")
    refiner.set_label_class(2)
    pet = ctl.study.pet
    refiner.click(pet.voxel_to_world(np.unravel_index(int(np.argmax(pet.array)), pet.shape)))
    qtbot.waitUntil(lambda: widget.frame is not None and list(widget.frame["class"]) == [2], timeout=30000)
    assert widget.table.data[0][1] == "lymph node"
    assert widget.selected_lesion() == ctl.current_lesion == int(widget.frame.iloc[0].instance)  # highlighted
    # a second lesion: from now on only the clicked region is measured again (the live table)
    qtbot.waitUntil(lambda: widget._live is not None, timeout=30000)
    refiner.next_lesion()
    refiner.set_label_class(1)
    far = np.array(pet.shape) // 2 + 5
    refiner.click(pet.voxel_to_world(far))
    qtbot.waitUntil(lambda: widget.frame is not None and 1 in set(widget.frame["class"]), timeout=30000)
    import pandas as pd

    expected = ctl.quantify()
    pd.testing.assert_frame_equal(widget.frame.reset_index(drop=True)[["instance", "class", "n_voxels", "suv_max"]],
                                  expected[["instance", "class", "n_voxels", "suv_max"]])
    table = widget.table.native
    assert table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    assert table.minimumHeight() >= 150
    viewer.dims.set_point(0, viewer.dims.range[0].start)
    table.cellDoubleClicked.emit(0, 0)
    assert table.state() != QAbstractItemView.State.EditingState
    row = widget.frame.iloc[0]
    from napari_hnc.geometry import ras_to_napari

    expected = ras_to_napari([row.centroid_x_mm, row.centroid_y_mm, row.centroid_z_mm])
    assert viewer.dims.point[0] == pytest.approx(expected[0], abs=viewer.dims.range[0].step)


def test_the_compact_dock_leaves_the_canvas_60_percent_at_1600_by_1000(make_napari_viewer, qtbot):
    from napari_hnc._napari.widgets.dock import HncDock

    viewer = make_napari_viewer(show=True)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    dock = HncDock(viewer)
    viewer.window.add_dock_widget(dock, name="napari-hnc", area="right")
    viewer.window.resize(1600, 1000)
    qtbot.wait(300)
    window = dock.window()
    canvas = window.centralWidget()
    assert window.width() == 1600
    assert canvas.width() >= 0.6 * window.width(), (canvas.width(), dock.width())
    assert [dock.tabs.tabText(i) for i in range(dock.tabs.count())] == ["Study", "Segment", "Lesions"]


def test_measuring_and_autosaving_threads_leave_torch_alone(qtbot):
    """Only the torch worker sizes torch's thread pool (resizing it waits for a running inference)."""
    import torch

    fresh = []
    plain = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    plain.start()
    plain.join()
    worker = TorchWorker(threads=1, torch=False)
    seen = []
    worker.returned.connect(lambda job, result: seen.append(result))
    worker.submit(Job("measure", lambda p, c: torch.get_num_threads()))
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen == fresh
    worker.shutdown()


def test_a_result_counts_as_pending_until_its_handlers_have_run(qtbot):
    """A job just ended is still pending while its result travels to the GUI thread: a redraw started then
    would meet the result in the same turn."""
    worker = TorchWorker(threads=1, torch=False)
    during = []
    worker.returned.connect(lambda job, result: during.append(worker.pending()))
    ended = threading.Event()
    worker.submit(Job("quick", lambda p, c: ended.set()))
    assert ended.wait(5)
    time.sleep(0.05)  # the job has ended on its thread; the GUI thread has not run its handlers yet
    assert worker.pending() == 1
    qtbot.waitUntil(lambda: bool(during), timeout=5000)
    assert during == [0] and worker.pending() == 0
    worker.submit(Job("fails", lambda p, c: 1 / 0))
    qtbot.waitUntil(lambda: worker.pending() == 0, timeout=5000)  # an error is delivered too
    worker.shutdown()


_PAINT_AND_WAIT = """
import sys, time
import numpy as np
import napari
from qtpy.QtWidgets import QApplication
import napari_hnc
from napari_hnc._napari.controller import controller_for

viewer = napari.Viewer(show=False)
napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
layer = controller_for(viewer).labels_layer()
layer.paint((10, 5, 5), 2)
np.save(sys.argv[1], np.asarray(layer.data))
app = QApplication.instance()
while True:  # work on, unsaved, until killed
    app.processEvents()
    time.sleep(0.01)
"""


def test_a_killed_napari_loses_nothing_older_than_the_autosave_interval(make_napari_viewer, tmp_path):
    """A real process is painted in, left for the interval, killed with SIGKILL; a new window restores the work."""
    import os
    import signal

    env = dict(os.environ, NAPARI_HNC_AUTOSAVE_S="0.5")
    painted_file = tmp_path / "painted.npy"
    child = subprocess.Popen([sys.executable, "-c", _PAINT_AND_WAIT, str(painted_file)], env=env)
    sidecar = autosave_path("STS_001").with_name("STS_001_labels_provenance.json")
    try:
        deadline = time.monotonic() + 120
        while not (sidecar.is_file() and painted_file.is_file()) and time.monotonic() < deadline:
            assert child.poll() is None, "the napari process ended before its autosave"
            time.sleep(0.1)
        assert sidecar.is_file(), "no autosave within 120 s"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    painted = np.load(painted_file)
    viewer = make_napari_viewer()
    ctl = controller_for(viewer)
    asked = []
    ctl.ask = lambda question: asked.append(question) or True
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    assert asked and "Restore" in asked[0]
    restored = np.asarray(viewer.layers["STS_001 labels"].data)
    assert restored[10, 5, 5] == 2 and np.array_equal(restored, painted)
