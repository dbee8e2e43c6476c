"""Fine-tuning: continue training a model (automatic or click-guided) on new labelled cases.

The parent model's card fixes everything but the weights' values: architecture and
arguments, inputs (click-guided or not), spacing, preprocessing, classes and -- for a
click model -- the region around the click. Training starts from the parent's weights
(the first member of an ensemble) and runs the ordinary loop of :func:`.trainer.train`
(so also under ``torchrun``); the validation of the parent's weights before the first
step and of the best epoch after are both written into the new card, with the parent,
the cases used and the command.

With ``blend`` below 1 the new version's weights are ``blend`` x the fine-tuned weights plus
``1 - blend`` x the parent's (weight-space interpolation, "WiSE-FT": Wortsman et al., Robust
fine-tuning of zero-shot models, CVPR 2022): the blend keeps more of what the parent knew (its
domain) for part of what the new cases taught. The blend is validated again on the same cases; the
fine-tuned weights' validation stays in the card as ``training["validation_finetuned"]``.

The new version is written atomically as a folder of its own: the run goes into a
hidden staging folder ``.<name>.partial`` beside ``out`` (skipped by the model registry,
kept for ``resume``), which is renamed to ``out`` only when the run is complete. A
cancelled run (:class:`~napari_hnc.errors.Cancelled`) removes its staging folder; an
existing ``out`` is never touched unless ``overwrite``.

>>> child_name("hnc-auto", taken={"hnc-auto", "hnc-auto-v2"})
'hnc-auto-v3'
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Collection, Sequence

import torch

from ..errors import Cancelled, HncError
from ..io.atomic import swap_in_folder
from ..models.card import ModelCard
from .config import TrainConfig
from .dataset import Case

log = logging.getLogger(__name__)

#: Fine-tuning defaults that differ from training from scratch: a quarter of the learning rate.
FINETUNE_DEFAULTS = {"epochs": 4, "steps_per_epoch": 100, "lr": 5e-4, "warmup_steps": 10}
_VERSION = re.compile(r"^(?P<base>.+?)-v(?P<n>\d+)$")


def child_name(parent: str, taken: Collection[str] = ()) -> str:
    """``<base>-v<n>``: the next version name after ``parent`` that is not in ``taken``."""
    match = _VERSION.match(parent)
    base, n = (match["base"], int(match["n"])) if match else (parent, 1)
    n += 1
    while f"{base}-v{n}" in taken:
        n += 1
    return f"{base}-v{n}"


def staging_folder(out: Path) -> Path:
    """The hidden folder a fine-tune into ``out`` runs in until it is complete."""
    return out.parent / f".{out.name}.partial"


def child_card(parent: ModelCard, name: str, patch_size: int | None = None) -> ModelCard:
    """The card of the new version: the parent's with one weight file, no aliases, a new name.

    The parent's ``zoomed_weights`` are not carried over: the fine-tuned network, which learnt the
    user's cases at every scale, sees large lesions too.

    >>> from napari_hnc.models import preset_card
    >>> card = child_card(preset_card("click"), "clinic-click", 48)
    >>> card.weights, card.aliases, card.patch_size, card.architecture
    (('clinic-click.safetensors',), (), (48, 48, 48), 'ResUNetMHSA')
    """
    changes: dict[str, Any] = {"name": name, "weights": (f"{name}.safetensors",), "zoomed_weights": (),
                               "aliases": (), "training": {}, "scores": {}}
    if patch_size is not None and parent.is_click_guided:
        changes["patch_size"] = (int(patch_size),) * 3
    changes["description"] = f"{parent.description or parent.name} -- fine-tuned from {parent.name}"
    return parent.with_changes(**changes)


def parent_record(card: ModelCard, card_path: Path | None) -> dict[str, Any]:
    """What the new card says of its parent: name, card file, version, the weights' SHA-256."""
    hashes = {}
    for weight in card.weights if card_path is not None else ():
        path = card_path.parent / weight
        if path.is_file():
            hashes[weight] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"name": card.name, "card": str(card_path) if card_path else None,
            "version": int(card.training.get("version", 1)), "weights_sha256": hashes,
            "scores": {k: v for k, v in card.scores.items() if not isinstance(v, dict)}}


