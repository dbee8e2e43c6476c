"""Saving like the paper: the labels with the lesion table and the fused PET/CT picture beside them."""

from __future__ import annotations

import matplotlib.image
import nibabel as nib
import numpy as np
import pandas as pd

import napari_hnc
from napari_hnc._napari import save
from napari_hnc._napari.controller import controller_for
from napari_hnc.display import report_paths


def test_file_menu_save_writes_nifti_labels_with_the_table_and_the_picture(make_napari_viewer, qtbot, tmp_path,
                                                                          monkeypatch):
    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl = controller_for(viewer)
    asked = []
    monkeypatch.setattr(save, "ask_save_path", lambda default: asked.append(default) or str(tmp_path / "mine"))
    written = save.save_labels_dialog(viewer)
    assert asked[0].name == "STS_001_labels.nii.gz"  # proposed beside the study
    assert written == tmp_path / "mine.nii.gz"  # a name without a NIfTI ending gets .nii.gz, not TIFF
    saved = np.asanyarray(nib.load(written).dataobj)
    layer = viewer.layers["STS_001 labels"]
    assert saved.dtype == np.uint8 and int(saved.sum()) == int(np.asarray(layer.data).sum())
    paths = report_paths(written)
    qtbot.waitUntil(lambda: all(p.exists() for p in paths.values()), timeout=60000)
    table = pd.read_csv(paths["table"])
    expected = ctl.quantify()
    assert list(table["volume_ml"].round(3)) == list(expected["volume_ml"].round(3)) and len(table) == 1
    picture = matplotlib.image.imread(paths["picture"])
    assert picture.shape[1] > picture.shape[0]  # one lesion's axial slice and the coronal MIP side by side


def test_the_study_dock_save_writes_the_table_and_picture_too(make_napari_viewer, qtbot, tmp_path):
    from napari_hnc._napari.widgets.study import StudyWidget

    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    widget = StudyWidget(viewer)
    widget.controller.keep_saved_cases = False
    widget.save_path.value = tmp_path / "dock_labels.nii.gz"
    widget.save_button.native.click()
    assert (tmp_path / "dock_labels.nii.gz").exists()
    paths = report_paths(tmp_path / "dock_labels.nii.gz")
    assert paths == {"table": tmp_path / "dock_labels_lesions.csv", "picture": tmp_path / "dock_labels_fusion.png"}
    qtbot.waitUntil(lambda: all(p.exists() for p in paths.values()), timeout=60000)


def test_the_save_entry_is_in_napari_file_menu():
    from npe2 import PluginManager

    menus = PluginManager.instance().get_manifest("napari-hnc").contributions.menus
    assert [m.command for m in menus["napari/file/io_utilities"]] == ["napari-hnc.save_labels_dialog"]


def test_file_menu_save_keeps_the_case_for_improving_the_model(make_napari_viewer, qtbot, tmp_path, monkeypatch,
                                                              _saved_cases):
    """File > Save labels (napari-hnc)... keeps the case like the Study dock's Save: Improve the model sees it."""
    from napari_hnc.training.saved_cases import saved_counts

    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl = controller_for(viewer)
    heard = []
    ctl.model_listeners.append(lambda: heard.append(True))
    monkeypatch.setattr(save, "ask_save_path", lambda default: str(tmp_path / "menu_labels.nii.gz"))
    assert save.save_labels_dialog(viewer) == tmp_path / "menu_labels.nii.gz"
    qtbot.waitUntil(lambda: bool(heard), timeout=60000)  # the Improve dock is told
    assert saved_counts(_saved_cases)["cases"] == 1
    kept = np.asanyarray(nib.load(_saved_cases / "labelsTr" / "STS_001.nii.gz").dataobj)
    assert int(kept.sum()) == int(np.asarray(viewer.layers["STS_001 labels"].data).sum())
