import warnings

import numpy as np
import pytest

from napari_hnc.errors import ClickError, HncWarning
from napari_hnc.pet import SeedParams, grow_region, seed_region, segment_from_seed
from synthetic import ball

SPACING = (2.0, 2.0, 2.0)


@pytest.fixture
def lesion_pet():
    """Background 1, a ball of radius 6 voxels at SUV 6 with a hot core (radius 2) at SUV 10."""
    pet = np.ones((40, 40, 40), np.float32)
    pet[ball(pet.shape, (20, 20, 20), 6)] = 6.0
    pet[ball(pet.shape, (20, 20, 20), 2)] = 10.0
    return pet


def test_fixed_threshold_gives_the_ball(lesion_pet):
    mask = segment_from_seed(lesion_pet, (20, 20, 24), SPACING, method="fixed", threshold=2.5)
    assert mask.dtype == bool and mask.shape == lesion_pet.shape
    assert np.array_equal(mask, ball(lesion_pet.shape, (20, 20, 20), 6))


def test_percent_of_the_lesions_suvmax(lesion_pet):
    # 41% of 10 = 4.1: the whole ball; 70% of 10 = 7: only the core
    assert np.array_equal(segment_from_seed(lesion_pet, (20, 20, 25), SPACING), ball(lesion_pet.shape, (20, 20, 20), 6))
    core = segment_from_seed(lesion_pet, (20, 20, 25), SPACING, percent=70)
    assert np.array_equal(core, ball(lesion_pet.shape, (20, 20, 20), 2))


def test_percent_finds_the_suvmax_beyond_the_snapping_distance(lesion_pet):
    result = seed_region(lesion_pet, (20, 20, 25), SPACING, SeedParams.create("percent", snap_mm=0))
    assert result.suv_max == 10.0 and lesion_pet[result.peak] == 10.0
    assert result.threshold == pytest.approx(4.1)
    assert result.seed == (20, 20, 25) and lesion_pet[result.seed] == 6.0


def test_adaptive_threshold_uses_the_background_shell():
    pet = np.full((40, 40, 40), 2.0, np.float32)
    pet[ball(pet.shape, (20, 20, 20), 5)] = 10.0
    pet[ball(pet.shape, (20, 20, 20), 4)] = 12.0
    result = seed_region(pet, (20, 20, 20), SPACING, SeedParams.create("adaptive", fraction=0.5))
    assert result.background == 2.0
    assert result.threshold == pytest.approx(2.0 + 0.5 * (12.0 - 2.0))
    assert np.array_equal(result.mask, ball(pet.shape, (20, 20, 20), 5))
    # f = 0.9: T = 11, only the core
    high = segment_from_seed(pet, (20, 20, 20), SPACING, method="adaptive", fraction=0.9)
    assert np.array_equal(high, ball(pet.shape, (20, 20, 20), 4))


def test_grow_with_an_interval_from_several_seeds():
    pet = np.ones((30, 30, 30), np.float32)
    pet[5:10, 5:10, 5:10] = 4.0
    pet[7, 7, 7] = 20.0  # above the interval: a hole
    pet[20:25, 20:25, 20:25] = 5.0
    mask = grow_region(pet, [(5, 5, 5), (22, 22, 22)], lower=3.0, upper=10.0)
    assert mask.sum() == 125 - 1 + 125 and not mask[7, 7, 7]
    one = segment_from_seed(pet, (6, 6, 6), (1.0, 1.0, 1.0), method="grow", lower=3.0, upper=10.0, snap_mm=0,
                            fill_holes=False)
    assert one.sum() == 124 and not one[7, 7, 7]
    solid = segment_from_seed(pet, (6, 6, 6), (1.0, 1.0, 1.0), method="grow", lower=3.0, upper=10.0, snap_mm=0)
    assert solid.sum() == 125 and solid[7, 7, 7]  # by default a lesion's enclosed cavity belongs to it
    with pytest.raises(ClickError, match="outside the growing interval"):
        grow_region(pet, [(0, 0, 0)], lower=3.0)


def test_the_click_snaps_to_the_hottest_voxel_within_7mm():
    pet = np.ones((30, 30, 30), np.float32)
    pet[14:17, 14:17, 14:17] = 6.0
    # 8 mm away with 1 mm voxels: beyond the 7 mm snap, no uptake
    with pytest.raises(ClickError, match="no uptake"):
        segment_from_seed(pet, (15, 15, 24), (1.0, 1.0, 1.0))
    # 6 mm away: snapped onto the lesion
    assert segment_from_seed(pet, (15, 15, 22), (1.0, 1.0, 1.0)).sum() == 27
    with pytest.raises(ClickError, match="within 5 mm"):
        segment_from_seed(pet, (15, 15, 22), (1.0, 1.0, 1.0), snap_mm=5)


