"""The training loop: :func:`train`.

AdamW with a linear warm-up and a cosine decay, one validation after every
epoch, the best weights kept as safetensors with their model card, a resume
checkpoint after every epoch (a resumed run continues exactly as if it had not
stopped), CSV + text logs and a PNG learning curve. Started by ``torchrun``,
it trains with DistributedDataParallel (gloo on the CPU, NCCL on GPUs): every
process draws its own share of each epoch's samples through a
``DistributedSampler``, validation cases are shared out, rank 0 writes.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import HncError
from ..progress import CancelToken, check, no_progress
from ..inference.distributed import DistInfo, distributed, gather, shard
from ..models.card import ModelCard
from ..models.weights_io import build_network, save_model
from .cache import CachedCase, load_cached, prepare_cache
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .dataset import Case
from .logs import CURVE_PNG, EPOCHS_CSV, STEPS_CSV, append_rows, plot_curve, text_handler, truncate_rows
from .patches import PatchDataset
from .steps import train_step
from .validation import click_scores, dice_from_counts, validate_automatic, validate_clicks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Where the trained model went and how it scored."""

    card_path: Path
    best_score: float
    best_epoch: int
    epochs_done: int
    score_name: str


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine decay to 0 at ``total``.

    >>> [round(lr_factor(s, 2, 10), 3) for s in (0, 1, 2, 6, 10)]
    [0.5, 1.0, 1.0, 0.5, 0.0]
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def score_name(config: TrainConfig) -> str:
    return "dice_clicks" if config.clicks else "dice_union"


class _Run:
    """The state of one training run (one per process)."""

    def __init__(self, card: ModelCard, config: TrainConfig, out: Path, info: DistInfo, device: torch.device,
                 init_weights: dict[str, torch.Tensor] | None = None) -> None:
        self.card, self.config, self.out, self.info, self.device = card, config, out, info, device
        torch.manual_seed(config.seed)
        self.net = build_network(card)
        if init_weights is not None:  # fine-tuning: start from the parent model's weights
            self.net.load_state_dict(init_weights, strict=True)
        self.net = self.net.to(device)
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last_3d)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, config.warmup_steps, config.total_steps))
        self.epoch, self.best, self.best_epoch, self.history = 0, -1.0, 0, []  # type: ignore[var-annotated]
        self.model: torch.nn.Module = self.net
        if info.initialized:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=ids)

    def state(self) -> dict[str, Any]:
        return {"network": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "best": self.best,
                "best_epoch": self.best_epoch, "history": self.history, "config": self.config.to_dict(),
                "card": self.card.to_dict()}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("config") != self.config.to_dict():
            saved = TrainConfig.from_dict(state.get("config", {})).to_dict()
            diffs = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in self.config.to_dict().items() if saved.get(k) != v]
            raise HncError(f"--resume with other training settings ({'; '.join(diffs)}); resume with the same "
                           "settings, or start a new run in another --out folder")
        self.net.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.best, self.best_epoch = int(state["epoch"]), float(state["best"]), int(state["best_epoch"])
        self.history = list(state["history"])


