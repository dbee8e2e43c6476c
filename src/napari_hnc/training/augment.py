"""Augmentation of training patches: small rotations and scaling, mirroring, intensity jitter.

Every random choice comes from a numpy Generator, so a patch is a function of
its seed. Spatial changes act on a crop a little larger than the patch and
resample it (trilinear) about its centre, so image, soft targets and any extra
maps (a lesion mask for click training) stay aligned and the centre voxel stays
the centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .config import TrainConfig

#: Crops for spatial augmentation are this much larger than the patch.
CROP_MARGIN = 1.3


@dataclass(frozen=True)
class SpatialParams:
    """A drawn spatial transform: rotation angles (radians, about x, y, z), scale, mirrored axes."""

    angles: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    flips: tuple[int, ...] = ()

    @property
    def resamples(self) -> bool:
        return any(self.angles) or self.scale != 1.0

    @classmethod
    def draw(cls, config: TrainConfig, rng: np.random.Generator) -> "SpatialParams":
        flips = tuple(a for a in config.flip_axes if rng.random() < 0.5)
        if rng.random() >= config.spatial_probability:
            return cls(flips=flips)
        limit = np.radians(config.rotate_deg)
        angles = tuple(float(a) for a in rng.uniform(-limit, limit, 3))
        scale = float(rng.uniform(1.0 - config.scale, 1.0 + config.scale))
        return cls(angles, scale, flips)  # type: ignore[arg-type]


def rotation_matrix(angles: tuple[float, float, float]) -> np.ndarray:
    """The 3x3 rotation about the x, then y, then z axis.

    >>> np.allclose(rotation_matrix((0.0, 0.0, 0.0)), np.eye(3))
    True
    """
    out = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        out = r @ out
    return out


def crop_size(patch: int, params: SpatialParams) -> int:
    """Side of the crop to cut for ``params``: larger than the patch when it resamples, and by the scale
    when it zooms out (a scale of 2 samples twice the patch's side)."""
    return int(np.ceil(patch * CROP_MARGIN * max(params.scale, 1.0))) if params.resamples else patch


def apply_spatial(volume: torch.Tensor, patch: int, params: SpatialParams) -> torch.Tensor:
    """Resample (C, S, S, S) about its centre into (C, patch, patch, patch), then mirror.

    >>> x = torch.arange(8.0).reshape(1, 2, 2, 2)
    >>> apply_spatial(x, 2, SpatialParams(flips=(0,)))[0, :, 0, 0].tolist()
    [4.0, 0.0]
    """
    if params.resamples:
        size = volume.shape[-1]
        theta = np.zeros((3, 4))
        # grid_sample's grid is (z, y, x)-ordered relative to the tensor's last three dims
        linear = rotation_matrix(params.angles) * params.scale * (patch / size)
        theta[:, :3] = linear[::-1, ::-1]
        grid = F.affine_grid(torch.from_numpy(theta).float()[None], [1, volume.shape[0], patch, patch, patch],
                             align_corners=False)
        volume = F.grid_sample(volume[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    if params.flips:
        volume = torch.flip(volume, [a + 1 for a in params.flips])
    return volume


def jitter_intensity(image: torch.Tensor, config: TrainConfig, rng: np.random.Generator) -> torch.Tensor:
    """Per channel: with ``config.intensity_probability``, scale by U(0.85, 1.15), shift by N(0, 0.1) and add
    Gaussian noise of standard deviation U(0, 0.05)."""
    out = image.clone()
    for c in range(image.shape[0]):
        if rng.random() >= config.intensity_probability:
            continue
        scale, shift, sigma = rng.uniform(0.85, 1.15), rng.normal(0.0, 0.1), rng.uniform(0.0, 0.05)
        noise = rng.standard_normal(image.shape[1:], dtype=np.float32) * sigma
        out[c] = out[c] * float(scale) + float(shift) + torch.from_numpy(noise)
    return out