def test_a_leak_is_stopped_at_the_bound_with_a_warning():
    pet = np.ones((60, 60, 60), np.float32)
    pet[:, 28:32, 28:32] = 5.0  # a long hot tube, as a node touching a vessel
    with pytest.warns(HncWarning, match="reached the 20 mm bound"):
        mask = segment_from_seed(pet, (30, 30, 30), (1.0, 1.0, 1.0), max_radius_mm=20)
    extent = np.flatnonzero(mask.any(axis=(1, 2)))
    assert extent.min() >= 10 and extent.max() <= 50  # never further than 20 mm from the click
    pet[ball(pet.shape, (30, 30, 30), 8)] = 9.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a lesion inside the bound gives no warning
        inside = segment_from_seed(pet, (30, 30, 30), (1.0, 1.0, 1.0), max_radius_mm=20, method="fixed", threshold=6)
    assert np.array_equal(inside, ball(pet.shape, (30, 30, 30), 8))


def test_bad_seeds_and_no_uptake_give_clear_errors(lesion_pet):
    with pytest.raises(ClickError, match="outside the array of shape"):
        segment_from_seed(lesion_pet, (20, 20, 40), SPACING)
    with pytest.raises(ClickError, match="below min_suv"):
        segment_from_seed(lesion_pet, (2, 2, 2), SPACING)
    with pytest.raises(ClickError, match="below the threshold"):
        segment_from_seed(lesion_pet, (2, 2, 2), SPACING, method="fixed")
    ring = np.full((40, 40, 40), 5.0, np.float32)  # a warm spot in a cold ring inside hotter tissue
    ring[ball(ring.shape, (20, 20, 20), 6)] = 0.5
    ring[ball(ring.shape, (20, 20, 20), 2)] = 3.0
    with pytest.raises(ClickError, match="not hotter than its surroundings"):
        segment_from_seed(ring, (20, 20, 20), SPACING, method="adaptive")
    with pytest.raises(ClickError, match="no PET values lie 10-20 mm around the lesion"):
        segment_from_seed(np.full((8, 8, 8), 3.0, np.float32), (4, 4, 4), SPACING, method="adaptive")


def test_nan_marks_no_pet():
    pet = np.full((20, 20, 20), np.nan, np.float32)
    with pytest.raises(ClickError, match="field of view"):
        segment_from_seed(pet, (10, 10, 10), SPACING)
    pet[:10] = 1.0
    pet[4:8, 4:8, 4:8] = 5.0
    pet[8:10, 4:8, 4:8] = 5.0  # the lesion reaches the edge of the PET: NaN beyond never joins
    assert segment_from_seed(pet, (5, 5, 5), SPACING, method="fixed").sum() == 6 * 4 * 4


def test_anisotropic_spacing_shapes_the_bound():
    pet = np.full((100, 100, 20), 5.0, np.float32)
    with pytest.warns(HncWarning):
        mask = segment_from_seed(pet, (50, 50, 10), (1.0, 1.0, 5.0), method="fixed", max_radius_mm=20)
    assert np.flatnonzero(mask.any(axis=(0, 1))).tolist() == [6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert np.flatnonzero(mask.any(axis=(1, 2))).size == 41



def test_confidence_growing_never_leaks_into_the_background():
    # The click benchmark's study: small lesions blurred on a 4.7 mm PET read on a 1 mm
    # CT grid. Round by round the confidence interval of the first lesion widened
    # until it took 9 million background voxels (SUV 1); it now stops at min_suv.
    import importlib.util
    from pathlib import Path

    from napari_hnc import Click, delineate

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "click_threshold.py"
    spec = importlib.util.spec_from_file_location("click_threshold", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    study, centres = bench.make_study()
    with warnings.catch_warnings():
        warnings.simplefilter("error", HncWarning)  # no region reaches the bound
        labels = delineate(study, [Click(tuple(centres[0]))], "grow")
    pet = study.pet_on_grid().array
    assert 0 < labels.array.sum() < 20_000
    assert pet[labels.array > 0].min() >= 2.0
