"""Building networks from cards, and saving / loading their weights (safetensors only).

Each weight file holds one network's ``state_dict`` and, in its safetensors
metadata, the architecture, arguments and inputs it was trained with, so a
card that does not describe its weights is caught with a clear message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..errors import ModelError
from .card import ModelCard
from .networks import ARCHITECTURES

log = logging.getLogger(__name__)

_META_KEYS = ("architecture", "arguments", "inputs", "classes")


@dataclass(eq=False)
class Model:
    """A card and its networks (one per weight file: an ensemble when several), and the networks of the
    card's ``zoomed_weights`` (empty when it has none) for regions seen coarser than its spacing.

    Examples
    --------
    >>> card = ModelCard(name="tiny", architecture="SENormResUNet", arguments={"base_channels": 2, "depth": 1},
    ...                  weights=("tiny.safetensors",))
    >>> model = Model.random(card, seed=0)
    >>> len(model.networks), model.networks[0].in_channels
    (1, 2)
    """

    card: ModelCard
    networks: list[nn.Module]
    path: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    zoomed_networks: list[nn.Module] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.networks:
            raise ModelError(f"model {self.card.name!r} has no networks")
        for net in self.networks + self.zoomed_networks:
            net.eval()

    @classmethod
    def random(cls, card: ModelCard, seed: int | None = None) -> "Model":
        """Randomly initialised networks of the card's size (for benchmarks and tests)."""
        if seed is not None:
            torch.manual_seed(seed)
        return cls(card, [build_network(card) for _ in card.weights],
                   zoomed_networks=[build_network(card) for _ in card.zoomed_weights])

    def to(self, device: str | torch.device) -> "Model":
        """Move the networks to ``device`` (in place) and return self."""
        device = torch.device(device)
        if device != self.device:
            for net in self.networks + self.zoomed_networks:
                net.to(device)
            self.device = device
        return self

    @property
    def divisor(self) -> int:
        return int(getattr(self.networks[0], "divisor", 1))

    def __repr__(self) -> str:
        return f"Model({self.card.name!r}, {self.card.architecture}, {len(self.networks)} network(s), {self.device})"


def build_network(card: ModelCard) -> nn.Module:
    """The (untrained) network a card describes."""
    cls = ARCHITECTURES.get(card.architecture)
    if cls is None:
        raise ModelError(
            f"model card {card.name!r} names the architecture {card.architecture!r}, which napari-hnc does not "
            f"know; use one of {sorted(ARCHITECTURES)} (or update napari-hnc)"
        )
    try:
        return cls(in_channels=card.in_channels, out_channels=card.out_channels, **card.arguments)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"model card {card.name!r}: the arguments {card.arguments} do not fit {card.architecture} ({exc})"
        ) from exc


def _metadata(card: ModelCard) -> dict[str, str]:
    return {
        "architecture": card.architecture,
        "arguments": json.dumps(card.arguments, sort_keys=True),
        "inputs": json.dumps(list(card.inputs)),
        "classes": json.dumps({str(k): v for k, v in card.classes.items()}, sort_keys=True),
        "napari_hnc_card": card.name,
    }


def save_model(networks: Sequence[nn.Module], card: ModelCard, folder: str | Path,
               zoomed: Sequence[nn.Module] = ()) -> Path:
    """Write ``<folder>/<card.name>.json`` and one safetensors file per network (``zoomed``: those of the
    card's ``zoomed_weights``); return the card path.

    >>> import tempfile
    >>> card = ModelCard(name="tiny", architecture="SENormResUNet", arguments={"base_channels": 2, "depth": 1},
    ...                  weights=("tiny.safetensors",))
    >>> path = save_model(Model.random(card).networks, card, tempfile.mkdtemp())
    >>> load_model_file(path).card == card
    True
    """
    from safetensors.torch import save_file

    if len(networks) != len(card.weights) or len(zoomed) != len(card.zoomed_weights):
        raise ModelError(f"card {card.name!r} lists {len(card.weights)} weight file(s) and {len(card.zoomed_weights)} "
                         f"zoomed one(s) but {len(networks)} and {len(zoomed)} network(s) were given")
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    for net, name in zip(list(networks) + list(zoomed), card.weights + card.zoomed_weights):
        state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(folder / name), metadata=_metadata(card))
    return card.write(folder / f"{card.name}.json")


def load_model_file(card_path: str | Path) -> Model:
    """Load a card and all its weight files, checking that they match.

    Raises
    ------
    ModelError
        A weight file is missing or unreadable, or its tensors or metadata do not
        fit the architecture and arguments the card names.
    """
    card_path = Path(card_path)
    card = ModelCard.read(card_path)
    networks = [_load_one(card, card_path.parent / name) for name in card.weights]
    zoomed = [_load_one(card, card_path.parent / name, "zoomed_weights") for name in card.zoomed_weights]
    log.info("loaded model %s (%s, %d network(s)%s) from %s", card.name, card.architecture, len(networks),
             f", {len(zoomed)} for zoomed regions" if zoomed else "", card_path)
    return Model(card, networks, card_path, zoomed_networks=zoomed)


def _load_one(card: ModelCard, path: Path, listed: str = "weights") -> nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    net = build_network(card)
    if not path.is_file():
        raise ModelError(
            f"the weight file {path} listed by model card {card.name!r} is missing; copy it beside the card "
            f"or fix the card's \"{listed}\" list"
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path} is not a readable safetensors file ({exc}); re-export or copy it again") from exc
    _check_metadata(card, path, metadata)
    _check_state(card, path, net, state)
    net.load_state_dict(state, strict=True)
    return net.eval()


def _check_metadata(card: ModelCard, path: Path, metadata: dict[str, str]) -> None:
    expected = _metadata(card)
    diffs = [
        f"{key}: card says {expected[key]}, weights say {metadata[key]}"
        for key in _META_KEYS
        if key in metadata and _norm(metadata[key]) != _norm(expected[key])
    ]
    if diffs:
        raise ModelError(
            f"model card {card.name!r} does not match its weight file {path.name}: " + "; ".join(diffs)
            + ". Use the card that was written with these weights, or correct the card"
        )


def _norm(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except (ValueError, TypeError):
        return text


def _check_state(card: ModelCard, path: Path, net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensor(s) missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} of another shape (e.g. {shapes[:2]})")
        raise ModelError(
            f"the weights in {path.name} do not fit model card {card.name!r} ({card.architecture} "
            f"{card.arguments}, {card.in_channels} input(s), {card.out_channels} classes): " + ", ".join(parts)
            + ". Use the card that was written with these weights, or correct its architecture and arguments"
        )
