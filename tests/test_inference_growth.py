"""The click model's region grows until the lesion is whole: lesions larger than the region, the bound,
corrective clicks, and a click in a large lesion's cold centre.

The "model" is :class:`synthetic_pet_ct.ThresholdNet` (SUV > 4 inside its region, blind to the clicks),
so what is tested is the growth itself, not trained weights; the growth tests keep the card's spacing
(``zoom_out=False``), the zoom is tested on its own.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_hnc.inference.session import RefinementSession
from napari_hnc.study import Study
from synthetic_pet_ct import Lesion, neck_study, one_torch_thread, threshold_model  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CENTRE = (2.0, -3.0, 1.0)
RADIUS_MM = 20.0  # a 4 cm lesion ...
PATCH = (8, 8, 8)  # ... and a 2 cm region (8 voxels of 2.5 mm): the lesion is twice the region's side


@pytest.fixture(scope="module")
def large() -> Study:
    return neck_study((Lesion(CENTRE, RADIUS_MM),))


def _session(study: Study, patch=PATCH, bound: float | None = None, zoom_out: bool = False) -> RefinementSession:
    session = RefinementSession(threshold_model(click=True, patch_size=patch), device="cpu", threads=1,
                                max_region_mm=bound, zoom_out=zoom_out)
    session.set_study(study.with_labels(None))
    return session


def _within(found: np.ndarray, truth: np.ndarray, voxels: int = 2) -> bool:
    """Every voxel of ``found`` within ``voxels`` of ``truth``, and ``truth`` but its outer ``voxels`` found."""
    grown = ndimage.binary_dilation(truth, iterations=voxels)
    core = ndimage.binary_erosion(truth, iterations=voxels)
    return bool(not (found & ~grown).any() and not (core & ~found).any())


def test_a_lesion_twice_the_regions_side_comes_back_whole(large):
    session = _session(large)
    update = session.add_click(CENTRE, positive=True, label_class="primary")
    truth = np.asarray(large.labels.array) > 0
    assert _within(session.target == 1, truth)
    run = session.last_run
    assert run["passes"] > 1 and not run["cut"] and update.messages == ()
    assert all(side >= 2 * RADIUS_MM for side in run["region_mm"])  # the region grew past the lesion
    extent = np.array([s.stop - s.start for s in update.slices]) * large.grid.spacing
    assert np.all(extent >= 2 * RADIUS_MM)  # the update covers the whole grown region
    # the blended tiles agree with one pass over a region that holds the lesion from the start
    whole = _session(large, patch=(24, 24, 24))
    whole.add_click(CENTRE, positive=True, label_class="primary")
    assert whole.last_run["passes"] == 1
    assert np.array_equal(whole.target, session.target)


def test_a_lesion_smaller_than_the_region_takes_one_pass_and_is_unchanged():
    study = neck_study((Lesion(CENTRE, 9.0),))
    grown = _session(study, patch=(32, 32, 16), zoom_out=True)  # the session's defaults
    update = grown.add_click(CENTRE, positive=True, label_class="primary")
    assert grown.last_run["passes"] == 1 and update.messages == ()
    fixed = _session(study, patch=(32, 32, 16), bound=1.0)  # a bound below the region: it never grows, as before
    before = fixed.add_click(CENTRE, positive=True, label_class="primary")
    assert before.slices == update.slices
    assert np.array_equal(fixed.target, grown.target) and (grown.target == 1).any()
    assert _within(grown.target == 1, np.asarray(study.labels.array) > 0)


def test_the_bound_is_respected_and_the_warning_is_shown(large, caplog):
    session = _session(large, bound=30.0)  # 12 voxels of 2.5 mm at most, around a 4 cm lesion
    with caplog.at_level("WARNING", logger="napari_hnc"):
        update = session.add_click(CENTRE, positive=True, label_class="primary")
    run = session.last_run
    assert run["passes"] > 1 and run["cut"]
    assert all(side <= 30.0 for side in run["region_mm"])
    found = np.argwhere(session.target == 1)
    extent = (found.max(axis=0) - found.min(axis=0) + 1) * large.grid.spacing
    assert np.all(extent <= 30.0 + large.grid.spacing) and np.all(extent >= 30.0 - 2 * large.grid.spacing)
    assert len(update.messages) == 1 and "may be cut" in update.messages[0] and "3 cm a side" in update.messages[0]
    assert "may be cut" in caplog.text


def test_a_corrective_click_on_a_large_lesion_keeps_it_whole(large):
    session = _session(large)
    first = session.add_click(CENTRE, positive=True, label_class="primary")
    beside = (CENTRE[0] + 12.0, CENTRE[1], CENTRE[2] - 8.0)
    update = session.add_click(beside, positive=True, label_class="primary")
    assert update.lesion == first.lesion and not update.messages
    assert _within(session.target == 1, np.asarray(large.labels.array) > 0)
    session.undo()
    assert np.array_equal(session.target[first.slices], first.labels)


@pytest.mark.parametrize("core_mm", [8.0, 13.0])
def test_a_click_in_the_cold_centre_of_a_large_lesion_returns_the_lesion(core_mm):
    # a 4 cm lesion whose centre (a ball of core_mm) is cold like the body around it: necrosis
    study = neck_study((Lesion(CENTRE, RADIUS_MM), Lesion(CENTRE, core_mm, suv=1.0)))
    session = _session(study)
    update = session.add_click(CENTRE, positive=True, label_class="primary")
    assert _within(session.target == 1, np.asarray(study.labels.array) > 0)
    # a core the first region sees part of the rim around: the model's part at the click's PET peak, grown;
    # a core wider than the region: nothing of the model's at the click, so the PET rule draws the lesion
    fallback = [m for m in update.messages if "the PET rule (edge) drew it" in m]
    assert len(fallback) == (0 if core_mm < 10.0 else 1), update.messages


def test_a_large_lesion_is_seen_at_a_coarser_spacing_and_a_small_one_at_the_cards(large):
    session = _session(large, zoom_out=True)
    session.add_click(CENTRE, positive=True, label_class="primary")
    state = session._states[session.active_lesion]
    assert np.allclose(state.roi.grid.spacing, 2 * 2.5)  # the 4 cm lesion spans more than half the 2 cm region
    truth = np.asarray(large.labels.array) > 0
    assert _within(session.target == 1, truth, voxels=4)  # 4 CT voxels of 1.25 mm: within one 5 mm model voxel
    small = neck_study((Lesion(CENTRE, 4.0),))
    fine = _session(small, patch=(16, 16, 16), zoom_out=True)  # 4 cm region, 0.8 cm lesion
    fine.add_click(CENTRE, positive=True, label_class="primary")
    assert np.allclose(fine._states[fine.active_lesion].roi.grid.spacing, 2.5)


def _priors(session: RefinementSession) -> list[tuple[tuple[slice, ...], np.ndarray]]:
    """Record the previous mask (label grid, the lesion's ROI) each of the engine's passes starts from."""
    seen: list = []
    propose = session.engine.propose

    def spy(study, lesion):
        seen.append((lesion.roi.slices, lesion.mask.copy()))
        return propose(study, lesion)

    session.engine.propose = spy
    return seen


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_a_large_lesions_first_pass_starts_from_the_pet_rules_lesion_and_a_small_ones_from_nothing(large):
    session = _session(large, zoom_out=True)
    seen = _priors(session)
    session.add_click(CENTRE, positive=True, label_class="primary")
    assert not np.allclose(session._states[session.active_lesion].roi.grid.spacing, 2.5)  # seen zoomed out
    assert len(seen) >= 2 and not seen[0][1].any()  # the click alone first: its lesion spans more than half
    slices, prior = seen[1]                         # the card's region, so a second pass corrects the PET rule's
    truth = np.asarray(large.labels.array)[slices] > 0
    assert prior.any() and _dice(prior, truth) > 0.9  # the 41 % rule's lesion (and the first pass's): the hot ball
    small = neck_study((Lesion(CENTRE, 9.0),))
    fine = _session(small, patch=(32, 32, 16), zoom_out=True)
    seen = _priors(fine)
    fine.add_click(CENTRE, positive=True, label_class="primary")
    assert np.allclose(fine._states[fine.active_lesion].roi.grid.spacing, 2.5)
    assert len(seen) == 1 and not seen[0][1].any()  # a lesion the region holds: the click alone, as before


def test_a_large_lesions_prior_leaves_out_the_lesions_already_drawn():
    # a node (SUV 3.5, below the stand-in model's 4) touching a large primary (SUV 8): the 41 % rule from
    # the primary's peak (3.3) runs into the node, which the user has already labelled
    node_centre = (CENTRE[0] + 24.0, CENTRE[1], CENTRE[2])
    study = neck_study((Lesion(CENTRE, RADIUS_MM), Lesion(node_centre, 12.0, label=2, suv=3.5)))
    labels = np.asarray(study.labels.array)
    session = RefinementSession(threshold_model(click=True, patch_size=PATCH), device="cpu", threads=1)
    session.set_study(study.with_labels(None), np.where(labels == 2, 2, 0).astype(np.uint8))
    node = int(session.instances[study.grid.world_to_index(node_centre)])
    seen = _priors(session)
    from napari_hnc.inference.session import MODEL_UPTAKE
    from napari_hnc.pet import pet_sampler
    from napari_hnc.pet.delineation import lesion_from_click

    index = tuple(int(v) for v in np.rint(study.grid.world_to_index(np.asarray(CENTRE, float))))
    result, box = lesion_from_click(pet_sampler(study), index, MODEL_UPTAKE)
    assert (result.mask & (labels[box] == 2)).any()  # the PET rule's lesion holds part of the node
    update = session.add_click(CENTRE, positive=True, label_class="primary")
    slices, prior = seen[1]
    assert prior.any() and not (prior & (session.instances[slices] == node)).any()
    assert update.lesion != node and (session.instances == node).sum() == (labels == 2).sum()