def train(train_cases: Sequence[Case], val_cases: Sequence[Case], card: ModelCard, config: TrainConfig,
          out: str | Path, *, cache_root: str | Path, device: str = "auto", threads: int | None = None,
          resume: bool = False, stop_after: int | None = None, workers: int = 0,
          training_info: dict[str, Any] | None = None, init_weights: dict[str, torch.Tensor] | None = None,
          progress: Callable[[int, int, str], None] | None = None, cancel: CancelToken | None = None) -> TrainResult:
    """Train the network of ``card`` and write ``out/<card.name>.json`` + weights (the best epoch).

    Parameters
    ----------
    train_cases, val_cases : sequences of Case
        From :func:`~.dataset.index_dataset` and :func:`~.dataset.train_val_split`.
    card : ModelCard
        Architecture, inputs (click-guided when they list clicks), spacing and preprocessing.
    config : TrainConfig
    out : path
        Output folder: card and weights, ``last.pt`` (resume), ``steps.csv``, ``epochs.csv``,
        ``train.log``, ``learning_curve.png``, ``config.json``.
    cache_root : path
        Folder of the preprocessing cache (shared by runs with the same spacing and preprocessing).
    resume : bool
        Continue from ``out/last.pt``.
    stop_after : int, optional
        End after this many epochs of this call (continue later with ``resume=True``).
    training_info : dict, optional
        Recorded under the card's ``"training"`` (data, command, ...).
    init_weights : state dict, optional
        Start from these weights (fine-tuning, :mod:`.finetune`) instead of a random initialisation; the
        validation of these weights before the first step is recorded as ``training["validation_before"]``.
    progress, cancel : optional
        ``progress(done_steps, total_steps, description)`` and a cancel token checked after every step
        (:class:`~napari_hnc.errors.Cancelled` then; nothing of the run is kept but its checkpoints).

    Returns
    -------
    TrainResult
    """
    out = Path(out).expanduser()
    if config.clicks != card.is_click_guided:
        raise HncError("the card's inputs and TrainConfig.clicks disagree; use preset_card('click') for --clicks")
    if config.clicks and tuple(card.patch_size) != (config.patch_size,) * 3:
        # A click model runs on a region of the size it was trained on (validation included): one trained on 48^3
        # patches was unstable on 64^3 regions (its attention and instance norms saw another context).
        card = card.with_changes(patch_size=(config.patch_size,) * 3)
    with distributed(device) as info:
        handler = _start_logging(out, info)
        try:
            return _train(train_cases, val_cases, card, config, out, Path(cache_root), info, device, threads,
                          resume, stop_after, workers, dict(training_info or {}), init_weights,
                          progress or no_progress, cancel)
        finally:
            if handler is not None:
                logging.getLogger("napari_hnc").removeHandler(handler)
                handler.close()


def _start_logging(out: Path, info: DistInfo) -> logging.Handler | None:
    out.mkdir(parents=True, exist_ok=True)
    if not info.is_main:
        return None
    handler = text_handler(out)
    root = logging.getLogger("napari_hnc")
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


def _train(train_cases, val_cases, card, config, out, cache_root, info, device, threads, resume, stop_after,
           workers, training_info, init_weights, progress, cancel) -> TrainResult:
    from ..inference.device import DeviceConfig

    dev_config = DeviceConfig.create(info.device(device), threads or info.cpu_threads())
    dev_config.activate()
    dev = dev_config.device
    if (out / CHECKPOINT).is_file() and not resume:
        raise HncError(f"{out} already holds a training run ({CHECKPOINT}); pass --resume to continue it, "
                       "or choose another --out folder")
    cached_train, cached_val = _cached(train_cases, val_cases, card, cache_root, info)
    card = card.with_changes(training={**card.training, **training_info})
    run = _Run(card, config, out, info, dev, init_weights)
    run.progress, run.cancel = progress, cancel
    if resume:
        run.restore(load_checkpoint(out / CHECKPOINT))
        if info.is_main:
            truncate_rows(out / STEPS_CSV, run.epoch * config.steps_per_epoch)
            truncate_rows(out / EPOCHS_CSV, run.epoch)
        log.info("resuming after epoch %d (best %s %.4f at epoch %d)", run.epoch, score_name(config), run.best,
                 run.best_epoch)
    if info.is_main:
        config.write(out / "config.json")
    dataset = PatchDataset(cached_train, card, config, config.steps_per_epoch * config.batch_size * info.world_size)
    sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=False)
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=workers)
    validation = cached_val[: config.val_max_cases]
    if init_weights is not None and not resume:
        before = {k: round(v, 6) for k, v in _validate(run, validation).items()}
        log.info("before fine-tuning: %s", ", ".join(f"{k} {v:.4f}" for k, v in before.items()))
        run.card = run.card.with_changes(training={**run.card.training, "validation_before": before})
    log.info("training %s (%s) on %d cases, validating on %d, %d epochs of %d steps, %s %s", card.name,
             card.architecture, len(cached_train), len(validation), config.epochs, config.steps_per_epoch, dev,
             info.label())
    earlier = 60.0 * run.history[-1]["elapsed_min"] if run.history else 0.0  # a resumed run goes on counting
    started, last_epoch = time.perf_counter() - earlier, config.epochs
    if stop_after is not None:
        last_epoch = min(config.epochs, run.epoch + stop_after)
    while run.epoch < last_epoch:
        _one_epoch(run, dataset, sampler, loader, validation, started)
    result = TrainResult(out / f"{card.name}.json", run.best, run.best_epoch, run.epoch, score_name(config))
    if info.is_main and run.epoch == config.epochs:
        _finish_card(run, time.perf_counter() - started - earlier)
    return result


