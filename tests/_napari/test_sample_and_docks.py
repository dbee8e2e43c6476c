"""Sample data contribution, the Study dock, the controller and the demo window."""

from __future__ import annotations

import nibabel as nib
import pytest
import numpy as np

import napari_hnc
from napari_hnc._napari.controller import controller_for
from napari_hnc._napari.launch import launch_demo
from napari_hnc._napari.widgets.study import StudyWidget


def test_sample_data_contribution(viewer_model):
    viewer_model.open_sample("napari-hnc", "sts001")
    names = [layer.name for layer in viewer_model.layers]
    assert names == ["STS_001 CT", "STS_001 PET", "STS_001 labels"]
    assert np.asarray(viewer_model.layers["STS_001 labels"].data).sum() == 117145  # the expert mask's voxels


def test_controller_opens_focuses_and_saves(viewer_model, tmp_path):
    study = napari_hnc.open_study(viewer_model, napari_hnc.sample_study_path())
    ctl = controller_for(viewer_model)
    assert ctl.study is study and "STS_001" in ctl.summary()
    # the sliders sit on the lesion
    lab = viewer_model.layers["STS_001 labels"]
    plane = int(round(lab.world_to_data(viewer_model.dims.point)[0]))
    assert np.asarray(lab.data)[plane].any()
    # edit and save: the file is on the CT grid and holds the edit
    lab.data[plane, 0, 0] = 2
    out = ctl.save_labels(tmp_path / "edited.nii.gz")
    saved = nib.load(out)
    ct = nib.load(napari_hnc.sample_study_path())
    assert saved.shape == ct.shape and np.allclose(saved.affine, ct.affine)
    assert (np.asanyarray(saved.dataobj) == 2).sum() == 1
    ctl.set_ct_window("bone")
    assert tuple(viewer_model.layers["STS_001 CT"].contrast_limits) == (-500.0, 1300.0)
    ctl.set_pet_display(suv_max=6.0, opacity=0.5)
    pet = viewer_model.layers["STS_001 PET"]
    assert tuple(pet.contrast_limits) == (0.0, 6.0) and pet.opacity == 0.5


def test_a_study_without_labels_gets_an_empty_labels_layer(viewer_model, tmp_path):
    from synthetic import write_hecktor2022

    paths = write_hecktor2022(tmp_path, "NOLAB", with_labels=False)
    napari_hnc.open_study(viewer_model, paths["ct"])
    lab = viewer_model.layers["NOLAB labels"]
    assert lab.data.shape == viewer_model.layers["NOLAB CT"].data.shape and not np.asarray(lab.data).any()


def test_study_dock_opens_in_a_worker_and_saves(make_napari_viewer, qtbot, tmp_path, _saved_cases):
    viewer = make_napari_viewer()
    widget = StudyWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Study")
    widget.path.value = napari_hnc.sample_study_path()
    widget.open_button.clicked.emit()
    qtbot.waitUntil(lambda: len(viewer.layers) == 3, timeout=20000)
    assert "STS_001" in widget.info.value
    widget.save_path.value = tmp_path / "dock.nii.gz"
    widget.save_button.clicked.emit()
    assert nib.load(tmp_path / "dock.nii.gz").shape == (198, 202, 59)
    # the case is also kept for "Improve the model", off the GUI thread
    qtbot.waitUntil(lambda: (_saved_cases / "cases.json").is_file(), timeout=60000)
    assert (_saved_cases / "imagesTr" / "STS_001__CT.nii.gz").is_file()
    assert nib.load(_saved_cases / "labelsTr" / "STS_001.nii.gz").shape == (198, 202, 59)
    widget.ct_window.value = "lung"
    assert tuple(viewer.layers["STS_001 CT"].contrast_limits) == (-1350.0, 150.0)


