"""Ensemble mean over several networks (e.g. 5 folds), with optional flip test-time augmentation."""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import torch
from torch import nn

#: Spatial axes of a (B, C, X, Y, Z) batch.
SPATIAL_AXES = (2, 3, 4)


def flip_sets(tta: bool) -> list[tuple[int, ...]]:
    """The axis sets to mirror: only the identity, or all 8 combinations of the three axes.

    >>> len(flip_sets(True)), flip_sets(False)
    (8, [()])
    """
    if not tta:
        return [()]
    return [axes for n in range(4) for axes in combinations(SPATIAL_AXES, n)]


class EnsemblePredictor:
    """Mean softmax probability of ``networks`` (and their mirrored inputs when ``tta``).

    Examples
    --------
    >>> import torch
    >>> a, b = torch.nn.Conv3d(1, 2, 1), torch.nn.Conv3d(1, 2, 1)
    >>> x = torch.randn(1, 1, 4, 4, 4)
    >>> both = EnsemblePredictor([a, b], torch.device("cpu"))(x)
    >>> mean = (EnsemblePredictor([a], torch.device("cpu"))(x) + EnsemblePredictor([b], torch.device("cpu"))(x)) / 2
    >>> bool(torch.allclose(both, mean, atol=1e-6))
    True
    """

    def __init__(self, networks: Sequence[nn.Module], device: torch.device, *, tta: bool = False) -> None:
        if not networks:
            raise ValueError("an ensemble needs at least one network")
        self.networks = list(networks)
        self.device = device
        self.flips = flip_sets(tta)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        total = None
        for net in self.networks:
            for axes in self.flips:
                x = torch.flip(batch, axes) if axes else batch
                probs = torch.softmax(net(x).float(), dim=1)
                probs = torch.flip(probs, axes) if axes else probs
                total = probs if total is None else total + probs
        return total / (len(self.networks) * len(self.flips))