def _cached(train_cases, val_cases, card, cache_root, info):
    everything = list(train_cases) + list(val_cases)
    folder = prepare_cache(shard(everything, info), card, cache_root)
    if info.initialized:
        import torch.distributed as dist

        dist.barrier()
    return [load_cached(folder, c.case_id) for c in train_cases], [load_cached(folder, c.case_id) for c in val_cases]


def _one_epoch(run: _Run, dataset, sampler, loader, validation: list[CachedCase], started: float) -> None:
    config, epoch = run.config, run.epoch
    dataset.set_epoch(epoch)
    sampler.set_epoch(epoch)
    rows, began = [], time.perf_counter()
    for step, batch in enumerate(loader):
        loss = train_step(run.model, run.net, batch, run.optimizer, run.scheduler, run.card, config, run.device)
        global_step = epoch * config.steps_per_epoch + step
        rows.append({"epoch": epoch + 1, "step": global_step + 1, "loss": round(loss, 6),
                     "lr": run.scheduler.get_last_lr()[0]})
        run.progress(global_step + 1, config.total_steps, f"epoch {epoch + 1}/{config.epochs}")
        check(run.cancel)
        if step % 25 == 0:
            log.info("epoch %d step %d/%d loss %.4f", epoch + 1, step + 1, config.steps_per_epoch, loss)
    rows = _mean_over_ranks(gather(rows, run.info)) if run.info.initialized else rows
    scores = _validate(run, validation)
    run.epoch += 1
    if run.info.is_main:
        loss = float(np.mean([r["loss"] for r in rows]))
        _record(run, rows, loss, scores, time.perf_counter() - began, time.perf_counter() - started)
    if run.info.initialized:
        import torch.distributed as dist

        dist.barrier()


def _mean_over_ranks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per step with the loss averaged over the processes (DDP averages their gradients too)."""
    steps: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        steps.setdefault(row["step"], []).append(row)
    return [{**group[0], "loss": round(float(np.mean([r["loss"] for r in group])), 6)} for _, group in sorted(steps.items())]


def _validate(run: _Run, validation: list[CachedCase]) -> dict[str, float]:
    mine = shard(validation, run.info)
    if run.config.clicks:
        return click_scores(gather(validate_clicks(run.net, mine, run.card, run.device), run.info))
    counts = gather([validate_automatic(run.net, mine, run.card, run.device)], run.info)
    return dice_from_counts(np.sum(counts, axis=0), run.card.classes)


def _record(run: _Run, rows, loss: float, scores: dict[str, float], seconds: float, total: float) -> None:
    name = score_name(run.config)
    score = scores.get(name, float("nan"))
    row = {"epoch": run.epoch, "train_loss": round(loss, 6), **{k: round(v, 6) for k, v in scores.items()},
           "seconds": round(seconds, 1), "elapsed_min": round(total / 60, 2)}
    run.history.append(row)
    improved = not math.isnan(score) and score > run.best
    if improved:
        run.best, run.best_epoch = score, run.epoch
        save_model([run.net], _card_with_scores(run), run.out)
    save_checkpoint(run.out / CHECKPOINT, run.state())
    append_rows(run.out / STEPS_CSV, rows)
    append_rows(run.out / EPOCHS_CSV, [row])
    plot_curve(run.history, run.out / CURVE_PNG, name)
    log.info("epoch %d: loss %.4f, %s%s (%.0f s)", run.epoch, loss,
             ", ".join(f"{k} {v:.4f}" for k, v in scores.items()), " (best so far)" if improved else "", seconds)


def _card_with_scores(run: _Run) -> ModelCard:
    best = next(r for r in run.history if r["epoch"] == run.best_epoch)
    scores = {f"validation_{k}": v for k, v in best.items() if k.startswith("dice")}
    scores["validation_epoch"] = run.best_epoch
    return run.card.with_changes(scores={**run.card.scores, **scores})


def _finish_card(run: _Run, seconds: float) -> None:
    from ..models.card import ModelCard as Card

    path = run.out / f"{run.card.name}.json"
    if not path.is_file():
        log.warning("no epoch gave a validation score; the weights were not written")
        return
    card = Card.read(path)
    info = {**card.training, "config": run.config.to_dict(), "epochs": run.epoch,
            "best_epoch": run.best_epoch, "torch": torch.__version__, "device": str(run.device),
            "world_size": run.info.world_size, "threads": torch.get_num_threads(),
            "minutes_this_run": round(seconds / 60, 1),
            "minutes_training": round(sum(row["seconds"] for row in run.history) / 60, 1)}
    card.with_changes(training=info).write(path)
