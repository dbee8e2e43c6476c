"""Gaussian-weighted sliding-window inference over a volume larger than a patch.

Tiles overlap by a configurable fraction; each tile's probabilities are
weighted by a 3D Gaussian (seed 004: full width at half maximum equal to the
patch side) and the weighted sum is divided by the summed weights, so a
constant prediction stays constant across tile borders. A volume smaller than
the patch along an axis gets one tile there, sized to the volume (rounded up to
the network's divisor and padded).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..progress import CancelToken, ProgressFn, check

log = logging.getLogger(__name__)

#: ``predict(batch (B, C, *patch)) -> probabilities (B, K, *patch)``
Predictor = Callable[[torch.Tensor], torch.Tensor]
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass(frozen=True)
class WindowConfig:
    """Sliding-window settings.

    Parameters
    ----------
    patch_size : (int, int, int)
        Tile size in voxels (the card's ``patch_size``).
    overlap : float
        Fraction of a tile shared with its neighbour, in [0, 1).
    batch_size : int
        Tiles per forward pass.
    fwhm : float
        Gaussian full width at half maximum, as a fraction of the tile side.
    divisor : int
        Tile sides are multiples of this (the network's ``2 ** depth``).
    """

    patch_size: tuple[int, int, int] = (96, 96, 96)
    overlap: float = 0.25
    batch_size: int = 1
    fwhm: float = 1.0
    divisor: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must lie in [0, 1), got {self.overlap}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if any(p % self.divisor for p in self.patch_size):
            raise ValueError(f"patch_size {self.patch_size} must be a multiple of the network divisor {self.divisor}")


def _round_up(value: int, divisor: int) -> int:
    return int(math.ceil(value / divisor) * divisor)


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start indices of tiles covering ``length`` voxels, evenly spread, first at 0 and last at the end.

    >>> tile_starts(100, 40, 0.25)
    [0, 30, 60]
    >>> tile_starts(30, 40, 0.5)
    [0]
    """
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1.0 - overlap)))
    count = int(math.ceil((length - tile) / step)) + 1
    return [int(round(v)) for v in np.linspace(0, length - tile, count)]


@lru_cache(maxsize=8)
def _gaussian_cached(tile: tuple[int, int, int], fwhm: float) -> torch.Tensor:
    axes = []
    for size in tile:
        centre, sigma = (size - 1) / 2.0, max(size * fwhm * FWHM_TO_SIGMA, 1e-3)
        axes.append(np.exp(-0.5 * ((np.arange(size) - centre) / sigma) ** 2))
    weight = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    weight = np.maximum(weight / weight.max(), 1e-4)
    return torch.from_numpy(weight.astype(np.float32))


def gaussian_weight(tile: Sequence[int], fwhm: float = 1.0) -> torch.Tensor:
    """The tile weight: a separable Gaussian with maximum 1 (floored at 1e-4, so every voxel counts)."""
    return _gaussian_cached(tuple(int(t) for t in tile), float(fwhm))


def sliding_window(
    image: torch.Tensor,
    predict: Predictor,
    config: WindowConfig,
    *,
    out_channels: int,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[CancelToken] = None,
) -> torch.Tensor:
    """Blend ``predict`` over tiles of ``image`` (C, X, Y, Z) into probabilities (K, X, Y, Z) on the CPU.

    Examples
    --------
    >>> import torch
    >>> image = torch.rand(1, 50, 40, 30)
    >>> out = sliding_window(image, lambda b: b * 2, WindowConfig((16, 16, 16), overlap=0.5), out_channels=1)
    >>> bool(torch.allclose(out, image * 2, atol=1e-5))
    True
    """
    spatial = tuple(int(s) for s in image.shape[1:])
    tile = tuple(min(p, _round_up(s, config.divisor)) for p, s in zip(config.patch_size, spatial))
    padded = tuple(max(s, t) for s, t in zip(spatial, tile))
    if padded != spatial:
        pad = [v for s, p in zip(reversed(spatial), reversed(padded)) for v in (0, p - s)]
        image = F.pad(image, pad, mode="replicate")
    starts = list(product(*(tile_starts(n, t, config.overlap) for n, t in zip(padded, tile))))
    weight = gaussian_weight(tile, config.fwhm)
    total = torch.zeros((out_channels, *padded), dtype=torch.float32)
    norm = torch.zeros(padded, dtype=torch.float32)
    done = 0
    for first in range(0, len(starts), config.batch_size):
        check(cancel)
        group = starts[first : first + config.batch_size]
        windows = [tuple(slice(s, s + t) for s, t in zip(start, tile)) for start in group]
        batch = torch.stack([image[(slice(None), *w)] for w in windows])
        probs = predict(batch).to(device="cpu", dtype=torch.float32)
        for window, prob in zip(windows, probs):
            total[(slice(None), *window)] += prob * weight
            norm[window] += weight
        done += len(group)
        if progress is not None:
            progress(done, len(starts), "sliding window")
    log.debug("sliding window: %d tile(s) of %s over %s", len(starts), tile, spatial)
    out = total / norm
    return out[(slice(None), *(slice(0, s) for s in spatial))]
