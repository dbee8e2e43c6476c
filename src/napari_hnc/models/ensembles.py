"""Assembling trained models (e.g. the 5 folds of a cross-validation) into one ensemble card.

The ensemble is an ordinary model card that lists every member's weight file; inference
(:class:`napari_hnc.inference.ensemble.EnsemblePredictor`, used by ``segment``, the click
session and the GUI) averages the members' softmax probabilities. The members must agree on
everything but the weights: architecture and arguments, inputs, spacing, patch size,
preprocessing, click encoding and classes. The folder is written atomically.

>>> from napari_hnc.models import preset_card
>>> a, b = preset_card("auto", name="fold0"), preset_card("auto", name="fold1")
>>> differences(a, b), differences(a, b.with_changes(spacing_mm=(2.0, 2.0, 2.0)))
([], ['spacing_mm'])
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ModelError
from .card import ModelCard

log = logging.getLogger(__name__)

#: What every member of an ensemble must share.
SHARED = ("architecture", "arguments", "inputs", "task", "spacing_mm", "patch_size", "preprocessing",
          "click_encoding", "classes")


def differences(first: ModelCard, other: ModelCard) -> list[str]:
    """The fields of :data:`SHARED` in which two cards differ."""
    return [key for key in SHARED if getattr(first, key) != getattr(other, key)]


def mean_scores(cards: Sequence[ModelCard]) -> dict[str, float]:
    """The mean over the members of every numeric score all of them report.

    >>> mean_scores([ModelCard("a", "UNet", ("a.st",), scores={"dice": 0.5}),
    ...              ModelCard("b", "UNet", ("b.st",), scores={"dice": 0.7, "x": 1})])
    {'members_mean_dice': 0.6}
    """
    keys = set.intersection(*[{k for k, v in c.scores.items() if isinstance(v, (int, float))} for c in cards])
    return {f"members_mean_{k}": round(float(np.mean([c.scores[k] for c in cards])), 6) for k in sorted(keys)}


def assemble(card_paths: Sequence[str | Path], out: str | Path, *, name: str | None = None,
             overwrite: bool = False, command: str | None = None) -> Path:
    """Write the ensemble of the models ``card_paths`` into the folder ``out``; returns its card path.

    The weight files are copied as ``<name>_member<k>.safetensors`` (members that are
    ensembles themselves give all their files), so the folder stands on its own.

    Raises
    ------
    ModelError
        Fewer than two members, or members that differ in more than their weights.
    """
    from ..io.atomic import swap_in_folder
    from .registry import find_model

    out = Path(out).expanduser()
    name = name or out.name
    entries = [find_model(path) for path in card_paths]
    if sum(len(e.card.weights) for e in entries) < 2:
        raise ModelError("an ensemble needs at least two networks; give two or more model cards")
    first = entries[0].card
    for entry in entries[1:]:
        diff = differences(first, entry.card)
        if diff:
            raise ModelError(f"{entry.card_path} differs from {entries[0].card_path} in {', '.join(diff)}; the "
                             "members of an ensemble may differ only in their weights")
    if out.exists() and not overwrite:
        raise ModelError(f"{out} already exists; nothing was written. Choose another --out or pass --overwrite")
    stage = out.parent / f".{out.name}.partial"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    weights, members = [], []
    for entry in entries:
        files = []
        for weight in entry.card.weights:
            target = f"{name}_member{len(weights)}.safetensors"
            shutil.copyfile(entry.card_path.parent / weight, stage / target)
            weights.append(target)
            files.append({"file": target, "from": weight,
                          "sha256": hashlib.sha256((stage / target).read_bytes()).hexdigest()})
        members.append({"name": entry.name, "card": str(entry.card_path), "weights": files,
                        "scores": {k: v for k, v in entry.card.scores.items() if not isinstance(v, dict)},
                        "validation_cases": entry.card.training.get("validation_cases"),
                        "command": entry.card.training.get("command")})
    if any(e.card.zoomed_weights for e in entries):
        log.warning("the members' zoomed_weights are left out of the ensemble %s: its networks see every region", name)
    card = first.with_changes(
        name=name, weights=tuple(weights), zoomed_weights=(), aliases=(),
        description=f"Ensemble (mean probability) of {len(weights)} networks: {', '.join(e.name for e in entries)}",
        training={"ensemble_of": members, "command": command}, scores=mean_scores([e.card for e in entries]))
    card.write(stage / f"{name}.json")
    swap_in_folder(stage, out)
    log.info("ensemble of %d networks written to %s", len(weights), out)
    return out / f"{name}.json"


def member_summary(card: ModelCard) -> list[dict[str, Any]]:
    """The members an ensemble card records (empty for a single model)."""
    return list(card.training.get("ensemble_of") or [])
