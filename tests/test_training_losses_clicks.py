"""Losses on soft targets, and the click simulation (centres, error clicks, earlier masks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_hnc.training.clicksim import error_click, keep_touching, perturb_mask, region_centre
from napari_hnc.training.losses import segmentation_loss, soft_cross_entropy, soft_dice_loss, targets_with_background
from synthetic import ball


def _one_hot(labels: torch.Tensor, k: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, k).permute(0, 4, 1, 2, 3).float()


def test_losses_are_small_for_right_and_large_for_wrong_logits():
    labels = torch.zeros(1, 8, 8, 8, dtype=torch.long)
    labels[0, 2:5, 2:5, 2:5], labels[0, 6:8, 6:8, 6:8] = 1, 2
    target = _one_hot(labels)
    right, wrong = target * 20.0, torch.roll(target, 1, dims=1) * 20.0
    for kind in ("dice_ce", "focal"):
        assert float(segmentation_loss(right, target, kind)) < 0.01
        assert float(segmentation_loss(wrong, target, kind)) > 1.0
    with pytest.raises(ValueError, match="dice_ce"):
        segmentation_loss(right, target, "tversky")


def test_focal_loss_weighs_confident_voxels_down():
    target = _one_hot(torch.zeros(1, 2, 2, 2, dtype=torch.long))
    confident, unsure = target * 4.0, target * 0.5
    ratio_confident = soft_cross_entropy(confident, target, 2.0) / soft_cross_entropy(confident, target)
    ratio_unsure = soft_cross_entropy(unsure, target, 2.0) / soft_cross_entropy(unsure, target)
    assert float(ratio_confident) < float(ratio_unsure) < 1.0


def test_soft_targets_are_optimal_at_their_own_probabilities():
    fractions = torch.full((1, 2, 2, 2, 2), 0.0)
    fractions[:, 0] = 0.3
    target = targets_with_background(fractions)
    assert torch.allclose(target.sum(dim=1), torch.ones(1, 2, 2, 2))
    logits = torch.log(target.clamp_min(1e-6)).requires_grad_(True)
    soft_cross_entropy(logits, target).backward()
    assert float(logits.grad.abs().max()) < 1e-5  # the gradient vanishes where p = t
    assert float(soft_dice_loss(_one_hot(torch.ones(1, 2, 2, 2, dtype=torch.long)) * 30.0,
                                _one_hot(torch.ones(1, 2, 2, 2, dtype=torch.long)), classes=(1,))) < 1e-3


def test_error_click_goes_to_the_largest_error_with_its_sign():
    truth = ball((30, 30, 30), (15, 15, 15), 8)
    missed = truth.copy()
    missed[:, :, 15:] = False  # half the lesion missed
    assert error_click(missed, truth, (1.0, 1.0, 1.0))[1] is True
    point, positive = error_click(missed, truth, (1.0, 1.0, 1.0))
    assert truth[point] and not missed[point] and point[2] >= 15
    leaking = truth | ball((30, 30, 30), (15, 15, 26), 4)
    point, positive = error_click(leaking, truth, (1.0, 1.0, 1.0))
    assert positive is False and leaking[point] and not truth[point]
    assert error_click(truth, truth, (1.0, 1.0, 1.0)) is None


def test_region_centre_respects_anisotropic_spacing():
    mask = np.zeros((20, 20, 6), bool)
    mask[2:18, 5:15, 0:6] = True
    centre = region_centre(mask, (1.0, 1.0, 4.0))
    assert mask[centre] and 8 <= centre[0] <= 11 and 8 <= centre[1] <= 11


def test_perturbed_masks_differ_from_the_truth_but_overlap_it():
    truth = ball((32, 32, 32), (16, 16, 16), 7)
    rng = np.random.default_rng(1)
    for _ in range(12):
        mask = perturb_mask(truth, rng)
        overlap = np.count_nonzero(mask & truth) / np.count_nonzero(truth)
        assert 0.2 < overlap <= 1.0 and not np.array_equal(mask, truth)


def test_keep_touching_keeps_the_clicked_parts_only():
    mask = np.zeros((10, 1, 10), bool)
    mask[1:3, 0, 1:3] = True
    mask[6:9, 0, 6:9] = True
    kept = keep_touching(mask, [(3, 0, 3)])  # next to the first part
    assert kept[1:3, 0, 1:3].all() and not kept[6:9].any()
    assert not keep_touching(mask, [(0, 0, 9)]).any()
