"""Multi-planar reading: linked coronal and sagittal views beside the axial one, and the 3D view."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest

import napari_hnc
from napari_hnc._napari.controller import controller_for
from napari_hnc._napari.views import AXIS_LABELS, PLANE_ORDER, toggle_3d, world_to_canvas
from napari_hnc.geometry import ras_to_napari
from synthetic import affine, save_nifti

from .test_worker_refine import _cleared_for_clicks, _hot_spot

# world RAS mm: +x the patient's left is -x, +y anterior, +z superior
MARKERS = {"left": (-40.0, 0.0, 0.0), "anterior": (0.0, 40.0, 0.0), "superior": (0.0, 0.0, 40.0)}
# where each marker must appear in each side view: (row, column) as fractions of the canvas, or None (centred)
EXPECTED = {
    ("coronal", "left"): (None, ">"),  # patient's left on screen right
    ("coronal", "superior"): ("<", None),  # head up
    ("sagittal", "anterior"): (None, "<"),  # face to screen left
    ("sagittal", "superior"): ("<", None),
}


def _ct_with_marker(tmp_path, axcodes: str, marker) -> str:
    aff = affine((2.0, 2.0, 2.0), (0, 0, 0), axcodes)
    vol = np.full((61, 61, 61), -1000, np.int16)
    aff[:3, 3] = -aff[:3, :3] @ (np.array(vol.shape) - 1) / 2  # centred on world (0, 0, 0)
    inv = np.linalg.inv(aff)
    vol[tuple(slice(int(c) - 3, int(c) + 4) for c in np.rint(inv[:3, :3] @ marker + inv[:3, 3]))] = 500
    return save_nifti(vol, aff, tmp_path / "M__CT.nii.gz")


def _show_views(viewer, qtbot):
    ctl = controller_for(viewer)
    viewer.window.resize(1600, 1000)
    ctl.views.show()
    qtbot.wait(400)  # the side views are framed once their canvases have their size
    return ctl


def _clicks_in_three_views(viewer, qtbot):
    """The sample study cleared for clicks, the side views shown and click mode on: (controller, labels, refiner)."""
    ctl, labels, refiner = _cleared_for_clicks(viewer)
    _show_views(viewer, qtbot)
    refiner.set_click_mode(True)
    return ctl, labels, refiner


def _bright_centroid(qt_viewer) -> np.ndarray:
    shot = np.asarray(qt_viewer.screenshot(flash=False))[..., :3].astype(float).mean(axis=-1)
    return np.argwhere(shot > 200).mean(axis=0) / np.array(shot.shape)


@pytest.mark.parametrize("axcodes", ["LPS", "RAS"])
@pytest.mark.parametrize("plane, where", list(EXPECTED))
def test_side_views_are_radiological_and_upright(make_napari_viewer, qtbot, tmp_path, axcodes, plane, where):
    viewer = make_napari_viewer(show=True)
    marker = MARKERS[where]
    napari_hnc.open_study(viewer, _ct_with_marker(tmp_path, axcodes, marker))
    viewer.layers["M labels"].visible = False
    viewer.dims.point = tuple(ras_to_napari(marker))  # every view passes through the marker
    ctl = _show_views(viewer, qtbot)
    model = ctl.views.models()[plane]
    assert model.dims.order == PLANE_ORDER[plane]
    assert tuple(model.dims.point) == pytest.approx(tuple(viewer.dims.point))
    row, col = _bright_centroid(ctl.views.qt_viewers()[plane])
    # the 120 mm cube fills the view's shorter side: the marker 40 mm off centre lands a sixth of that off
    for value, target in zip((row, col), EXPECTED[plane, where]):
        if target == ">":
            assert value > 0.55, (row, col)
        elif target == "<":
            assert value < 0.45, (row, col)
        else:
            assert abs(value - 0.5) < 0.03, (row, col)


def test_views_are_labelled_with_their_directions(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl = _show_views(viewer, qtbot)
    assert tuple(viewer.dims.axis_labels) == AXIS_LABELS == ("S→I", "A→P", "R→L")
    for model in ctl.views.models().values():
        assert tuple(model.dims.axis_labels) == AXIS_LABELS


def test_a_click_in_the_coronal_view_labels_the_clicked_world_point(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    ctl, labels, refiner = _clicks_in_three_views(viewer, qtbot)
    peak_ras = _hot_spot(ctl.study)
    target = ras_to_napari(peak_ras)
    viewer.dims.point = tuple(target)
    qtbot.wait(50)
    coronal = ctl.views.qt_viewers()["coronal"]
    x, y = world_to_canvas(coronal, target)
    size = coronal.canvas.native.size()
    assert 0 <= x < size.width() and 0 <= y < size.height()
    QTest.mouseClick(coronal.canvas.native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(int(round(x)), int(round(y))))
    qtbot.waitUntil(lambda: np.asarray(labels.data).any(), timeout=30000)
    # the click's marker is drawn after its result, once clicks and results pause
    qtbot.waitUntil(lambda: "STS_001 clicks" in viewer.layers and len(viewer.layers["STS_001 clicks"].data) == 1,
                    timeout=5000)
    clicks = viewer.layers["STS_001 clicks"]
    clicked = np.asarray(clicks.data_to_world(clicks.data[-1]))
    spacing = np.abs(np.diag(labels.affine.affine_matrix)[:3])
    assert np.all(np.abs(clicked - target) <= spacing)  # the click landed where it was made
    voxel = tuple(int(v) for v in np.round(labels.world_to_data(target)))
    assert labels.data[voxel] == 1  # the lesion at the PET maximum, in the primary class
    # the result is in the coronal view's copy too: it shares the labels' data
    copy = next(layer for layer in ctl.views.models()["coronal"].layers if layer.name == labels.name)
    assert copy.data is labels.data


def test_a_stroke_in_the_sagittal_view_is_an_edit_of_the_study(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl = _show_views(viewer, qtbot)
    labels = viewer.layers["STS_001 labels"]
    copy = next(layer for layer in ctl.views.models()["sagittal"].layers if layer.name == labels.name)
    ctl.refiner.file_instances()  # the session watches the labels from its first use
    assert not ctl.changed
    index = (5, 5, 5)
    assert labels.data[index] == 0
    copy.paint(index, 2)  # a brush stroke in the sagittal view
    assert labels.data[index] == 2
    assert ctl.changed and ctl.session_info["edits"] == 1
    assert ctl.refiner._edits  # fed to the session like a stroke in the main view


def test_annotation_keys_work_in_the_side_views(make_napari_viewer, qtbot):
    from napari.utils.key_bindings import KeyBinding

    from napari_hnc._napari.keys import KEYS

    viewer = make_napari_viewer(show=True)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl = _show_views(viewer, qtbot)
    coronal = ctl.views.models()["coronal"]
    coronal.keymap[KeyBinding.from_str(KEYS["click_mode"][0])](coronal)
    assert ctl.refiner.click_mode
    assert ctl.refiner.mouse_callback in coronal.mouse_drag_callbacks
    ctl.refiner.set_click_mode(False)
    assert ctl.refiner.mouse_callback not in coronal.mouse_drag_callbacks


def test_the_3d_button_shows_lesions_over_a_pet_mip_and_back(make_napari_viewer):
    viewer = make_napari_viewer()
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    ctl = controller_for(viewer)
    ct, pet, labels = (viewer.layers[f"STS_001 {n}"] for n in ("CT", "PET", "labels"))
    before = (pet.rendering, labels.rendering, ct.visible)
    assert toggle_3d(ctl) is True
    assert viewer.dims.ndisplay == 3
    assert pet.rendering == "mip" and pet.visible and not ct.visible
    assert labels.rendering == "iso_categorical" and labels.visible
    assert toggle_3d(ctl) is False
    assert viewer.dims.ndisplay == 2
    assert (pet.rendering, labels.rendering, ct.visible) == before


def test_the_study_dock_buttons_show_the_side_views_and_the_3d_view(make_napari_viewer, qtbot):
    from napari_hnc._napari.widgets.study import StudyWidget

    viewer = make_napari_viewer(show=True)
    napari_hnc.open_study(viewer, napari_hnc.sample_study_path())
    widget = StudyWidget(viewer)
    ctl = controller_for(viewer)
    widget.views_button.native.click()
    assert ctl.views.shown and set(ctl.views.models()) == {"coronal", "sagittal"}
    widget.view_3d_button.native.click()
    assert viewer.dims.ndisplay == 3 and widget.view_3d_button.text == "Back to the slices"
    widget.view_3d_button.native.click()
    assert viewer.dims.ndisplay == 2
    widget.views_button.native.click()
    assert not ctl.views.shown and ctl.views.models() == {}
    from napari_orthogonal_views.axes_utils import axes_visible

    assert axes_visible(viewer) and tuple(viewer.dims.axis_labels) == AXIS_LABELS  # the axial view keeps its letters


def test_the_side_views_redraw_after_the_main_one_and_wait_for_the_worker(make_napari_viewer, qtbot):
    import threading

    from napari_hnc._napari.worker import Job

    viewer = make_napari_viewer(show=True)
    ctl, labels, refiner = _cleared_for_clicks(viewer)
    _show_views(viewer, qtbot)
    redrawn = []
    original = ctl.views.refresh
    ctl.views.refresh = lambda role="labels", names=None: (redrawn.append(tuple(names or ())),
                                                           original(role, names))
    release = threading.Event()
    refiner.worker.submit(Job("busy", lambda p, c: release.wait(5)))  # the worker computes something
    refiner._side_views_later()
    qtbot.wait(150)
    assert redrawn == []  # no side view is drawn beside the worker's computation...
    release.set()
    qtbot.waitUntil(lambda: len(redrawn) == 2, timeout=2000)  # ...then each in a turn of its own
    assert sorted(redrawn) == [("coronal",), ("sagittal",)]


def test_each_view_redraws_a_result_in_a_frame_of_its_own(make_napari_viewer, qtbot):
    """Qt draws every canvas that needs it in one turn: a side view is asked only once the view before has drawn."""
    viewer = make_napari_viewer(show=True)
    ctl, labels, refiner = _cleared_for_clicks(viewer)
    _show_views(viewer, qtbot)
    canvases = ctl.views.canvases()
    assert sorted(canvases) == ["axial", "coronal", "sagittal"]
    seen = []
    for name, canvas in canvases.items():
        canvas.events.draw.connect(lambda _event=None, name=name: seen.append(("drew", name)))
    original = ctl.views.refresh
    ctl.views.refresh = lambda role="labels", names=None: (seen.append(("asked", names[0])), original(role, names))
    # a result written in the main view and not drawn yet: the side views wait for it
    ctl.views.expect_draw("axial")
    assert ctl.views.drawing()
    refiner._side_views_later()
    qtbot.wait(120)  # less than DRAW_WAIT_S
    assert [event for event in seen if event[0] == "asked"] == []
    qtbot.waitUntil(lambda: not ctl.views.drawing(), timeout=2000)  # a canvas that never draws is not waited for
    qtbot.waitUntil(lambda: sum(event[0] == "asked" for event in seen) == 2, timeout=3000)
    # a real click: the main view draws its result, then each side view after the one before it has drawn
    seen.clear()
    refiner.click(_hot_spot(ctl.study))
    qtbot.waitUntil(lambda: sum(event[0] == "asked" for event in seen) == 2 and seen[-1][0] == "drew", timeout=30000)
    asked = [i for i, event in enumerate(seen) if event[0] == "asked"]
    assert ("drew", "axial") in seen[:asked[0]]
    assert ("drew", seen[asked[0]][1]) in seen[asked[0]:asked[1]]
    assert np.asarray(labels.data).any()


def _crosshair_lines(qt_viewer) -> tuple[float, float]:
    """(row of the horizontal line, column of the vertical line) of the crosshair, in canvas pixels."""
    shot = np.asarray(qt_viewer.screenshot(flash=False))[..., :3].astype(int)
    coloured = (shot.max(axis=-1) - shot.min(axis=-1)) > 150  # the crosshair's cyan, magenta, yellow on a grey CT
    rows, cols = coloured.sum(axis=1), coloured.sum(axis=0)
    return float(np.argmax(rows)), float(np.argmax(cols))


@pytest.mark.parametrize("axcodes", ["LPS", "RAS"])
def test_the_crosshair_lies_at_the_world_point_in_every_view(make_napari_viewer, qtbot, tmp_path, axcodes):
    """A scanner file's world does not start at 0: the crosshair still crosses at the point the views share."""
    viewer = make_napari_viewer(show=True)
    aff = affine((2.0, 2.0, 3.0), (0, 0, 0), axcodes)
    vol = np.full((61, 61, 41), 40, np.int16)
    aff[:3, 3] = np.array([-240.0, 130.0, -870.0]) - aff[:3, :3] @ (np.array(vol.shape) - 1) / 2
    napari_hnc.open_study(viewer, save_nifti(vol, aff, tmp_path / "X__CT.nii.gz"))
    viewer.layers["X labels"].visible = False
    ctl = _show_views(viewer, qtbot)
    target = ras_to_napari(np.array([-240.0 + 24.0, 130.0 - 18.0, -870.0 + 21.0]))
    viewer.dims.point = tuple(target)
    qtbot.wait(300)
    views = {"axial": viewer.window._qt_viewer, **ctl.views.qt_viewers()}
    for plane, qt_viewer in views.items():
        x, y = world_to_canvas(qt_viewer, np.asarray(qt_viewer.viewer.dims.point))
        row, col = _crosshair_lines(qt_viewer)
        assert abs(row - y) <= 3 and abs(col - x) <= 3, (plane, (row, col), (y, x))


