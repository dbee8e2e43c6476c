"""One optimiser step, and the model-in-the-loop rounds of click-guided training.

For a click sample with ``model_rounds`` = k, the network (without gradients)
first proposes a mask from the sample's clicks; that mask becomes the previous
mask and a click goes to the centre of its largest error -- k times -- before the
step trains on the result. This is how :class:`napari_hnc.RefinementSession`
feeds the model: its own last output, kept where it touches a positive click.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models.card import ModelCard
from .clicksim import error_click, guidance
from .config import TrainConfig
from .losses import foreground_only, segmentation_loss
from .validation import click_round

#: Gradient-norm clipping (as nnU-Net).
CLIP_NORM = 12.0


def _points(packed: torch.Tensor, count: int) -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in p) for p in packed[: int(count)].tolist()]  # type: ignore[misc]


def run_model_rounds(net: nn.Module, batch: dict[str, Any], card: ModelCard, device: torch.device) -> torch.Tensor:
    """The guidance channels of a click batch after the requested model rounds (B, 3, X, Y, Z)."""
    out = batch["guidance"].clone()
    for b in range(out.shape[0]):
        rounds = int(batch["model_rounds"][b])
        if rounds == 0:
            continue
        image, truth = batch["image"][b].numpy(), batch["truth"][b].numpy()
        positive = _points(batch["positive"][b], batch["n_positive"][b])
        negative = _points(batch["negative"][b], batch["n_negative"][b])
        previous = None
        was_training = net.training
        net.eval()
        for _ in range(rounds):
            pred = click_round(net, image, positive, negative, previous, card, device)
            found = error_click(pred, truth, card.spacing_mm)
            previous = pred
            if found is None:
                break
            (positive if found[1] else negative).append(found[0])
        net.train(was_training)
        out[b] = torch.from_numpy(guidance(truth.shape, card.spacing_mm, positive, negative, previous, card.click_encoding))
    return out


def train_step(model: nn.Module, net: nn.Module, batch: dict[str, Any], optimizer: torch.optim.Optimizer,
               scheduler: Any, card: ModelCard, config: TrainConfig, device: torch.device) -> float:
    """Forward, loss, backward, clipped AdamW step and schedule step; returns the loss.

    ``model`` is what is trained (possibly DistributedDataParallel), ``net`` the bare network.
    """
    inputs = batch["image"]
    if config.clicks:
        inputs = torch.cat([inputs, run_model_rounds(net, batch, card, device)], dim=1)
    memory = torch.channels_last_3d if config.channels_last else torch.contiguous_format
    inputs = inputs.to(device, non_blocking=True).contiguous(memory_format=memory)
    target = batch["target"].to(device, non_blocking=True)
    model.train()
    logits = model(inputs)
    if config.clicks:
        logits, target = foreground_only(logits, target)
    loss = segmentation_loss(logits, target, config.loss, config.focal_gamma)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
    optimizer.step()
    scheduler.step()
    return float(loss.detach())
