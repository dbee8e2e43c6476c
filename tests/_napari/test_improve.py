"""The Improve dock: fine-tuning on the saved cases runs on the torch worker; cancel leaves the models alone."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from qtpy.QtCore import QTimer

from napari_hnc.models import Model, preset_card, save_model
from napari_hnc.models.registry import find_model
from training_data import write_dataset

TINY_CONFIG = {"patch_size": 16, "batch_size": 1, "channels_last": False, "val_max_cases": 1, "warmup_steps": 1}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A tiny automatic model installed in a user model folder and two saved cases."""
    models = tmp_path / "models"
    card = preset_card("auto", name="tiny-auto").with_changes(
        arguments={"base_channels": 2, "depth": 1}, patch_size=(32, 32, 32), spacing_mm=(4.0, 4.0, 4.0),
        training={"config": TINY_CONFIG})
    save_model(Model.random(card, seed=1).networks, card, models)
    monkeypatch.setenv("NAPARI_HNC_MODELS", str(models))
    monkeypatch.setenv("NAPARI_HNC_SAVED_CASES", str(write_dataset(tmp_path / "saved", n=2)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return models


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _user(choices) -> list[str]:
    return sorted(c for c in choices if c.startswith("tiny"))


def _dock(make_napari_viewer):
    from napari_hnc._napari.widgets.improve import ImproveWidget
    from napari_hnc._napari.widgets.segment import SegmentWidget

    viewer = make_napari_viewer()
    return ImproveWidget(viewer), SegmentWidget(viewer)


def test_improve_runs_on_the_worker_the_viewer_stays_responsive_and_a_new_version_appears(
        make_napari_viewer, qtbot, setup, monkeypatch):
    import napari_hnc.training.improve as improve

    threads = []
    original = improve.improve_model

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(improve, "improve_model", recording)
    dock, segment = _dock(make_napari_viewer)
    assert _user(dock.model.choices) == ["tiny-auto"] and "2 case(s) saved" in dock.cases.value
    ticks = []
    clock = QTimer()
    clock.timeout.connect(lambda: ticks.append(threading.current_thread() is threading.main_thread()))
    clock.start(20)
    dock.epochs.value, dock.steps.value = 1, 3
    dock.improve()
    assert not dock.improve_button.enabled
    qtbot.waitUntil(lambda: dock.job is None, timeout=120000)
    clock.stop()
    assert threads == ["napari-hnc torch worker"]  # off the GUI thread
    assert len(ticks) >= 5 and all(ticks)  # the GUI thread kept running its timers meanwhile
    assert dock.improve_button.enabled and "tiny-auto-v2" in dock.status.value
    assert _user(dock.model.choices) == ["tiny-auto", "tiny-auto-v2"]  # the previous version stays
    assert _user(segment.model.choices) == ["tiny-auto", "tiny-auto-v2"]
    card = find_model("tiny-auto-v2").card
    assert card.training["finetuned_from"]["name"] == "tiny-auto"
    assert card.training["cases_used"] == ["SYN-000", "SYN-001"]
    assert (setup / "tiny-auto-v2" / "tiny-auto-v2.safetensors").is_file()


def test_cancelling_leaves_the_installed_models_untouched(make_napari_viewer, qtbot, setup):
    dock, _ = _dock(make_napari_viewer)
    before = _snapshot(setup)
    progressed = []
    dock.worker.progressed.connect(lambda job, done, total, text: progressed.append(done))
    dock.epochs.value, dock.steps.value = 1, 10000
    dock.improve()
    qtbot.waitUntil(lambda: len(progressed) >= 1, timeout=120000)
    dock.cancel_button.clicked.emit()
    qtbot.waitUntil(lambda: dock.job is None, timeout=60000)
    assert "Not improved" in dock.status.value and "cancel" in dock.status.value
    assert _snapshot(setup) == before  # nothing added, nothing half-written, nothing changed
    assert sorted(p.name for p in setup.iterdir()) == ["tiny-auto.json", "tiny-auto.safetensors"]
    assert _user(dock.model.choices) == ["tiny-auto"]