def test_study_dock_reports_a_bad_file_without_crashing(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    from napari_hnc._napari.widgets import study as study_mod

    shown = []
    monkeypatch.setattr(study_mod, "show_error", shown.append)
    viewer = make_napari_viewer()
    widget = StudyWidget(viewer)
    bad = tmp_path / "bad__CT.nii.gz"
    bad.write_bytes(b"not a nifti at all")
    widget.path.value = bad
    widget.open_button.clicked.emit()
    qtbot.waitUntil(lambda: bool(shown), timeout=20000)
    assert "bad__CT.nii.gz" in shown[0] and len(viewer.layers) == 0
    assert widget.open_button.enabled


def test_demo_window_has_the_study_and_the_docks(make_napari_viewer, monkeypatch):
    import napari

    from napari_hnc.models import registry

    monkeypatch.setattr(registry, "available_models", lambda: [])
    monkeypatch.setattr(napari, "Viewer", lambda **kw: make_napari_viewer(**kw))
    viewer = launch_demo(run=False)
    assert [l.name for l in viewer.layers] == ["STS_001 CT", "STS_001 PET", "STS_001 labels"]
    from napari_hnc._napari.widgets.dock import HncDock

    docks = viewer.window.dock_widgets
    (dock,) = [widget for widget in docks.values() if isinstance(widget, HncDock)]  # one compact dock
    assert isinstance(dock.study, StudyWidget) and dock.tabs.count() == 3
    # it opens on the lesion (the expert mask's largest lesion), not on the PET maximum
    labels = viewer.layers["STS_001 labels"]
    plane = int(round(labels.world_to_data(viewer.dims.point)[0]))
    assert np.asarray(labels.data)[plane].any()


def test_lesions_dock_measures_in_a_worker_and_exports(make_napari_viewer, qtbot, tmp_path):
    import json

    from napari_hnc._napari.widgets.lesions import LesionsWidget

    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    widget = LesionsWidget(viewer)
    widget.measure()
    qtbot.waitUntil(lambda: widget.frame is not None, timeout=30000)
    frame = widget.frame
    # the expert mask of STS_001 is one primary lesion of 117145 CT voxels
    assert len(frame) == 1 and int(frame.iloc[0].n_voxels) == 117145
    expected_ml = 117145 * abs(np.linalg.det(nib.load(napari_hnc.sample_study_path()).affine[:3, :3])) / 1000
    assert frame.iloc[0].volume_ml == pytest.approx(expected_ml, rel=1e-6)
    assert widget.table.data[0][1] == "primary tumour" and "MTV primary" in widget.totals.value
    widget.export_path.value = tmp_path / "lesions.json"
    widget._export()
    doc = json.loads((tmp_path / "lesions.json").read_text())
    assert doc["case_id"] == "STS_001" and doc["lesions"][0]["suv_max"] == pytest.approx(frame.iloc[0].suv_max)


def test_a_study_opened_with_file_open_can_be_measured(viewer_model):
    viewer_model.open(str(napari_hnc.sample_study_path()), plugin="napari-hnc")
    table = controller_for(viewer_model).quantify()
    assert len(table) == 1 and table.iloc[0].suv_max > 5


def test_demo_with_a_model_segments_and_keeps_the_reference(make_napari_viewer, monkeypatch, qtbot, tmp_path):
    import napari

    from napari_hnc.models import Model, preset_card, save_model

    card = preset_card("auto", name="tiny-auto").with_changes(
        arguments={"base_channels": 2, "depth": 1}, patch_size=(32, 32, 32), spacing_mm=(4.0, 4.0, 4.0),
        aliases=("default",))
    save_model(Model.random(card, seed=3).networks, card, tmp_path / "models")
    monkeypatch.setenv("NAPARI_HNC_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(napari, "Viewer", lambda **kw: make_napari_viewer(**kw))
    viewer = launch_demo(run=False)
    names = [l.name for l in viewer.layers]
    assert "STS_001 reference" in names and "STS_001 labels" in names
    assert np.asarray(viewer.layers["STS_001 reference"].data).sum() == 117145
    refiner = controller_for(viewer).refiner
    qtbot.waitUntil(lambda: refiner.worker.pending() == 0, timeout=60000)
    qtbot.wait(200)
    shown = np.asarray(viewer.layers["STS_001 labels"].data)
    study = napari_hnc.load_study(napari_hnc.sample_study_path()).with_labels(None)
    expected = napari_hnc.segment(study, "tiny-auto", device="cpu")
    assert np.bincount(shown.ravel(), minlength=3)[1:3].tolist() == np.bincount(
        np.asarray(expected.array).ravel(), minlength=3)[1:3].tolist()
