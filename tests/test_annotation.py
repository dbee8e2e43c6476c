"""Many lesions in one study: instances, the click rules, touching lesions, save and reload (issue 13)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import napari_hnc
from napari_hnc import Click, delineate
from napari_hnc.annotation import Annotation, Claim, components
from napari_hnc.errors import ClickError
from napari_hnc.inference.session import RefinementSession
from pet_helpers import blurred_study

PRIMARY, NODE = 1, 2


def world(study, voxel):
    return tuple(float(v) for v in study.grid.voxel_to_world(np.asarray(voxel, float)))


def dice(a, b):
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def chain():
    """A primary (r 10 mm, SUV 10) touching a node (r 7 mm, SUV 6) that touches another node (r 6 mm, SUV 5)."""
    return blurred_study([((40, 50, 25), 10.0, 10.0, PRIMARY), ((57, 50, 25), 7.0, 6.0, NODE),
                          ((70, 50, 25), 6.0, 5.0, NODE)])


def clicks_of(study, truth):
    labels = study.labels.array
    out = []
    for number in range(1, int(truth.max()) + 1):
        centre = np.round(np.argwhere(truth == number).mean(axis=0)).astype(int)
        out.append(Click(world(study, centre), label=int(labels[tuple(centre)])))
    return out


@pytest.mark.parametrize("method, least", [("edge", 0.75), ("percent", 0.4)])
def test_one_click_per_lesion_keeps_touching_lesions_apart_with_their_classes(chain, method, least):
    # 41 % of SUVmax takes the primary's SUVmax for the node that merges into it on PET: a lower bar
    study, truth = chain
    labels = delineate(study.with_labels(None), clicks_of(study, truth), method)
    instances = labels.metadata["instances"]
    assert int(instances.max()) == 3 and len(np.unique(instances)) == 4  # three instances, one per click
    for number, label in ((1, PRIMARY), (2, NODE), (3, NODE)):
        mine = instances == np.bincount(instances[truth == number], minlength=2)[1:].argmax() + 1
        assert dice(mine, truth == number) > least, (method, number)
        assert set(np.unique(labels.array[mine])) == {label}
    table = napari_hnc.quantify(study, labels)
    assert list(table["class"]) == [1, 2, 2] and table["instance"].nunique() == 3  # touching nodes reported apart


def test_shuffled_click_orders_give_the_same_union_and_instances(chain):
    study, truth = chain
    clicks = clicks_of(study, truth)
    results = [delineate(study.with_labels(None), list(order), "edge") for order in itertools.permutations(clicks)]
    first = results[0]
    for other in results[1:]:
        assert np.array_equal(other.array > 0, first.array > 0)  # the union
        assert np.array_equal(other.array, first.array)  # and who owns each voxel's class
    session_results = []
    for order in (clicks, clicks[::-1]):
        session = RefinementSession(None)
        session.set_study(study.with_labels(None))
        for click in order:
            session.next_lesion()
            session.add_click(click.world, True, click.label)
        session_results.append(session.target > 0)
    assert np.array_equal(session_results[0], session_results[1])
    assert np.array_equal(session_results[0], first.array > 0)  # the session follows the same rules


def test_a_node_click_never_relabels_or_takes_the_primary(chain):
    study, truth = chain
    primary_click, node_click, _ = clicks_of(study, truth)
    session = RefinementSession(None)
    session.set_study(study.with_labels(None))
    first = session.add_click(primary_click.world, True, "primary")
    primary_before = session.instances == first.lesion
    session.next_lesion()
    update = session.add_click(node_click.world, True, "node")
    assert update.lesion != first.lesion
    primary_after = session.instances == first.lesion
    assert (session.target[primary_after] == PRIMARY).all()  # its class
    own = truth == 1
    assert (primary_after | ~(primary_before & own)).all()  # every voxel it had of the true primary it keeps
    assert not (primary_after & ~primary_before).any()  # and it gained nothing from the node click
    session.next_lesion()
    again = session.add_click(primary_click.world, True, "node")  # a node click *on* the primary refines it
    assert again.lesion == first.lesion and (session.target[session.instances == first.lesion] == PRIMARY).all()


def test_touching_nodes_stay_two_instances_through_save_and_reload(tmp_path):
    study, truth = blurred_study([((40, 50, 25), 8.0, 7.0, NODE), ((56, 50, 25), 8.0, 6.0, NODE)])
    labels = delineate(study.with_labels(None), clicks_of(study, truth), "edge")
    assert len(components(labels.array).ravel().nonzero()[0]) and components(labels.array).max() == 1  # one blob
    assert labels.metadata["instances"].max() == 2  # two lesions
    path = napari_hnc.save_labels(labels, study.grid, tmp_path / "CASE.nii.gz")
    assert (tmp_path / "CASE_instances.nii.gz").is_file() and (tmp_path / "CASE_provenance.json").is_file()
    back = napari_hnc.load_study(ct=_write(study.ct, tmp_path / "CASE__CT.nii.gz"),
                                 pet=_write(study.pet, tmp_path / "CASE__PT.nii.gz"), labels=path)
    assert np.array_equal(back.labels.metadata["instances"], labels.metadata["instances"])
    table = napari_hnc.quantify(back)
    assert len(table) == 2 and set(table["class"]) == {NODE}
    record = back.labels.metadata["provenance"]["lesions"]
    assert [r["origin"] for r in record] == ["click", "click"] and record[0]["history"][0]["method"] == "edge"


def _write(volume, path):
    from napari_hnc.io.nifti import write_nifti

    return write_nifti(volume, path)


@pytest.mark.parametrize("method", ["edge", "percent", "adaptive"])
def test_a_click_in_a_cold_centre_grows_to_the_lesions_extent(method):
    # a 25 mm necrotic mass: a hot rim (SUV 8) around a 16 mm core of SUV 0.5, clicked at its centre
    study, truth = blurred_study([((50, 50, 25), 25.0, 8.0, NODE, 16.0)])
    labels = delineate(study.with_labels(None), [Click(world(study, (50, 50, 25)), label=NODE)], method)
    found = labels.array == NODE
    assert found[50, 50, 25]  # the click's voxel is in its lesion
    assert dice(found, truth == 1) > 0.8


def test_a_click_with_no_lesion_under_it_makes_nothing_and_says_why(chain):
    study, truth = chain
    with pytest.raises(ClickError, match="no uptake at the click.*no lesion rim surrounds it"):
        delineate(study.with_labels(None), [Click(world(study, (5, 5, 5)), label=NODE)])
    session = RefinementSession(None)
    session.set_study(study.with_labels(None))
    with pytest.raises(ClickError, match="no uptake"):
        session.add_click(world(study, (5, 5, 5)), True, "node")
    assert not session.target.any() and session.generation == 0


def test_the_lesion_of_a_click_holds_the_clicked_voxel_or_its_peak(chain):
    study, truth = chain
    for click in clicks_of(study, truth):
        labels = delineate(study.with_labels(None), [click], "percent")
        index = study.grid.world_to_index(click.world)
        assert labels.array[index] == click.label


def test_a_negative_click_removes_only_from_the_lesion_it_lies_in(chain):
    study, truth = chain
    clicks = clicks_of(study, truth)
    labels = delineate(study.with_labels(None), clicks, "edge")
    before = labels.metadata["instances"].copy()
    node = int(before[study.grid.world_to_index(clicks[2].world)])
    removed = delineate(study.with_labels(None), [Click(clicks[2].world, positive=False)], labels=labels)
    after = removed.metadata["instances"]
    assert not (after == node).any()
    assert np.array_equal(after[before != node], before[before != node])  # the others are untouched


def test_class_changes_are_explicit_and_every_click_is_safe(chain):
    study, truth = chain
    clicks = clicks_of(study, truth)
    labels = delineate(study.with_labels(None), clicks, "edge", set_class=[f"{','.join(map(str, clicks[0].world))}:node"])
    assert not (labels.array == PRIMARY).any()
    rng = np.random.default_rng(0)
    session = RefinementSession(None)
    session.set_study(study.with_labels(labels))
    ids = set(np.unique(session.instances)) - {0}
    removed = set()  # the lesions a negative click landed on: it removes their part holding the click
    for _ in range(25):  # clicks anywhere, of either sign and class: a clear refusal or a change by the rules
        voxel = [int(rng.integers(0, n)) for n in study.grid.shape]
        positive = bool(rng.random() < 0.7)
        if not positive:
            removed.add(int(session.instances[tuple(voxel)]))
        try:
            session.add_click(world(study, voxel), positive, int(rng.integers(1, 3)))
        except ClickError:
            pass
        if rng.random() < 0.5:
            session.next_lesion()
    survivors = set(np.unique(session.instances)) - {0}
    assert ids <= survivors | removed
    assert len(ids - survivors) < len(ids)  # not every lesion was clicked away


def test_an_annotation_without_instances_takes_the_components_and_reconciles_a_stale_map():
    labels = np.zeros((8, 8, 8), np.uint8)
    labels[1:3, 1:3, 1:3] = 1
    labels[5:7, 5:7, 5:7] = 2
    stale = np.zeros(labels.shape, np.uint16)
    stale[1:3, 1:3, 1:3] = 7
    stale[0, 0, 0] = 9  # an instance voxel with no label
    annotation = Annotation(labels.copy(), stale)
    assert annotation.lesion_at((1, 1, 1)) == 7 and annotation.lesion_at((0, 0, 0)) == 0
    assert annotation.lesion_at((5, 5, 5)) not in (0, 7)  # the unlabelled-in-the-map lesion became an instance
    change = annotation.place(annotation.lesion_at((5, 5, 5)), Claim((slice(4, 8),) * 3, np.ones((4, 4, 4), bool)), None)
    assert (annotation.labels[4:8, 4:8, 4:8] == 2).all() and (annotation.labels[1:3, 1:3, 1:3] == 1).all()
    annotation.undo(change)
    assert np.array_equal(annotation.labels, labels)


def test_a_locked_lesion_keeps_its_voxels_and_refuses_clicks(chain):
    from napari_hnc.pet.delineation import annotated_volume

    study, truth = chain
    clicks = clicks_of(study, truth)
    made = delineate(study.with_labels(None), clicks, "edge")
    annotation = Annotation(np.array(made.array), made.metadata["instances"].copy(),
                            made.metadata["provenance"]["lesions"])
    primary = annotation.lesion_at(study.grid.world_to_index(clicks[0].world))
    annotation.set_locked(primary)
    locked = annotated_volume(study.grid, annotation)
    before = locked.metadata["instances"] == primary
    again = delineate(study.with_labels(None), [clicks[2]], "percent", labels=locked)  # refines node 3
    assert np.array_equal(again.metadata["instances"] == primary, before)
    with pytest.raises(ClickError, match="locked"):
        delineate(study.with_labels(None), [clicks[0]], "edge", labels=locked)


@pytest.fixture(scope="module")
def shoulder():
    """A small cooler node (r 6 mm, SUV 4) on the flank of a hot primary (r 14 mm, SUV 12): on PET it has no maximum of its own."""
    return blurred_study([((40, 50, 25), 14.0, 12.0, PRIMARY), ((60, 50, 25), 6.0, 4.0, NODE)])


@pytest.mark.parametrize("method", ["edge", "percent"])
def test_a_cooler_node_on_the_slope_of_a_hotter_lesion_keeps_its_side(shoulder, method):
    # The snap climbs from the node's centre into the primary, and the watershed of -PET alone
    # gives the primary everything hotter than the node's click: the node kept 1 voxel (edge)
    # or half its volume. It now grows from its own click and keeps the ball around it.
    study, truth = shoulder
    labels = delineate(study.with_labels(None), clicks_of(study, truth), method)
    instances = labels.metadata["instances"]
    for number, least in ((1, 0.9), (2, 0.7)):
        mine = instances == np.bincount(instances[truth == number], minlength=2)[1:].argmax() + 1
        assert dice(mine, truth == number) > least, (method, number)


@pytest.mark.parametrize("method", ["edge", "percent", "adaptive"])
@pytest.mark.parametrize("outside_mm", [1, 2])
def test_a_click_on_the_blurred_rim_just_outside_a_lesion_gives_that_lesion(method, outside_mm):
    study, truth = blurred_study([((50, 50, 25), 10.0, 8.0, NODE)])
    centre = world(study, (50, 50, 25))
    click = Click((centre[0] + (10 + outside_mm) * np.sign(study.grid.affine[0, 0]), centre[1], centre[2]), label=NODE)
    assert not truth[study.grid.world_to_index(click.world)]
    labels = delineate(study.with_labels(None), [click], method)
    assert dice(labels.array > 0, truth > 0) > 0.85


@pytest.mark.parametrize("node_suv", [5.0, 7.0])
def test_after_finish_lesion_a_click_on_a_node_the_primary_leaked_over_starts_its_own(node_suv):
    # A cooler node on a hot primary's flank (SUV 5-7 against 12): the primary's region, or the
    # peak the node click snaps to, lies over the node, and a node click after "Finish lesion"
    # used to refine the primary: the node was lost in it (node Dice 0.08).
    study, truth = blurred_study([((40, 50, 25), 14.0, 12.0, PRIMARY), ((60, 50, 25), 6.0, node_suv, NODE)])
    primary_click, node_click = clicks_of(study, truth)
    session = RefinementSession(None, threshold="edge")
    session.set_study(study.with_labels(None))
    primary = session.add_click(primary_click.world, True, "primary").lesion
    session.next_lesion()
    node = session.add_click(node_click.world, True, "node").lesion
    assert node != primary
    assert dice(session.instances == node, truth == 2) > 0.7
    assert dice(session.instances == primary, truth == 1) > 0.9
    assert (session.target[session.instances == primary] == PRIMARY).all()
    # the same clicks in one delineate call give the same lesions
    made = delineate(study.with_labels(None), [primary_click, node_click], "edge")
    assert np.array_equal(made.array, session.target)
    # a click on the primary's own uptake, away from its click, still refines the primary
    session.next_lesion()
    plateau = world(study, (33, 50, 25))
    assert session.add_click(plateau, True, "node").lesion == primary
    assert len([r for r in session.annotation.records()]) == 2


def _hot_against_faint(interface: int = 24):
    """A hot block (SUV 10) touching a faint one (SUV 4 at its sides, 5 at its centre, x = 40) at ``interface``,
    blurred by a 5 mm FWHM PSF (1 mm voxels)."""
    from scipy import ndimage

    sharp = np.full((12, 12, 64), 1.0)
    sharp[2:10, 2:10, 6:interface] = 10.0
    x = np.arange(interface, 56)
    sharp[2:10, 2:10, interface:56] = 4.0 + 1.0 - np.abs(x - 40) / 16.0
    return ndimage.gaussian_filter(sharp, 5.0 / 2.355)


def test_touching_lesions_of_different_uptake_meet_nearer_the_edge_between_them():
    from types import SimpleNamespace

    from skimage.segmentation import watershed

    from napari_hnc.annotation import SHARE_BAND_MM, watershed_share

    pet = _hot_against_faint(24)
    claim = np.zeros(pet.shape, bool)
    claim[1:11, 1:11, 3:61] = True  # each click's region leaks over the other lesion
    box = tuple(slice(0, n) for n in pet.shape)
    peaks = {1: [(6, 6, 15)], 2: [(6, 6, 40)]}
    # the dip of uptake alone lies well inside the faint block: the hot one's blur pushed it there
    markers = np.zeros(pet.shape, np.int32)
    markers[6, 6, 15], markers[6, 6, 40] = 1, 2
    by_dip = int(np.flatnonzero(watershed(-pet, markers, mask=claim, connectivity=3)[6, 6] == 2)[0])
    assert by_dip >= 24 + 4
    out = watershed_share({1: claim, 2: claim.copy()}, peaks, box, SimpleNamespace(box=lambda b: pet[b],
                                                                                   spacing=(1.0, 1.0, 1.0)))
    first_faint = int(np.flatnonzero(out[2][6, 6])[0])
    assert 24 <= first_faint <= by_dip - SHARE_BAND_MM + 1  # moved towards the edge, as far as the band allows
    assert not (out[1] & out[2]).any() and np.array_equal(out[1] | out[2], claim)


def test_a_fresh_click_beside_a_click_lesion_whose_uptake_climbs_into_it_starts_its_own(chain):
    from scipy import ndimage

    from napari_hnc.pet import pet_sampler

    study, truth = chain
    primary_click = clicks_of(study, truth)[0]
    session = RefinementSession(None)
    session.set_study(study.with_labels(None))
    lesion = session.add_click(primary_click.world, True, "primary").lesion
    annotation = session.annotation
    mine = annotation.instances == lesion
    beside = tuple(int(v) for v in np.argwhere(ndimage.binary_dilation(mine) & ~mine)[0])  # just outside it
    sampler = pet_sampler(study)
    peak = annotation.peak_of(lesion, sampler)
    assert annotation.lesion_at(beside) == 0 and annotation.lesion_at(peak) == lesion
    # without Finish lesion, a click whose peak lies in the lesion refines it; after it, the click starts another
    assert annotation.decide(beside, True, peak=peak, pet=sampler, fresh=False) == ("refine", lesion)
    assert annotation.decide(beside, True, peak=peak, pet=sampler, fresh=True) == ("new", None)


@pytest.mark.parametrize("method", ["percent", "edge"])
def test_after_finish_lesion_a_click_on_the_next_node_of_a_chain_starts_its_own(method):
    # Two nodes of the same uptake, fused 10 mm apart, blurred into one blob with no dip between them (no
    # second peak to divide at): the first node's region covers the second, and a node click on the second
    # after "Finish lesion" used to refine the first (the second node was lost in it).
    study, truth = blurred_study([((40, 50, 25), 7.0, 6.0, NODE), ((50, 50, 25), 7.0, 6.0, NODE)])
    first_click, second_click = clicks_of(study, truth)
    session = RefinementSession(None, threshold=method)
    session.set_study(study.with_labels(None))
    first = session.add_click(first_click.world, True, "node").lesion
    assert (session.instances == first)[truth == 2].mean() > 0.5  # it covers most of the second node
    session.next_lesion()
    second = session.add_click(second_click.world, True, "node").lesion
    assert second != first
    for lesion, number in ((first, 1), (second, 2)):
        assert dice(session.instances == lesion, truth == number) > 0.7
    # a click near a lesion's own click, or of another class, still refines the lesion it lies on
    session.next_lesion()
    near = world(study, (42, 50, 25))  # 2 mm from the first node's click
    assert session.add_click(near, True, "node").lesion == first
    session.next_lesion()
    assert session.add_click(world(study, (54, 50, 25)), True, "primary").lesion == second
    assert (session.target[session.instances == second] == NODE).all()
    assert len(session.annotation.records()) == 2


def test_dividing_a_loaded_lesion_by_a_claim_without_a_pet_peak_uses_the_click(chain):
    """A model click whose PET peak climbs into a neighbour (or a cold click) has no peak of its own; a
    divide of a loaded lesion then seeds the new side from the clicked voxel (it raised a TypeError)."""
    from napari_hnc.inference.session import pet_sampler

    study, truth = chain
    merged = ((truth == 1) | (truth == 2)).astype(np.uint8)  # primary and first node loaded as one lesion
    annotation = Annotation(merged.copy())
    (loaded,) = [r.id for r in annotation.records()]
    node = truth == 2
    box = tuple(slice(int(lo), int(hi) + 1) for lo, hi in zip(np.argwhere(node).min(0), np.argwhere(node).max(0)))
    centre = tuple(int(v) for v in np.round(np.argwhere(node).mean(axis=0)))
    record = annotation.new_lesion(NODE, origin="click", event={})
    annotation.divide(loaded, record.id, Claim(box, node[box], None), pet_sampler(study), seed=centre)
    mine = annotation.instances == record.id
    assert dice(mine, node) > 0.8 and annotation.instances[centre] == record.id
    assert dice(annotation.instances == loaded, truth == 1) > 0.8  # the primary keeps its side
