"""RefinementSession: results confined to the ROI, undo/reset, the user's edits, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_hnc.conventions import NODE, PRIMARY
from napari_hnc.errors import ClickError, ModelError, StudyError
from napari_hnc.inference.region import RegionUpdate
from napari_hnc.inference.session import RefinementSession
from napari_hnc.study import Study
from pet_helpers import blurred_study
from synthetic_pet_ct import Lesion, neck_study, one_torch_thread, threshold_model  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PRIMARY_AT, NODE_AT = (10.0, -5.0, 12.0), (-30.0, 15.0, -6.0)


@pytest.fixture(scope="module")
def study() -> Study:
    return neck_study((Lesion(PRIMARY_AT, 9.0), Lesion(NODE_AT, 6.0)))


@pytest.fixture
def session(study) -> RefinementSession:
    s = RefinementSession(threshold_model(click=True), device="cpu", threads=1)
    s.set_study(study.with_labels(None))
    return s


def _outside(update: RegionUpdate, shape) -> np.ndarray:
    mask = np.ones(shape, bool)
    mask[update.slices] = False
    return mask


def test_a_click_labels_its_lesion_inside_the_roi_and_nothing_outside(study, rng):
    session = RefinementSession(threshold_model(click=True), device="cpu", threads=1)
    target = rng.choice(np.array([0, 0, 0, 1, 2], np.uint8), size=study.grid.shape)  # the user's labels
    target[ndimage.binary_dilation(study.labels.array > 0, iterations=3)] = 0
    before = target.copy()
    session.set_study(study, target=target)
    update = session.add_click(PRIMARY_AT, positive=True, label_class="primary")
    outside = _outside(update, target.shape)
    assert outside.sum() > 0.5 * target.size  # the ROI is a small part of the volume
    assert np.array_equal(target[outside], before[outside])
    assert np.array_equal(update.labels, target[update.slices])
    found = (target == 1) & (before != 1)
    components, _ = ndimage.label(study.labels.array > 0)
    truth = components == components[study.ct.world_to_index(PRIMARY_AT)]
    assert np.all(np.abs(np.argwhere(found).mean(axis=0) - np.argwhere(truth).mean(axis=0)) <= 1.0)
    assert not (found & ~ndimage.binary_dilation(truth, iterations=2)).any()  # only the clicked lesion


def test_roi_is_about_the_cards_patch_at_the_cards_spacing(session, study):
    update = session.add_click(PRIMARY_AT)
    extent_mm = np.array([s.stop - s.start for s in update.slices]) * study.grid.spacing
    assert np.allclose(extent_mm, np.array(session.engine.model.card.patch_size) * 2.5, atol=2 * study.grid.spacing.max())


def test_undo_restores_the_region_and_reset_forgets_the_lesion(session):
    empty = session.target.copy()
    first = session.add_click(PRIMARY_AT)
    assert first.generation == 1 and first.labels.any()
    second = session.add_click(NODE_AT, label_class="node")
    assert second.generation == 2 and (session.target == 2).any()
    undone = session.undo()
    assert undone.action == "undo" and undone.slices == second.slices and undone.generation == 3
    assert not (session.target == 2).any() and (session.target == 1).any()
    reset = session.reset()  # the current lesion is the primary again
    assert reset.action == "reset" and np.array_equal(session.target, empty)
    assert session.undo() is not None and (session.target == 1).any()
    while session.undo() is not None:
        pass
    assert np.array_equal(session.target, empty)


def test_redo_brings_back_what_undo_took_and_a_new_action_makes_the_undo_final(session):
    assert session.redo() is None  # nothing undone yet
    session.add_click(PRIMARY_AT)
    after_primary = session.target.copy()
    second = session.add_click(NODE_AT, label_class="node")
    after_node = session.target.copy()
    records = {r.id: r.label for r in session.annotation.records()}
    session.undo()
    session.undo()
    assert not session.target.any()
    redone = session.redo()
    assert redone.action == "redo" and np.array_equal(session.target, after_primary)
    redone = session.redo()
    assert redone.slices == second.slices and redone.lesion == second.lesion
    assert np.array_equal(session.target, after_node)
    assert {r.id: r.label for r in session.annotation.records()} == records
    assert session.redo() is None
    session.undo()
    assert np.array_equal(session.target, after_primary)
    session.set_class(PRIMARY_AT, "node")  # a new action after the undo: the node click is gone for good
    assert session.redo() is None
    session.undo()
    assert np.array_equal(session.target, after_primary)


def test_a_click_of_another_class_refines_the_lesion_and_only_set_class_changes_it(session):
    first = session.add_click(PRIMARY_AT, label_class="primary")
    primary = session.target == 1
    session.next_lesion()
    update = session.add_click(PRIMARY_AT, label_class="node")  # a node click on the primary: it stays primary
    assert update.lesion == first.lesion and not (session.target == 2).any()
    assert np.array_equal(session.target == 1, primary | (session.target == 1)) and primary.sum() > 0
    changed = session.set_class(PRIMARY_AT, "node")  # the explicit action
    assert changed.action == "class" and not (session.target == 1).any() and (session.target == 2).sum() >= primary.sum()
    assert session.undo().action == "undo" and (session.target == 1).sum() >= primary.sum()


def test_user_edits_outside_the_lesion_come_back_as_a_small_region(session):
    session.add_click(PRIMARY_AT)
    edited = session.target.copy()
    edited[0:3, 0:2, 0:1] = 2  # a brush stroke far away
    update = session.set_mask(edited)
    assert update.action == "edit" and update.slices == (slice(0, 3), slice(0, 2), slice(0, 1))
    assert np.array_equal(session.target, edited)
    assert session.set_mask(edited) is None  # nothing changed


def test_edits_inside_the_lesion_rerun_the_model_and_keep_the_strokes(session, study):
    first = session.add_click(PRIMARY_AT)
    index = study.grid.world_to_index(PRIMARY_AT)
    region = session.target[first.slices].copy()
    local = tuple(i - s.start for i, s in zip(index, first.slices))
    region[local[0], local[1], local[2] - 1 : local[2] + 1] = 0  # erase two voxels in the lesion
    painted = (local[0] + 14, local[1], local[2])
    region[painted] = 1  # paint a voxel outside it
    update = session.set_mask(region, first.slices)
    assert update.slices == first.slices
    assert session.target[index] == 0 and session.target[first.slices][painted] == 1
    assert (session.target[first.slices] == 1).sum() > 100  # the model kept the rest of the lesion


@pytest.mark.parametrize("live", [True, False])
def test_strokes_on_a_proposals_lesion_rerun_the_model_when_live(study, live):
    # A lesion of the automatic proposal had no click state: strokes on it never re-ran the
    # model, whatever the live checkbox said. It now becomes the lesion being refined.
    session = RefinementSession(threshold_model(click=True), device="cpu", threads=1)
    session.set_study(study.with_labels(None))
    reference = session.add_click(PRIMARY_AT)
    full = session.target == 1
    session.undo()
    index = study.grid.world_to_index(PRIMARY_AT)
    half = np.zeros(study.grid.shape, np.uint8)
    half[: index[0] + 1][full[: index[0] + 1]] = 1  # the proposal drew half of the lesion
    session.set_mask(half, origin="automatic")
    assert session.active_lesion is None
    edited = session.target.copy()
    erased = tuple(np.argwhere(half == 1)[0])
    edited[erased] = 0  # one erased voxel on the proposal's lesion
    update = session.set_mask(edited[reference.slices], reference.slices, refine=live)
    lesion = session.annotation.lesion_at(index)
    assert session.target[erased] == 0  # the stroke is kept either way
    if live:
        assert update.lesion == lesion and session.active_lesion == lesion
        assert (session.target == 1).sum() > 1.5 * (half == 1).sum()  # the model drew the whole lesion again
    else:
        expected = half == 1
        expected[erased] = False
        assert np.array_equal(session.target == 1, expected)  # only the stroke


def test_click_outside_the_volume_is_refused(session):
    with pytest.raises(ClickError, match="outside the volume"):
        session.add_click((500.0, 0.0, 0.0))
    with pytest.raises(ClickError, match="class"):
        session.add_click(PRIMARY_AT, label_class=7)


def test_study_without_pet_and_non_click_models_are_refused(study):
    session = RefinementSession(threshold_model(click=True), device="cpu")
    with pytest.raises(StudyError, match="has no PET"):
        session.set_study(Study(study.ct, None, None, "CT-ONLY"))
    with pytest.raises(ModelError, match="not click-guided"):
        RefinementSession(threshold_model(click=False), device="cpu")
    with pytest.raises(StudyError, match="set_study"):
        RefinementSession(threshold_model(click=True)).add_click(PRIMARY_AT)


def test_negative_click_on_background_changes_nothing(session):
    update = session.add_click(PRIMARY_AT, positive=False)
    assert not session.target.any() and update.generation == 0


def test_a_click_that_fails_leaves_no_trace(session, monkeypatch):
    first = session.add_click(PRIMARY_AT)
    before = session.target.copy()

    def refuse(study, lesion):
        raise ClickError("no uptake at the click (simulated)")

    monkeypatch.setattr(session.engine, "propose", refuse)
    with pytest.raises(ClickError):
        session.add_click(NODE_AT, label_class="node")
    assert np.array_equal(session.target, before) and session.generation == first.generation
    monkeypatch.undo()
    assert session.undo().slices == first.slices and not session.target.any()


def test_a_click_without_uptake_makes_a_lesion_only_where_the_model_finds_one(session, study, monkeypatch):
    # a necrotic node can be cold on PET while CT shows it: the model decides, and its lesion holds the click
    cold = (25.0, -30.0, 0.0)  # body, SUV 1
    index = tuple(int(v) for v in study.grid.world_to_index(cold))
    monkeypatch.setattr(session.engine, "propose", lambda study, state: np.zeros(state.roi.shape, bool))
    with pytest.raises(ClickError, match="no uptake at the click.*the model found no lesion there either"):
        session.add_click(cold, label_class="node")
    assert not session.target.any() and session.generation == 0

    def found_there(study, state):
        mask = np.zeros(state.roi.shape, bool)
        i, j, k = state.roi.local(index)
        mask[i - 3:i + 4, j - 3:j + 4, k - 2:k + 3] = True
        mask[i + 6:i + 8, j, k] = True  # apart from the click: not this click's lesion
        return mask

    monkeypatch.setattr(session.engine, "propose", found_there)
    update = session.add_click(cold, label_class="node")
    found = session.target == NODE
    assert found[index] and update.lesion is not None
    assert found.sum() == 7 * 7 * 5 and not found[index[0] + 6, index[1], index[2]]
    with pytest.raises(ClickError, match="outside"):  # no PET there: refused before the model runs
        session.add_click((5000.0, 0.0, 0.0), label_class="node")


def test_without_click_models_the_session_falls_back_to_pet_thresholds(study, monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_HNC_MODELS", str(tmp_path))  # no click-guided model installed
    monkeypatch.setattr("napari_hnc.models.registry.bundled_dir", lambda: tmp_path / "no-bundled-models")
    session = RefinementSession()
    assert session.method == "PET threshold (edge)"  # the default click tool, chosen on real PET (docs/pet.md)
    session.set_study(study.with_labels(None))
    update = session.add_click(NODE_AT, label_class="node")
    components, _ = ndimage.label(study.labels.array > 0)
    truth = components == components[study.ct.world_to_index(NODE_AT)]
    found = session.target == 2
    dice = 2 * (found & truth).sum() / (found.sum() + truth.sum())
    assert dice > 0.7 and not found[_outside(update, found.shape)].any()
    removed = session.add_click(NODE_AT, positive=False)
    assert all(u.start <= r.start and r.stop <= u.stop for r, u in zip(removed.slices, update.slices))
    assert not session.target.any()
    with pytest.raises(ClickError):
        session.add_click((25.0, -30.0, 0.0), label_class="node")  # body, SUV 1: no uptake to grow from
    assert not session.target.any() and session.undo().action == "undo" and (session.target == 2).any()


def test_an_installed_but_broken_click_model_is_reported_not_replaced(monkeypatch, tmp_path):
    import json

    from synthetic_pet_ct import save_tiny_model

    card_path = save_tiny_model(tmp_path, "clicky", click=True)
    data = json.loads(card_path.read_text())
    data["aliases"], data["arguments"]["base_channels"] = ["click"], 6
    card_path.write_text(json.dumps(data))
    monkeypatch.setenv("NAPARI_HNC_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="does not match its weight file"):
        RefinementSession()


def test_a_lesion_cut_by_the_models_region_is_reported(study, caplog):
    # 8 x 8 x 4 cm, then 1.5 cm with a bound of 1.5 cm (the region cannot grow), around a 1.8 cm lesion
    for patch, bound, cut in (((32, 32, 16), None, False), ((6, 6, 6), 15.0, True)):
        session = RefinementSession(threshold_model(click=True, patch_size=patch), device="cpu", threads=1,
                                    max_region_mm=bound)
        session.set_study(study.with_labels(None))
        caplog.clear()
        with caplog.at_level("WARNING", logger="napari_hnc"):
            update = session.add_click(PRIMARY_AT, positive=True, label_class="primary")
        assert (update.labels == 1).any()
        assert ("reaches the" in caplog.text and "may be cut" in caplog.text) is cut, caplog.text
        assert any("may be cut" in m for m in update.messages) is cut, update.messages


def test_another_click_tool_keeps_the_lesions_and_the_undo_history():
    study, truth = blurred_study([((30, 50, 25), 8.0, 9.0, PRIMARY), ((70, 50, 25), 7.0, 6.0, NODE)])
    centres = [tuple(float(v) for v in study.grid.voxel_to_world(np.argwhere(truth == n).mean(axis=0)))
               for n in (1, 2)]
    session = RefinementSession(None, threshold="percent")
    session.set_study(study.with_labels(None))
    first = session.add_click(centres[0], True, "primary")
    session.next_lesion()
    session.set_engine(None, threshold="edge")
    assert "edge" in session.method
    second = session.add_click(centres[1], True, "node")
    assert second.lesion != first.lesion
    assert (session.target[session.instances == first.lesion] == PRIMARY).all()  # the first tool's lesion stays
    both = session.target.copy()
    session.undo()  # the edge click
    assert not (session.instances == second.lesion).any() and (session.instances == first.lesion).any()
    session.undo()  # the percent click, made before the tool changed
    assert not session.target.any()
    session.redo()
    session.redo()
    assert np.array_equal(session.target, both)
