"""Gaussian sliding window: same answer as one whole-volume pass, no seams, full coverage."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_hnc.errors import Cancelled
from napari_hnc.inference.sliding_window import WindowConfig, gaussian_weight, sliding_window, tile_starts
from napari_hnc.progress import CancelToken
from synthetic_pet_ct import one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _softmax_net(kernel: int, padding_mode: str = "zeros") -> nn.Module:
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv3d(2, 6, kernel, padding=kernel // 2, padding_mode=padding_mode), nn.Tanh(),
        nn.Conv3d(6, 3, 1),
    ).eval()
    return net


def _predict(net):
    return lambda batch: torch.softmax(net(batch), dim=1)


@pytest.mark.parametrize("overlap,batch", [(0.25, 1), (0.5, 3), (0.0, 2)])
def test_pointwise_network_gives_exactly_the_whole_volume_answer(overlap, batch):
    net = _softmax_net(1)
    image = torch.randn(2, 45, 38, 21)
    config = WindowConfig((16, 16, 16), overlap=overlap, batch_size=batch)
    with torch.inference_mode():
        tiled = sliding_window(image, _predict(net), config, out_channels=3)
        whole = _predict(net)(image[None])[0]
    assert tiled.shape == whole.shape
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_convolutional_network_matches_the_whole_volume_pass_within_tolerance():
    net = _softmax_net(3)
    image = torch.nn.functional.avg_pool3d(torch.randn(1, 2, 48, 40, 24), 3, 1, 1)[0]  # smooth input
    config = WindowConfig((16, 16, 16), overlap=0.5, fwhm=0.5)
    with torch.inference_mode():
        tiled = sliding_window(image, _predict(net), config, out_channels=3)
        whole = _predict(net)(image[None])[0]
    error = (tiled - whole).abs()
    assert error.max() < 0.02  # only the tile borders' zero padding differs, and they weigh little
    assert error.mean() < 2e-3


def test_constant_input_gives_a_constant_output_without_seams():
    net = _softmax_net(3, padding_mode="replicate")  # maps a constant volume to a constant
    image = torch.full((2, 37, 29, 19), 0.7)
    config = WindowConfig((16, 16, 8), overlap=0.3, batch_size=2)
    with torch.inference_mode():
        tiled = sliding_window(image, _predict(net), config, out_channels=3)
        single = _predict(net)(image[None, :, :4, :4, :4])[0, :, 0, 0, 0]
    assert torch.allclose(tiled, single[:, None, None, None].expand_as(tiled), atol=1e-6)


def test_volume_smaller_than_a_patch_gets_one_padded_tile_of_the_network_divisor():
    seen = []

    def predict(batch):
        seen.append(tuple(batch.shape[2:]))
        return batch[:, :1]

    image = torch.rand(1, 10, 33, 5)
    out = sliding_window(image, predict, WindowConfig((16, 16, 16), divisor=8), out_channels=1)
    assert all(s % 8 == 0 for shape in seen for s in shape)
    assert out.shape == (1, 10, 33, 5) and torch.allclose(out, image, atol=1e-6)


@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 0.5), (97, 16, 0.25), (16, 16, 0.5), (200, 64, 0.0)])
def test_tiles_cover_the_axis_and_overlap_at_least_as_asked(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] == max(0, length - tile)
    steps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(0 < s <= tile * (1 - overlap) + 1 for s in steps)


def test_gaussian_weight_has_half_maximum_at_the_patch_edges():
    weight = gaussian_weight((33, 33, 33), fwhm=1.0)
    assert float(weight[16, 16, 16]) == pytest.approx(1.0)
    assert float(weight[0, 16, 16]) == pytest.approx(0.5, abs=0.03)
    assert float(weight.min()) > 0


def test_progress_is_reported_and_cancel_stops():
    calls = []
    image = torch.rand(1, 40, 40, 40)
    config = WindowConfig((16, 16, 16), overlap=0.5)
    sliding_window(image, lambda b: b, config, out_channels=1, progress=lambda d, t, s: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] == len(calls)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        sliding_window(image, lambda b: b, config, out_channels=1, cancel=token)