def finetune_config(parent: ModelCard, **overrides: Any) -> TrainConfig:
    """The parent's training settings (when its card has them), with the fine-tuning defaults and ``overrides``.

    A click model keeps the patch size of its region around the click.

    >>> from napari_hnc.models import preset_card
    >>> config = finetune_config(preset_card("click"), epochs=2)
    >>> config.clicks, config.patch_size, config.epochs, config.lr
    (True, 64, 2, 0.0005)
    """
    saved = dict(parent.training.get("config") or {})
    values = {**TrainConfig.from_dict(saved).to_dict(), **FINETUNE_DEFAULTS}
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["clicks"] = parent.is_click_guided
    if parent.is_click_guided:
        values["patch_size"] = int(parent.patch_size[0])
    return TrainConfig.from_dict(values)


def finetune(train_cases: Sequence[Case], val_cases: Sequence[Case], parent: str | os.PathLike, out: str | Path,
             config: TrainConfig | None = None, *, name: str | None = None, cache_root: str | Path,
             device: str = "auto", threads: int | None = None, resume: bool = False, stop_after: int | None = None,
             workers: int = 0, overwrite: bool = False, training_info: dict[str, Any] | None = None,
             progress: Callable[[int, int, str], None] | None = None, cancel=None, blend: float = 1.0,
             zoomed_unblended: bool = False):
    """Fine-tune ``parent`` on ``train_cases`` and write the new version as the folder ``out``.

    Parameters
    ----------
    train_cases, val_cases : sequences of Case
        Training and validation cases (they may be the same when there are too few to hold some out).
    parent : str or path
        The model to start from: a card path, a name or an alias (:func:`napari_hnc.models.find_model`).
    out : path
        The new version's folder; its card is ``out/<name>.json`` (``name`` defaults to the folder's name).
    config : TrainConfig, optional
        Default: :func:`finetune_config` of the parent.
    overwrite : bool
        Replace an existing ``out`` (swapped in only once the new version is complete).
    progress, cancel
        Progress callback over the optimiser steps and cancel token (the GUI's worker).
    blend : float
        Share of the fine-tuned weights in the new version (1: the fine-tuned weights; 0.5: the midpoint
        between them and the parent's), in (0, 1].
    zoomed_unblended : bool
        With ``blend`` below 1 and a click-guided parent: also keep the fine-tuned weights as they are,
        as the new card's ``zoomed_weights`` (``<name>-zoomed.safetensors``), which draw the lesions the
        blend finds large (:meth:`napari_hnc.inference.engines.ModelEngine.networks_for`).

    Returns
    -------
    TrainResult
        Its ``card_path`` lies in ``out`` once the run is complete (in the staging folder before).
    """
    from ..models.registry import find_model
    from ..models.weights_io import load_model_file
    from .trainer import train

    out = Path(out).expanduser()
    name = name or out.name
    if not 0.0 < blend <= 1.0:
        raise HncError(f"blend must lie in (0, 1] (the fine-tuned weights' share), got {blend}")
    if zoomed_unblended and blend >= 1.0:
        raise HncError("zoomed_unblended keeps the fine-tuned weights beside their blend: give a blend below 1")
    if out.exists() and not overwrite and not resume:
        raise HncError(f"{out} already exists; nothing was written. Choose another --out folder or pass --overwrite")
    entry = find_model(parent)
    model = load_model_file(entry.card_path)
    if len(model.networks) > 1:
        log.warning("%s is an ensemble of %d networks; its first member is fine-tuned", entry.name, len(model.networks))
    if zoomed_unblended and not model.card.is_click_guided:
        raise HncError(f"{entry.name} is not a click-guided model: zoomed weights (for large clicked lesions) "
                       "are for click models only")
    config = config or finetune_config(model.card)
    card = child_card(model.card, name, config.patch_size)
    lineage = list(model.card.training.get("lineage", [])) + [model.card.name]
    info = {"finetuned_from": parent_record(model.card, entry.card_path), "parent_member": 0,
            "version": int(model.card.training.get("version", 1)) + 1, "lineage": lineage,
            "cases_used": [c.case_id for c in train_cases], "validation_cases": [c.case_id for c in val_cases],
            **(training_info or {})}
    stage = staging_folder(out)
    if stage.exists() and not resume and _is_main():
        shutil.rmtree(stage)  # a staging folder without --resume is a run nobody asked to continue
    try:
        result = train(train_cases, val_cases, card, config, stage, cache_root=cache_root, device=device,
                       threads=threads, resume=resume, stop_after=stop_after, workers=workers, training_info=info,
                       init_weights=model.networks[0].state_dict(), progress=progress, cancel=cancel)
    except Cancelled:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if not _is_main() or result.epochs_done < config.epochs:
        return result
    if not result.card_path.is_file():
        raise HncError(f"the fine-tune in {stage} gave no validation score, so no weights were written; "
                       "check the validation cases")
    if blend < 1.0:
        blend_with_parent(result.card_path, model.networks[0].state_dict(), blend, val_cases, config, cache_root,
                          device, keep_unblended=zoomed_unblended)
    _write_after(result.card_path)
    swap_in_folder(stage, out)
    log.info("fine-tuned model written to %s", out)
    return type(result)(out / result.card_path.name, result.best_score, result.best_epoch, result.epochs_done,
                        result.score_name)


