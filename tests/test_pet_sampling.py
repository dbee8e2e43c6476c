import threading

import numpy as np
import pytest

from napari_hnc.errors import GeometryError, StudyError
from napari_hnc.geometry import Volume
from napari_hnc.pet.sampling import BLOCK, PetSampler, pet_sampler, resample_box_reference
from napari_hnc.study import Study
from pet_helpers import two_grids
from synthetic import affine


@pytest.fixture
def study(rng):
    study, _ = two_grids()
    study.pet.array[:] += rng.normal(0, 0.5, study.pet.shape).astype(np.float32)  # every voxel differs
    return study


def test_a_box_holds_exactly_the_whole_volume_resample(study):
    sampler = PetSampler(study.pet, study.grid)
    box = (slice(20, 50), slice(5, 41), slice(3, 17))
    whole = study.pet_on_grid().array
    got = sampler.box(box)
    assert got.shape == (30, 36, 14)
    assert np.allclose(got, whole[box], atol=1e-5)
    assert np.allclose(got, resample_box_reference(study.pet, study.grid, box), atol=1e-5, equal_nan=True)


def test_only_missing_blocks_are_resampled_and_kept(study, monkeypatch):
    assert BLOCK == (16, 16, 4)
    sampler = PetSampler(study.pet, study.grid)
    calls = []
    original = sampler._resample
    monkeypatch.setattr(sampler, "_resample", lambda box: calls.append(box) or original(box))
    sampler.box((slice(10, 20), slice(10, 20), slice(5, 10)))  # blocks 0-1, 0-1, 1-2
    sampler.box((slice(12, 18), slice(0, 30), slice(4, 12)))  # inside those blocks: cached
    sampler.box((slice(15, 40), slice(10, 20), slice(5, 10)))  # overlaps: only x block 2 is new
    assert calls == [(slice(0, 32), slice(0, 32), slice(4, 12)), (slice(32, 48), slice(0, 32), slice(4, 12))]
    assert np.allclose(sampler.full(), study.pet_on_grid().array, atol=1e-5)
    assert len(calls) == 3  # the rest of the volume, once


def test_blocks_at_the_far_edge_are_cut_to_the_grid(study):
    sampler = PetSampler(study.pet, study.grid)
    shape = study.grid.shape
    box = tuple(slice(n - 3, n) for n in shape)
    got = sampler.box(box)
    assert got.shape == (3, 3, 3)
    assert np.allclose(got, study.pet_on_grid().array[box], atol=1e-5, equal_nan=True)


def test_outside_the_pet_is_nan():
    pet = Volume(np.ones((4, 4, 4), np.float32), affine((2.0, 2.0, 2.0)))
    grid = Volume(np.zeros((20, 4, 4), np.int16), affine((1.0, 1.0, 1.0)))
    values = PetSampler(pet, grid).full()
    assert np.all(values[:6] == 1.0) and np.isnan(values[10:]).all()


def test_same_grid_reads_the_pet_itself():
    pet = Volume(np.arange(27, dtype=np.float32).reshape(3, 3, 3), np.eye(4))
    sampler = PetSampler(pet, pet)
    assert np.shares_memory(sampler.box((slice(0, 2),) * 3), pet.array)


def test_concurrent_boxes_agree(study):
    sampler = PetSampler(study.pet, study.grid)
    boxes = [(slice(i, i + 30), slice(0, 70), slice(0, 30)) for i in range(0, 50, 5)]
    threads = [threading.Thread(target=sampler.box, args=(b,)) for b in boxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.allclose(sampler.full(), study.pet_on_grid().array, atol=1e-5)


def test_the_study_caches_one_sampler_per_grid(study):
    assert pet_sampler(study) is pet_sampler(study)
    assert pet_sampler(study) is not pet_sampler(study, study.pet)
    assert pet_sampler(study.with_labels(None)) is pet_sampler(study)  # copies share the cache


def test_no_pet_and_no_overlap_are_errors():
    ct = Volume(np.zeros((5, 5, 5), np.int16), affine((1.0, 1.0, 1.0)))
    with pytest.raises(StudyError, match="has no PET"):
        pet_sampler(Study(ct, None))
    far = Volume(np.ones((5, 5, 5), np.float32), affine((1.0, 1.0, 1.0), (500.0, 0.0, 0.0)))
    with pytest.raises(GeometryError, match="do not overlap"):
        PetSampler(far, ct)
