"""Training settings: one frozen dataclass, written beside the outputs as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import HncError

ARCHITECTURE_OF = {"senorm": "SENormResUNet", "mhsa": "ResUNetMHSA", "rrse": "RRSEUNet"}


@dataclass(frozen=True)
class TrainConfig:
    """What and how to train.

    Parameters
    ----------
    clicks : bool
        Train the click-guided variant (inputs CT, PET, positive and negative
        clicks, previous mask) for :class:`napari_hnc.RefinementSession`.
    patch_size : int
        Side of the training patches (voxels of the card's spacing). A click-guided
        card's ``patch_size`` (its region around the click) becomes this size; an
        automatic card keeps its own (inference tiles).
    epochs, steps_per_epoch, batch_size : int
        Optimiser steps are ``epochs * steps_per_epoch``; each step sees
        ``batch_size`` patches per process. Validation runs after every epoch.
    lr, weight_decay, warmup_steps : float, float, int
        AdamW with a linear warm-up, then a cosine decay to 0.
    loss : {"dice_ce", "focal"}
        Soft Dice + cross-entropy, or soft Dice + focal loss (``focal_gamma``).
    foreground_fraction : float
        Share of automatic-model patches centred on a lesion (the rest anywhere).
    flip_axes : tuple of int
        Model-grid axes (RAS order) that augmentation may mirror.
    rotate_deg, scale : float
        Largest rotation (degrees) and relative scaling of the spatial augmentation.
    seed : int
        Every patch, augmentation and click is a function of (seed, epoch, index).
    val_max_cases : int
        At most this many validation cases are scored after each epoch.

    Examples
    --------
    >>> TrainConfig(epochs=2).total_steps
    500
    """

    clicks: bool = False
    patch_size: int = 64
    epochs: int = 10
    steps_per_epoch: int = 250
    batch_size: int = 2
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    loss: str = "dice_ce"
    focal_gamma: float = 2.0
    foreground_fraction: float = 0.67
    flip_axes: tuple[int, ...] = (0,)
    rotate_deg: float = 15.0
    scale: float = 0.15
    spatial_probability: float = 0.5
    intensity_probability: float = 0.5
    seed: int = 0
    val_max_cases: int = 6
    channels_last: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "flip_axes", tuple(int(a) for a in self.flip_axes))
        checks = {
            "epochs": self.epochs >= 1, "steps_per_epoch": self.steps_per_epoch >= 1,
            "batch_size": self.batch_size >= 1, "patch_size": self.patch_size >= 8, "lr": self.lr > 0,
            "foreground_fraction": 0.0 <= self.foreground_fraction <= 1.0,
            "flip_axes": all(a in (0, 1, 2) for a in self.flip_axes), "val_max_cases": self.val_max_cases >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise HncError(f"training settings out of range: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")
        if self.loss not in ("dice_ce", "focal"):
            raise HncError(f"loss must be 'dice_ce' or 'focal', not {self.loss!r}")

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["flip_axes"] = list(self.flip_axes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    def with_changes(self, **changes: Any) -> "TrainConfig":
        return replace(self, **changes)