def test_the_move_point_key_moves_every_view_to_the_mouse(make_napari_viewer, qtbot, tmp_path):
    from napari_hnc._napari.keys import KEYS, move_point

    viewer = make_napari_viewer(show=True)
    aff = affine((2.0, 2.0, 3.0), (-300.0, 100.0, -900.0), "LPS")
    napari_hnc.open_study(viewer, save_nifti(np.full((40, 40, 30), 40, np.int16), aff, tmp_path / "Y__CT.nii.gz"))
    ctl = _show_views(viewer, qtbot)
    coronal = ctl.views.models()["coronal"]
    mouse = np.asarray(coronal.dims.point, dtype=float)
    mouse[list(coronal.dims.displayed)] += (-12.0, 9.0)  # 12 mm up, 9 mm to the screen right
    coronal.cursor.position = tuple(mouse)
    from napari.utils.key_bindings import KeyBinding

    for model in (viewer, coronal):  # over the side-view library's own T (slider index x step, off the point)
        assert model.keymap[KeyBinding.from_str(KEYS["move_point"][0])] is move_point
    move_point(coronal)
    qtbot.wait(100)
    for model in (viewer, *ctl.views.models().values()):
        assert np.allclose(model.dims.point, mouse, atol=3.0), model.dims.point  # the nearest slices
    coronal.cursor.position = tuple(mouse + 1e4)  # outside the study: the point stays inside it
    move_point(coronal)
    low = np.array([r.start for r in viewer.dims.range])
    high = np.array([r.stop for r in viewer.dims.range])
    assert np.all(np.asarray(viewer.dims.point) >= np.minimum(low, high) - 1e-6)
    assert np.all(np.asarray(viewer.dims.point) <= np.maximum(low, high) + 1e-6)


def test_click_markers_show_in_every_view(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    ctl, labels, refiner = _clicks_in_three_views(viewer, qtbot)
    peak = _hot_spot(ctl.study)
    refiner.click(peak)
    points = viewer.layers["STS_001 clicks"]
    qtbot.waitUntil(lambda: len(points.data) == 1, timeout=30000)
    for plane, model in ctl.views.models().items():
        copy = model.layers["STS_001 clicks"]
        qtbot.waitUntil(lambda copy=copy: len(copy.data) == 1, timeout=3000)
        assert np.allclose(copy.data_to_world(copy.data[0]), ras_to_napari(peak), atol=1e-3), plane
        assert np.allclose(np.asarray(copy.face_color)[0], [0, 1, 0, 1])  # green: a positive click
