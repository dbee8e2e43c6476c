"""Losses on soft targets: soft Dice plus cross-entropy, or plus focal loss (seed 003, small lesions).

Targets are class probabilities (B, K, ...) summing to 1 per voxel (the cached
partial-volume fractions); hard labels are the special case of one-hot targets.
The Dice term is a batch Dice over the lesion classes (all voxels of the batch
pooled per class, as nnU-Net does), so patches without a lesion do not blow it up.
On partial-volume voxels the cross-entropy is smallest where the predicted
probability equals the covered fraction; the Dice term pushes such voxels
towards 0 or 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SMOOTH = 1e-5


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, classes: tuple[int, ...] | None = None) -> torch.Tensor:
    """1 - mean batch Dice of ``classes`` (default: all but background).

    >>> t = torch.zeros(1, 2, 4, 4, 4); t[:, 0] = 1; t[:, 0, :2] = 0; t[:, 1, :2] = 1
    >>> float(soft_dice_loss(t * 100.0, t)) < 1e-3
    True
    """
    probs = torch.softmax(logits.float(), dim=1)
    classes = tuple(range(1, logits.shape[1])) if classes is None else classes
    dims = (0, *range(2, logits.ndim))
    p, t = probs[:, list(classes)], target[:, list(classes)]
    intersection = (p * t).sum(dims)
    total = p.sum(dims) + t.sum(dims)
    return 1.0 - ((2.0 * intersection + SMOOTH) / (total + SMOOTH)).mean()


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor, gamma: float = 0.0) -> torch.Tensor:
    """Mean over voxels of ``-sum_c t_c (1 - p_c)^gamma log p_c`` (cross-entropy when ``gamma`` is 0).

    >>> logits = torch.tensor([[[0.0]], [[0.0]]])[None]   # two classes, equal
    >>> t = torch.tensor([[[1.0]], [[0.0]]])[None]
    >>> round(float(soft_cross_entropy(logits, t)), 4), round(float(soft_cross_entropy(logits, t, gamma=2.0)), 4)
    (0.6931, 0.1733)
    """
    log_p = F.log_softmax(logits.float(), dim=1)
    if gamma:
        log_p = log_p * (1.0 - log_p.exp()).pow(gamma)
    return -(target * log_p).sum(dim=1).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "dice_ce", gamma: float = 2.0) -> torch.Tensor:
    """``"dice_ce"``: soft Dice + cross-entropy; ``"focal"``: soft Dice + focal loss."""
    if kind not in ("dice_ce", "focal"):
        raise ValueError(f"loss must be 'dice_ce' or 'focal', not {kind!r}")
    return soft_dice_loss(logits, target) + soft_cross_entropy(logits, target, gamma if kind == "focal" else 0.0)


def foreground_only(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-class logits and targets (background, any lesion) from K classes: a click-guided model is used
    through ``1 - p(background)`` only (the user's click gives the class).

    >>> logits = torch.tensor([0.0, 1.0, 2.0]).reshape(1, 3, 1, 1, 1)
    >>> two, _ = foreground_only(logits, torch.ones(1, 3, 1, 1, 1) / 3)
    >>> torch.allclose(torch.softmax(two, 1)[0, 1], torch.softmax(logits, 1)[0, 1:].sum(0))
    True
    """
    two = torch.stack([logits[:, 0], torch.logsumexp(logits[:, 1:], dim=1)], dim=1)
    return two, torch.stack([target[:, 0], target[:, 1:].sum(dim=1)], dim=1)


def targets_with_background(lesion_fractions: torch.Tensor) -> torch.Tensor:
    """(B, K-1, ...) lesion-class fractions -> (B, K, ...) with the background ``1 - sum`` first."""
    background = (1.0 - lesion_fractions.sum(dim=1, keepdim=True)).clamp_min(0.0)
    return torch.cat([background, lesion_fractions], dim=1)
