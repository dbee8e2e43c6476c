"""Dataset index and folds, the preprocessing cache (soft targets), patch sampling and augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_hnc.errors import StudyError
from napari_hnc.geometry import Volume
from napari_hnc.inference.preprocess import body_box, grid_over_box, image_channels
from napari_hnc.study import load_study
from napari_hnc.training.augment import SpatialParams, apply_spatial, crop_size
from napari_hnc.inference.engines import MAX_ZOOM
from napari_hnc.training.cache import TARGET_SCALE, CachedCase, box_filter, find_lesions, is_cached, load_cached, prepare_cache, soft_fraction
from napari_hnc.training.config import TrainConfig
from napari_hnc.training.dataset import index_dataset, train_val_split
from napari_hnc.training.patches import PatchDataset
from napari_hnc.training.sampler import choose_centre, extract
from synthetic import ball
from training_data import tiny_train_card, write_autopet, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), n=3)


@pytest.fixture(scope="module")
def cached(dataset, tmp_path_factory):
    cases = index_dataset(dataset, "hecktor2022")
    folder = prepare_cache(cases, tiny_train_card(), tmp_path_factory.mktemp("cache"))
    return cases, folder


def test_the_index_finds_complete_studies_of_the_layout_only(dataset, tmp_path):
    assert [c.case_id for c in index_dataset(dataset, "hecktor2022")] == ["SYN-000", "SYN-001", "SYN-002"]
    with pytest.raises(StudyError, match="no hecktor2021 study"):
        index_dataset(dataset, "hecktor2021")
    with pytest.raises(StudyError, match="unknown layout"):
        index_dataset(dataset, "nnunet")
    with pytest.raises(StudyError, match="does not exist"):
        index_dataset(tmp_path / "missing", "hecktor2022")


def test_autopet_folds_keep_the_studies_of_a_patient_together(tmp_path):
    cases = index_dataset(write_autopet(tmp_path, patients=3, studies=2), "autopet")
    assert len(cases) == 6 and {c.group for c in cases} == {"PETCT_0000", "PETCT_0001", "PETCT_0002"}
    for fold in range(3):
        train, val = train_val_split(cases, folds=3, fold=fold)
        assert len(val) == 2 and len({c.group for c in val}) == 1
        assert not {c.group for c in train} & {c.group for c in val}
    with pytest.raises(StudyError, match="cannot split 3 patient"):
        train_val_split(cases, folds=4, fold=0)


def test_soft_fractions_keep_the_lesion_volume_and_put_the_boundary_inside_voxels():
    spacing = np.array([0.5, 0.5, 0.5])
    label_grid = Volume(np.zeros((80, 80, 80), np.int16), np.diag([*spacing, 1.0]))
    mask = ball((80, 80, 80), (40.2, 39.7, 40.0), 16.0)  # radius 8 mm
    model_affine = np.diag([2.5, 2.5, 2.5, 1.0])
    model_affine[:3, 3] = 1.0  # model voxel centres at 1, 3.5, 6 ... mm
    fraction = soft_fraction(label_grid, mask, model_affine, (16, 16, 16), (2.5, 2.5, 2.5))
    assert fraction.min() >= 0 and fraction.max() <= 1
    assert fraction.sum() * 2.5**3 == pytest.approx(mask.sum() * 0.5**3, rel=0.02)
    partial = np.count_nonzero((fraction > 0.05) & (fraction < 0.95))
    assert partial > 100  # the boundary voxels carry fractions, not 0/1


@pytest.mark.parametrize("model_mm", [1.0, 1.5, 2.0, 2.5])
def test_soft_fractions_are_centred_for_even_and_odd_box_sides(model_mm):
    """A model voxel of 2 label voxels (an even box) must not shift the target by half a label voxel."""
    label_grid = Volume(np.zeros((64, 64, 64), np.int16), np.diag([1.0, 1.0, 1.0, 1.0]))
    mask = ball((64, 64, 64), (31.5, 31.5, 31.5), 12.0)  # symmetric about the grid's centre, 31.5 mm
    n = int(round(64 / model_mm))
    model_affine = np.diag([model_mm, model_mm, model_mm, 1.0])
    model_affine[:3, 3] = 31.5 - model_mm * (n - 1) / 2  # model grid symmetric about 31.5 mm too
    fraction = soft_fraction(label_grid, mask, model_affine, (n, n, n), (model_mm,) * 3)
    for axis in range(3):
        assert np.allclose(fraction, np.flip(fraction, axis), atol=1e-5)
    assert fraction.sum() * model_mm**3 == pytest.approx(mask.sum(), rel=0.01)


def test_box_filter_averages_over_a_centred_box():
    line = np.zeros(9, np.float32)
    line[4] = 1.0
    for k in (1, 2, 3, 4):
        out = box_filter(line, [k])
        assert out.sum() == pytest.approx(1.0) and np.allclose(out, out[::-1])  # mass kept, no shift
        assert out.max() == pytest.approx(1.0 / k)
    cube = np.ones((6, 6, 6), np.float32)
    assert box_filter(cube, [2, 3, 1])[2:4, 2:4, 2:4] == pytest.approx(1.0)


def test_the_cache_holds_the_inference_preprocessing_and_is_reused(cached, dataset):
    cases, folder = cached
    case = load_cached(folder, "SYN-001")
    study = load_study(ct=cases[1].files.ct, pet=cases[1].files.pet, labels=cases[1].files.labels)
    card = tiny_train_card()
    grid = grid_over_box(study.grid, card.spacing_mm, *body_box(study))
    channels = image_channels(study, card, grid, None)
    assert case.shape == grid.shape and np.allclose(case.meta["affine"], grid.affine)
    assert np.allclose(np.asarray(case.image[1], np.float32), channels["pet"], atol=2e-2 * np.abs(channels["pet"]).max())
    assert [l["class"] for l in case.lesions] == [1, 2]
    ml = np.asarray(case.target, np.float32).sum(axis=(1, 2, 3)) / TARGET_SCALE * 64 / 1000
    truth_ml = [np.count_nonzero(study.labels.array == k) * study.grid.voxel_volume_ml for k in (1, 2)]
    assert ml == pytest.approx(truth_ml, rel=0.05)
    assert all(is_cached(c, folder) for c in cases)
    (cases[0].files.labels).touch()
    assert not is_cached(cases[0], folder)  # a changed source file is cached again
    prepare_cache(cases[:1], card, folder.parent)
    assert is_cached(cases[0], folder)


def test_extract_pads_with_the_given_values():
    array = np.arange(2 * 4 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 4)
    patch = extract(array, (0, 0, 0), (4, 4, 4), fill=[-1.0, -2.0])
    assert patch.shape == (2, 4, 4, 4)
    assert np.all(patch[0, :2] == -1) and np.all(patch[1, :, :2] == -2)
    assert np.array_equal(patch[:, 2:, 2:, 2:], array[:, :2, :2, :2])


def test_lesion_patches_are_oversampled(cached):
    cases, folder = cached
    case = load_cached(folder, "SYN-000")
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(200):
        centre = choose_centre(case, rng, 16, 0.67)
        hits.append(extract(case.components[None], centre, (16, 16, 16), 0.0).any())
    lesion_share = np.count_nonzero(case.components) / case.components.size
    assert np.mean(hits) > 0.6 > 3 * lesion_share


def test_rotation_and_scaling_keep_the_centre_and_roughly_the_volume():
    size = 32
    volume = torch.from_numpy(ball((42, 42, 42), (21, 21, 21), 6.0).astype(np.float32))[None]
    params = SpatialParams(angles=(0.2, -0.1, 0.25), scale=1.0)
    assert crop_size(size, params) == 42
    out = apply_spatial(volume, size, params)[0]
    centre = (torch.argwhere(out > 0.5).float().mean(dim=0)).tolist()
    assert centre == pytest.approx([16, 16, 16], abs=0.6)
    assert float(out.sum()) == pytest.approx(float(volume.sum()), rel=0.05)
    zoomed = apply_spatial(volume, size, SpatialParams(scale=1.2))[0]
    assert float(zoomed.sum()) == pytest.approx(float(volume.sum()) / 1.2**3, rel=0.06)


def test_a_sample_depends_only_on_seed_epoch_and_index(cached):
    cases, folder = cached
    cased = [load_cached(folder, c.case_id) for c in cases]
    for clicks in (False, True):
        card = tiny_train_card(click=clicks)
        data = PatchDataset(cased, card, TrainConfig(clicks=clicks, patch_size=16), 10)
        data.set_epoch(3)
        a, b = data[5], data[6]
        other = PatchDataset(cased, card, TrainConfig(clicks=clicks, patch_size=16), 10)
        other.set_epoch(3)
        assert torch.equal(other[5]["image"], a["image"]) and not torch.equal(a["image"], b["image"])
        assert torch.allclose(a["target"].sum(dim=0), torch.ones(16, 16, 16), atol=1e-5)
        if clicks:
            first = tuple(a["positive"][0].tolist())
            assert a["truth"][first] and a["guidance"][0][first] == 1.0


def _one_lesion_case(radius: float, *, record_extent: bool) -> CachedCase:
    """A cached 64^3 case (2 channels) holding one ball of ``radius`` voxels, class 1, at the centre."""
    shape = (64, 64, 64)
    inside = ball(shape, (32, 32, 32), radius)
    components, lesions = find_lesions(inside.astype(np.uint8))
    if not record_extent:
        lesions = [{k: v for k, v in lesion.items() if k != "extent"} for lesion in lesions]
    image = np.stack([inside.astype(np.float32), inside.astype(np.float32)])
    target = (inside[None] * TARGET_SCALE).astype(np.uint8)
    return CachedCase("BALL", image, target, components,
                      {"lesions": lesions, "pad_values": [0.0, 0.0], "affine": np.diag([4.0, 4.0, 4.0, 1.0]).tolist()})


def test_a_click_sample_sees_a_large_lesion_zoomed_out_as_the_engine_does():
    card = tiny_train_card(click=True)  # region 16 voxels at 4 mm: zoom out beyond FILL * 16 = 8 voxels
    config = TrainConfig(clicks=True, patch_size=16, spatial_probability=0.0, intensity_probability=0.0)
    small, large = _one_lesion_case(3.0, record_extent=True), _one_lesion_case(10.0, record_extent=True)
    for case, zoom in ((small, 1.0), (large, MAX_ZOOM)):
        data = PatchDataset([case], card, config, 8)
        assert data.zoom(case, case.lesions[0]) == zoom
    # a cache written without extents gives the same zoom, from the lesion map
    old = _one_lesion_case(10.0, record_extent=False)
    assert PatchDataset([old], card, config, 8).zoom(old, old.lesions[0]) == MAX_ZOOM
    data = PatchDataset([large], card, config, 8)
    for index in range(8):
        sample = data[index]
        truth = sample["truth"].numpy()
        # radius 10 at twice the spacing: a ball of radius 5 in the patch, not a patch filled to its corners
        assert truth.sum() == pytest.approx(4 / 3 * np.pi * 5**3, rel=0.25)
        assert truth[tuple(sample["positive"][0].tolist())]
    unzoomed = PatchDataset([small], card, config, 8)[0]["truth"].numpy()
    assert unzoomed.sum() == pytest.approx(float(ball((16, 16, 16), (8, 8, 8), 3.0).sum()), rel=0.25)
