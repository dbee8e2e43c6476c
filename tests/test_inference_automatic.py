"""Whole-study segmentation: lesions come back where they are, on the CT grid, whatever the orientation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_hnc.errors import Cancelled, StudyError
from napari_hnc.geometry import Volume, resample_to
from napari_hnc.inference.automatic import predict_probabilities, segment
from napari_hnc.inference.postprocess import probabilities_to_labels
from napari_hnc.inference.preprocess import Grid, body_box, grid_over_box
from napari_hnc.progress import CancelToken
from napari_hnc.study import Study
from synthetic_pet_ct import Lesion, neck_study, one_torch_thread, threshold_model  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LESIONS = (Lesion((10.0, -5.0, 12.0), 9.0), Lesion((-30.0, 15.0, -6.0), 6.0))


@pytest.fixture(scope="module")
def study() -> Study:
    return neck_study(LESIONS)


def _centroids(mask: np.ndarray) -> np.ndarray:
    labelled, count = ndimage.label(mask)
    return np.array(ndimage.center_of_mass(mask, labelled, range(1, count + 1)))


def test_lesions_come_back_on_the_ct_grid_within_one_voxel(study):
    labels = segment(study, threshold_model(), "cpu", threads=1)
    assert labels.same_grid(study.ct) and labels.array.dtype == np.uint8
    found, truth = _centroids(labels.array == 1), _centroids(study.labels.array == 1)
    assert len(found) == len(truth) == 2
    for centre in truth:
        nearest = found[np.argmin(np.linalg.norm(found - centre, axis=1))]
        assert np.all(np.abs(nearest - centre) <= 1.0), (nearest, centre)
    dice = 2 * np.sum((labels.array > 0) & (study.labels.array > 0)) / (
        np.sum(labels.array > 0) + np.sum(study.labels.array > 0)
    )
    assert dice > 0.85


def test_file_orientation_does_not_change_the_answer(study):
    ras = Study(study.ct.reoriented("RAS"), study.pet.reoriented("RAS"), None, "RAS copy")
    lps_labels = segment(study, threshold_model(), "cpu", threads=1)
    ras_labels = segment(ras, threshold_model(), "cpu", threads=1)
    assert np.array_equal(ras_labels.array, lps_labels.reoriented("RAS").array)


def test_probabilities_go_to_the_ct_grid_before_the_argmax_exactly_where_it_matters(study):
    lo, hi = body_box(study)
    grid = grid_over_box(study.grid, (3.0, 2.5, 4.0), lo, hi)
    rng = np.random.default_rng(0)
    raw = ndimage.gaussian_filter(rng.normal(size=(3, *grid.shape)), (0, 2, 2, 2)) * 40
    inner = np.zeros(grid.shape, bool)
    inner[4:-4, 4:-4, 4:-4] = True
    raw[1:, ~inner] = -50  # keep lesions off the grid's border, where resamplers differ by design
    probs = np.exp(raw - raw.max(axis=0)) / np.exp(raw - raw.max(axis=0)).sum(axis=0)
    fast = probabilities_to_labels(probs.astype(np.float32), grid, study.grid)
    full = [
        resample_to(Volume(p.astype(np.float32), grid.affine), study.grid, "linear").array for p in probs
    ]
    brute = np.argmax(np.stack(full), axis=0)
    assert (brute > 0).sum() > 1000
    assert np.mean(fast == brute) > 0.9999


def test_regions_below_the_cards_minimum_volume_are_removed():
    tiny = Lesion((20.0, 20.0, 0.0), 3.0)  # about 0.11 ml in the PET, less after thresholding
    study = neck_study((LESIONS[0], tiny))
    kept = segment(study, threshold_model(), "cpu", threads=1)
    dropped = segment(study, threshold_model(min_region_ml=0.5), "cpu", threads=1)
    assert ndimage.label(kept.array > 0)[1] == 2
    assert ndimage.label(dropped.array > 0)[1] == 1


def test_study_without_pet_is_refused_clearly(study):
    ct_only = Study(study.ct, None, None, "CT-ONLY")
    with pytest.raises(StudyError, match="has no PET, but model 'toy-threshold' needs CT and PET"):
        segment(ct_only, threshold_model(), "cpu")


def test_field_of_view_is_the_body_within_the_pet(study):
    lo, hi = body_box(study)
    canonical = study.ct.reoriented("RAS")
    body = np.argwhere(canonical.array > -500)
    assert np.all(lo <= body.min(axis=0)) and np.all(hi >= body.max(axis=0))
    assert np.prod(hi - lo + 1) < 0.9 * np.prod(canonical.shape)  # air around the body is cut
    grid = predict_probabilities(study, threshold_model(), "cpu", threads=1).grid
    assert isinstance(grid, Grid) and np.allclose(grid.spacing, 2.5)


def test_progress_and_cancel(study):
    calls = []
    segment(study, threshold_model(), "cpu", threads=1, progress=lambda d, t, s: calls.append((d, t, s)))
    assert calls and calls[-1][0] == calls[-1][1]
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        segment(study, threshold_model(), "cpu", cancel=token)
