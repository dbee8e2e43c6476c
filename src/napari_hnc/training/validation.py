"""Validation during training, on the model grid of the cached validation cases.

* Automatic models: Gaussian sliding window over each whole case (the card's
  tiles, :func:`napari_hnc.inference.sliding_window`), argmax, Dice per class and
  for the union of the lesions, pooled over the cases (cohort Dice).
* Click-guided models: per lesion, the card's ROI centred on the lesion's
  centre; a first click there, then two clicks at the centres of the largest
  error regions (:mod:`.clicksim`); Dice after 1 and after 3 clicks, averaged.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..inference.ensemble import EnsemblePredictor
from ..inference.sliding_window import WindowConfig, sliding_window
from ..models.card import ModelCard
from .metrics import TARGETS, dice
from .cache import CachedCase
from .clicksim import error_click, guidance, keep_touching
from .sampler import extract

#: Lesions scored per validation case for click-guided models.
LESIONS_PER_CASE = 4


def _counts(pred: np.ndarray, ref: np.ndarray, classes: int) -> np.ndarray:
    rows = []
    for label in [*range(1, classes), None]:
        p, r = (pred > 0, ref > 0) if label is None else (pred == label, ref == label)
        rows.append([np.count_nonzero(p & r), np.count_nonzero(p) + np.count_nonzero(r)])
    return np.asarray(rows, np.int64)


def validate_automatic(net: nn.Module, cases: Sequence[CachedCase], card: ModelCard, device: torch.device) -> np.ndarray:
    """Per-class (then union) ``[overlap, total]`` voxel counts over ``cases``; see :func:`dice_from_counts`."""
    predictor = EnsemblePredictor([net], device)
    window = WindowConfig(card.patch_size, 0.25, 1, divisor=int(getattr(net, "divisor", 1)))
    counts = np.zeros((len(card.classes), 2), np.int64)
    with torch.inference_mode():
        for case in cases:
            image = torch.from_numpy(np.asarray(case.image, np.float32))
            probs = sliding_window(image, predictor, window, out_channels=card.out_channels)
            counts += _counts(probs.argmax(dim=0).numpy(), case.hard_labels(), len(card.classes))
    return counts


def dice_from_counts(counts: np.ndarray, classes: dict[int, str]) -> dict[str, float]:
    """``{"dice_<class>": ..., "dice_union": ...}`` from pooled counts (NaN where nothing is present)."""
    named = {label: name for name, label in TARGETS.items() if label is not None}
    names = [named.get(k, f"class{k}") for k in sorted(classes) if k] + ["union"]
    return {f"dice_{name}": float(2 * o / t) if t else float("nan") for name, (o, t) in zip(names, counts)}


def click_round(net: nn.Module, image: np.ndarray, positive, negative, previous, card: ModelCard,
                device: torch.device) -> np.ndarray:
    """The click model's lesion mask (foreground > 0.5, parts touching a positive click) for one patch."""
    spacing = card.spacing_mm
    inputs = np.concatenate([image, guidance(image.shape[1:], spacing, positive, negative, previous, card.click_encoding)])
    with torch.inference_mode():
        probs = EnsemblePredictor([net], device)(torch.from_numpy(inputs[None]))[0]
    return keep_touching((1.0 - probs[0]).cpu().numpy() > 0.5, positive)


def simulate_clicks(net: nn.Module, image: np.ndarray, truth: np.ndarray, first, clicks: int, card: ModelCard,
                    device: torch.device) -> list[float]:
    """Dice after each of ``clicks`` simulated clicks on one patch (first click at ``first``)."""
    positive, negative, previous, scores = [tuple(first)], [], None, []
    for number in range(clicks):
        pred = click_round(net, image, positive, negative, previous, card, device)
        scores.append(dice(pred, truth, empty=1.0))
        if number + 1 == clicks:
            break
        found = error_click(pred, truth, card.spacing_mm)
        if found is None:
            scores += [scores[-1]] * (clicks - number - 1)
            break
        (positive if found[1] else negative).append(found[0])
        previous = pred
    return scores


def validate_clicks(net: nn.Module, cases: Sequence[CachedCase], card: ModelCard, device: torch.device) -> list[list[float]]:
    """Dice after 1, 2 and 3 simulated clicks of up to 4 lesions per case (one list per lesion)."""
    size = np.asarray(card.patch_size)
    results = []
    for case in cases:
        for lesion in case.lesions[:LESIONS_PER_CASE]:
            centre = np.asarray(lesion["centre"])
            image = extract(case.image, centre, size, case.pad_values)
            truth = extract(case.components[None], centre, size, 0.0)[0] == lesion["id"]
            results.append(simulate_clicks(net, image, truth, tuple(size // 2), 3, card, device))
    return results


def click_scores(results: Sequence[Sequence[float]]) -> dict[str, float]:
    """Mean Dice after 1 and 3 clicks, and their mean (``dice_clicks``, the score that picks the best epoch).

    >>> click_scores([[0.5, 0.7, 0.9], [0.7, 0.8, 0.9]])
    {'dice_1click': 0.6, 'dice_3clicks': 0.9, 'dice_clicks': 0.75}
    """
    if not results:
        return {"dice_1click": float("nan"), "dice_3clicks": float("nan"), "dice_clicks": float("nan")}
    scores = np.asarray(results, float)
    one, three = round(float(scores[:, 0].mean()), 6), round(float(scores[:, 2].mean()), 6)
    return {"dice_1click": one, "dice_3clicks": three, "dice_clicks": round((one + three) / 2, 6)}
