"""Lesion instances in napari: touching lesions clicked apart, listed apart, reclassed explicitly, saved apart."""

from __future__ import annotations

import numpy as np

import napari_hnc
from napari_hnc._napari.controller import controller_for
from napari_hnc._napari.layers import META_INSTANCES
from napari_hnc.io.nifti import read_nifti
from pet_helpers import blurred_study


def _wait_idle(qtbot, refiner):
    qtbot.wait(30)
    qtbot.waitUntil(lambda: refiner.worker.pending() == 0, timeout=60000)
    qtbot.wait(50)


def test_two_touching_nodes_are_two_lesions_in_the_dock_and_on_disk(make_napari_viewer, qtbot, tmp_path):
    from napari_hnc._napari.widgets.lesions import LesionsWidget

    study, truth = blurred_study([((40, 50, 25), 8.0, 7.0, 2), ((56, 50, 25), 8.0, 6.0, 2)])
    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, study.with_labels(None))
    ctl = controller_for(viewer)
    refiner = ctl.refiner
    refiner.set_tool("PET edge (steepest slope)")
    refiner.label_class = 2
    for voxel in ((40, 50, 25), (56, 50, 25)):
        refiner.next_lesion()
        refiner.click(study.grid.voxel_to_world(voxel))
    _wait_idle(qtbot, refiner)
    layer = ctl.labels_layer()
    instances = layer.metadata[META_INSTANCES]
    assert len(set(np.unique(instances)) - {0}) == 2  # two instances, though one connected blob of class 2

    widget = LesionsWidget(viewer)
    widget.measure()
    qtbot.waitUntil(lambda: widget.frame is not None, timeout=30000)
    assert len(widget.frame) == 2 and set(widget.frame["class"]) == {2}
    widget.table.native.selectRow(1)
    lesion = widget.selected_lesion()
    widget.new_class.value = 1
    widget._set_class()  # the explicit class change, through the worker
    _wait_idle(qtbot, refiner)
    qtbot.waitUntil(lambda: widget.frame is not None and set(widget.frame["class"]) == {1, 2}, timeout=30000)
    file_labels = ctl.refiner.file_labels()
    assert set(np.unique(file_labels[instances == lesion])) == {1}

    path = ctl.save_labels(tmp_path / "TWO.nii.gz")
    saved = read_nifti(tmp_path / "TWO_instances.nii.gz").array
    assert path.is_file() and len(set(np.unique(saved)) - {0}) == 2
    back = napari_hnc.load_study(ct=_write(study.ct, tmp_path / "TWO__CT.nii.gz"),
                                 pet=_write(study.pet, tmp_path / "TWO__PT.nii.gz"), labels=path)
    assert len(napari_hnc.quantify(back)) == 2


def _write(volume, path):
    from napari_hnc.io.nifti import write_nifti

    return write_nifti(volume, path)
