"""Building blocks of the segmentation networks (3D, PyTorch).

* :class:`SENorm` -- squeeze-and-excitation normalisation (Iantsen et al.,
  HECKTOR 2020; seed 000): instance normalisation whose per-channel scale and
  shift are predicted from the input by two squeeze-excitation branches, one
  ending in a sigmoid (scale) and one in a tanh (shift).
* :class:`SENormConv` and :class:`ResSENormBlock` -- convolution, ReLU, SE-Norm,
  and the residual block built from it.
* :class:`ResBlock` -- a plain residual block (conv, instance norm, leaky ReLU)
  for the residual U-Net of Nikulin et al. 2023 (seed 004).
* :class:`RecurrentResBlock` -- residual recurrent convolution (R2U-Net style,
  recurrence ``t``) with SE-Norm, the contracting block of the RRSE U-Net (seed 001).
* :class:`BottleneckMHSA` -- a pre-norm transformer layer (multi-head
  self-attention and MLP) over the voxels of the bottleneck, with a 3D
  sinusoidal position code so that any input size works.
* :class:`Hypercolumn` -- a decoder level's features projected and upsampled to
  full resolution, summed into the output (the "upsampling pathway").

All blocks keep the spatial size (``padding = kernel // 2``); resolution
changes happen in the networks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _mkldnn_usable(x: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
        and torch.backends.mkldnn.is_available()
    )


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that always takes oneDNN's kernel for CPU inference.

    PyTorch picks its slow reference kernel for a single volume whose
    ``channels x depth x height`` is small (for example the 2-channel PET/CT
    input at batch 1), which is 5-30x slower on CPU. The weights and the
    state-dict keys are those of ``nn.Conv3d``; training and other devices use
    the ordinary path.
    """

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.padding_mode == "zeros" and not isinstance(self.padding, str) and _mkldnn_usable(x):
            return torch.ops.aten.mkldnn_convolution(
                x.contiguous(), weight, bias, list(self.padding), list(self.stride), list(self.dilation), self.groups
            )
        return super()._conv_forward(x, weight, bias)


class SEWeights(nn.Module):
    """Squeeze-excitation branch: global average pool, 1x1x1 conv, ReLU, 1x1x1 conv."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = Conv3d(channels, hidden, 1)
        self.fc2 = Conv3d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=(2, 3, 4), keepdim=True)
        return self.fc2(F.relu(self.fc1(squeezed)))


class SENorm(nn.Module):
    """Instance norm with scale ``sigmoid(SE(x))`` and shift ``tanh(SE(x))``.

    >>> import torch
    >>> SENorm(4)(torch.randn(2, 4, 6, 6, 6)).shape
    torch.Size([2, 4, 6, 6, 6])
    """

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm3d(channels, affine=False)
        self.gamma = SEWeights(channels, reduction)
        self.beta = SEWeights(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma = torch.sigmoid(self.gamma(x))
        beta = torch.tanh(self.beta(x))
        return torch.addcmul(beta, gamma, self.norm(x))


class SENormConv(nn.Module):
    """Convolution, ReLU, SE-Norm (the order of Iantsen's layers)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, reduction: int = 2) -> None:
        super().__init__()
        self.conv = Conv3d(cin, cout, kernel, padding=kernel // 2)
        self.norm = SENorm(cout, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.relu(self.conv(x), inplace=True))


class ResSENormBlock(nn.Module):
    """Residual SE-Norm block: two SE-Norm convolutions plus a (projected) identity."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, reduction: int = 2) -> None:
        super().__init__()
        self.conv1 = SENormConv(cin, cout, kernel, reduction)
        self.conv2 = SENormConv(cout, cout, kernel, reduction)
        self.skip = SENormConv(cin, cout, 1, reduction) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)) + self.skip(x)


class ConvNormAct(nn.Sequential):
    """Convolution, instance norm (affine), leaky ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(
            Conv3d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.InstanceNorm3d(cout, affine=True),
            nn.LeakyReLU(0.01, inplace=True),
        )


class ResBlock(nn.Module):
    """Residual block: conv-norm-act, conv-norm, plus a (projected) identity, then leaky ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(cin, cout, kernel)
        self.conv2 = nn.Sequential(
            Conv3d(cout, cout, kernel, padding=kernel // 2, bias=False), nn.InstanceNorm3d(cout, affine=True)
        )
        self.skip = (
            nn.Sequential(Conv3d(cin, cout, 1, bias=False), nn.InstanceNorm3d(cout, affine=True))
            if cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv2(self.conv1(x)) + self.skip(x), 0.01)


class RecurrentConv(nn.Module):
    """Recurrent convolution: ``h = f(x); h = f(x + h)`` repeated ``t`` times, f = SE-Norm conv."""

    def __init__(self, channels: int, t: int = 2, reduction: int = 2) -> None:
        super().__init__()
        self.t = t
        self.conv = SENormConv(channels, channels, 3, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        for _ in range(self.t - 1):
            h = self.conv(x + h)
        return h


class RecurrentResBlock(nn.Module):
    """Residual recurrent block (RRCNN): 1x1x1 projection, two recurrent convs, residual sum."""

    def __init__(self, cin: int, cout: int, t: int = 2, reduction: int = 2) -> None:
        super().__init__()
        self.project = Conv3d(cin, cout, 1)
        self.body = nn.Sequential(RecurrentConv(cout, t, reduction), RecurrentConv(cout, t, reduction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        return x + self.body(x)


def sinusoidal_position_3d(shape: tuple[int, int, int], channels: int, device=None, dtype=None) -> torch.Tensor:
    """A fixed 3D sine/cosine position code of shape ``(D*H*W, channels)``.

    Each third of the channels (rounded down to an even count) encodes one axis;
    left-over channels stay zero.

    >>> sinusoidal_position_3d((2, 3, 4), 12).shape
    torch.Size([24, 12])
    """
    per_axis = (channels // 3) // 2 * 2
    code = torch.zeros(*shape, channels, device=device, dtype=torch.float32)
    if per_axis == 0:
        return code.reshape(-1, channels).to(dtype or torch.float32)
    freqs = torch.exp(torch.arange(0, per_axis, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / per_axis))
    for axis, size in enumerate(shape):
        pos = torch.arange(size, device=device, dtype=torch.float32)[:, None] * freqs[None, :]
        view = [1, 1, 1, per_axis // 2]
        view[axis] = size
        start = axis * per_axis
        code[..., start : start + per_axis : 2] = torch.sin(pos).reshape(view)
        code[..., start + 1 : start + per_axis : 2] = torch.cos(pos).reshape(view)
    return code.reshape(-1, channels).to(dtype or torch.float32)


class BottleneckMHSA(nn.Module):
    """Pre-norm transformer layer over bottleneck voxels: ``x + MHSA(LN(x))``, ``x + MLP(LN(x))``."""

    def __init__(self, channels: int, heads: int = 4, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"bottleneck channels ({channels}) must be divisible by the attention heads ({heads})")
        self.heads = heads
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, d, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (b, n, c)
        position = sinusoidal_position_3d((d, h, w), c, x.device, x.dtype)
        q, k, v = self.qkv(self.norm1(tokens) + position).reshape(b, -1, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, -1, c)
        tokens = tokens + self.proj(attended)
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.transpose(1, 2).reshape(b, c, d, h, w)


class Hypercolumn(nn.Module):
    """Project a decoder level to ``cout`` channels (1x1x1) and upsample it by ``scale`` (trilinear)."""

    def __init__(self, cin: int, cout: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv = Conv3d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=self.scale, mode="trilinear", align_corners=False)