def blended_state(finetuned: dict[str, Any], parent: dict[str, Any], share: float) -> dict[str, Any]:
    """``share`` x ``finetuned`` + (1 - ``share``) x ``parent``, tensor by tensor (integer buffers: the fine-tuned).

    >>> import torch
    >>> blended_state({"w": torch.tensor([2.0]), "n": torch.tensor(3)}, {"w": torch.tensor([0.0]), "n": torch.tensor(1)}, 0.25)
    {'w': tensor([0.5000]), 'n': tensor(3)}
    """
    if finetuned.keys() != parent.keys():
        raise HncError("the fine-tuned and the parent weights hold different tensors; they cannot be blended")
    return {k: torch.lerp(parent[k].to(v.dtype), v, share) if v.is_floating_point() else v
            for k, v in finetuned.items()}


def blend_with_parent(card_path: Path, parent_state: dict[str, Any], share: float, val_cases: Sequence[Case],
                      config: TrainConfig, cache_root: str | Path, device: str, keep_unblended: bool = False) -> None:
    """Replace the weights of ``card_path`` by their blend with the parent's, validate the blend, record both
    (``keep_unblended``: the fine-tuned weights stay beside them as the card's ``zoomed_weights``)."""
    import copy

    from ..inference.device import DeviceConfig
    from ..models.weights_io import load_model_file, save_model
    from .cache import load_cached, prepare_cache
    from .validation import click_scores, dice_from_counts, validate_automatic, validate_clicks

    model = load_model_file(card_path)
    net = model.networks[0]
    tuned = [copy.deepcopy(net)] if keep_unblended else []
    net.load_state_dict(blended_state(net.state_dict(), parent_state, share))
    card = model.card
    chosen = list(val_cases)[: config.val_max_cases]  # the cases the fine-tune validated on
    folder = prepare_cache(chosen, card, cache_root)
    cases = [load_cached(folder, c.case_id) for c in chosen]
    dev = DeviceConfig.create(device).device
    net.to(dev)
    if card.is_click_guided:
        scores = click_scores(validate_clicks(net, cases, card, dev))
    else:
        scores = dice_from_counts(validate_automatic(net, cases, card, dev), card.classes)
    finetuned = {k[len("validation_"):]: v for k, v in card.scores.items() if k.startswith("validation_dice")}
    blended = {f"validation_{k}": round(v, 6) for k, v in scores.items()}
    training = {**card.training, "validation_finetuned": finetuned,
                "blend": {"finetuned_share": share, "parent_share": round(1.0 - share, 6),
                          "method": "weight-space interpolation with the parent (WiSE-FT, Wortsman et al. 2022)"}}
    zoomed: tuple[str, ...] = ()
    if tuned:
        zoomed = (f"{card.name}-zoomed.safetensors",)
        training["zoomed_weights"] = {"file": zoomed[0], "what": "the fine-tuned weights before the blend: they draw "
                                      "the lesions the blend finds large on a region seen coarser"}
    save_model([net.to("cpu")], card.with_changes(scores={**card.scores, **blended}, training=training,
                                                  zoomed_weights=zoomed), card_path.parent, zoomed=tuned)
    log.info("blended %.2f fine-tuned + %.2f parent: %s", share, 1.0 - share,
             ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _write_after(card_path: Path) -> None:
    card = ModelCard.read(card_path)
    after = {k[len("validation_"):]: v for k, v in card.scores.items() if k.startswith("validation_dice")}
    before = card.training.get("validation_before") or {}
    worse = [k for k in after if k in before and after[k] < before[k]]
    if worse:
        log.warning("the fine-tuned model validates below its parent in %s (before %s, after %s); keep using the "
                    "parent, or fine-tune with more cases or steps", ", ".join(worse),
                    {k: before[k] for k in worse}, {k: after[k] for k in worse})
    card.with_changes(training={**card.training, "validation_after": after}).write(card_path)
