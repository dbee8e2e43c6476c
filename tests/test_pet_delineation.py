import numpy as np
import pytest

from napari_hnc import Click, delineate
from napari_hnc.errors import ClickError, GeometryError, HncWarning, StudyError
from napari_hnc.geometry import Volume
from napari_hnc.pet import SeedParams, seed_region
from napari_hnc.pet.delineation import START_RADIUS_MM
from napari_hnc.study import Study
from pet_helpers import pet_only, two_grids
from synthetic import affine, ball


@pytest.fixture
def study_and_centre():
    return two_grids()


def test_labels_land_on_the_ct_grid_where_the_lesion_is(study_and_centre):
    study, centre = study_and_centre
    labels = delineate(study, [Click(tuple(centre), label=2)], method="fixed")
    assert labels.same_grid(study.ct) and labels.array.dtype == np.uint8
    assert set(np.unique(labels.array)) == {0, 2}
    found = labels.voxel_to_world(np.argwhere(labels.array == 2).mean(axis=0))
    assert np.allclose(found, centre, atol=1.0)
    expected_ml = 4 / 3 * np.pi * 1.0**3  # 10 mm radius ball in the PET
    assert labels.array.astype(bool).sum() * labels.voxel_volume_ml == pytest.approx(expected_ml, rel=0.15)
    assert labels.metadata["role"] == "labels" and labels.metadata["delineation"]["method"] == "fixed"


@pytest.mark.parametrize("method", ["percent", "fixed", "adaptive", "grow"])
def test_every_rule_matches_the_whole_volume_computation(study_and_centre, method):
    """The click reads a small box of PET, grown as needed: same answer as on the whole resampled PET."""
    study, centre = study_and_centre
    labels = delineate(study, [tuple(centre)], method=method, max_radius_mm=60)
    index = study.grid.world_to_index(centre)
    whole = seed_region(study.pet_on_grid().array, index, study.grid.spacing, SeedParams.create(method, max_radius_mm=60))
    assert labels.array.sum() > 0 and np.array_equal(labels.array > 0, whole.mask)


def test_a_lesion_larger_than_the_first_box_is_complete():
    pet = np.ones((60, 60, 60), np.float32)
    pet[ball(pet.shape, (30, 30, 30), 20)] = 6.0  # 40 mm radius on 2 mm voxels
    study = pet_only(pet)
    assert 40.0 > START_RADIUS_MM
    labels = delineate(study, [study.pet.voxel_to_world((30, 30, 30))], method="fixed")
    assert np.array_equal(labels.array > 0, ball(pet.shape, (30, 30, 30), 20))


def test_pet_only_study_puts_labels_on_the_pet_grid():
    pet = np.ones((30, 30, 30), np.float32)
    pet[10:16, 10:16, 10:16] = 8.0
    study = pet_only(pet, origin=(-30.0, -30.0, -30.0), axcodes="LPS")
    labels = delineate(study, [Click(tuple(study.pet.voxel_to_world((12, 12, 12))))])
    assert labels.same_grid(study.pet)
    assert np.array_equal(labels.array == 1, pet == 8.0)


def test_positive_clicks_add_and_negative_clicks_remove_keeping_user_labels(study_and_centre):
    study, centre = study_and_centre
    user = np.zeros(study.grid.shape, np.uint8)
    user[2:5, 2:5, 2:5] = 2  # the user's own node, far from the lesion
    user[40, 35, 18] = 2  # a stray voxel inside the lesion: another lesion, locked
    labels = delineate(study, [Click(tuple(centre), label=1)], labels=study.with_labels(user).labels)
    assert np.all(labels.array[2:5, 2:5, 2:5] == 2) and labels.array[40, 35, 18] == 2
    assert labels.array[40, 35, 15] == 1 and (labels.array == 1).sum() > 300  # the click's lesion grew around it
    assert user[40, 35, 18] == 2 and not (user == 1).any()  # the caller's array is not changed
    refined = delineate(study, [Click(tuple(study.grid.voxel_to_world((40, 35, 18))), label=1)],
                        labels=study.with_labels(user).labels)
    assert (refined.array == 2).sum() > 300 and not (refined.array == 1).any()  # a click inside refines, class kept
    corner = study.grid.voxel_to_world((3, 3, 3))
    removed = delineate(study, [Click(tuple(corner), positive=False)], labels=labels)
    assert np.all(removed.array[2:5, 2:5, 2:5] == 0) and (removed.array == 1).sum() == (labels.array == 1).sum()
    with pytest.warns(HncWarning, match="lies on no lesion"):
        delineate(study, [Click(tuple(study.grid.voxel_to_world((70, 60, 25))), positive=False)], labels=labels)


def test_clicks_as_strings_and_tuples(study_and_centre):
    study, centre = study_and_centre
    text = ",".join(f"{v:.3f}" for v in centre) + ":node"
    assert np.array_equal(delineate(study, [text]).array, 2 * delineate(study, [tuple(centre)]).array)


def test_bad_clicks_and_grids_give_clear_errors(study_and_centre):
    study, centre = study_and_centre
    with pytest.raises(ClickError, match="lies outside the volume"):
        delineate(study, [centre + [500.0, 0, 0]])
    corner = study.grid.voxel_to_world((1, 1, 1))
    with pytest.raises(ClickError, match="no uptake"):
        delineate(study, [tuple(corner)])
    with pytest.raises(GeometryError, match="not on the study's label grid"):
        delineate(study, [tuple(centre)], labels=Volume(np.zeros((5, 5, 5), np.uint8), np.eye(4)))
    with pytest.raises(StudyError, match="has no PET"):
        delineate(Study(study.ct, None), [tuple(centre)])


def test_images_that_do_not_overlap():
    ct = Volume(np.zeros((20, 20, 20), np.int16), affine((1.0, 1.0, 1.0)))
    pet = Volume(np.full((10, 10, 10), 5.0, np.float32), affine((2.0, 2.0, 2.0), (300.0, 0.0, 0.0)))
    with pytest.raises(GeometryError, match="do not overlap in world space"):
        delineate(Study(ct, pet), [(5.0, 5.0, 5.0)])


def test_a_click_outside_the_pets_field_of_view():
    ct = Volume(np.zeros((100, 20, 20), np.int16), affine((1.0, 1.0, 1.0)))
    pet = Volume(np.full((20, 10, 10), 5.0, np.float32), affine((2.0, 2.0, 2.0)))  # covers x 0..38 mm
    with pytest.raises(ClickError, match="outside the PET's field of view"):
        delineate(Study(ct, pet), [(80.0, 5.0, 5.0)])


def test_a_leaking_threshold_is_cut_at_the_bound_with_a_warning():
    pet = np.ones((80, 20, 20), np.float32)
    pet[:, 8:12, 8:12] = 4.0  # a long hot structure
    study = pet_only(pet)
    with pytest.warns(HncWarning, match="reached the 30 mm bound"):
        labels = delineate(study, [study.pet.voxel_to_world((40, 10, 10))], max_radius_mm=30)
    rows = np.flatnonzero(labels.array.any(axis=(1, 2)))
    assert rows.min() >= 25 and rows.max() <= 55
