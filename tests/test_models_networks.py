"""The networks and their blocks: shapes, SE-Norm, recurrence, attention, the oneDNN convolution."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_hnc.models import ARCHITECTURES, ResUNetMHSA, SENormResUNet
from napari_hnc.models.blocks import BottleneckMHSA, Conv3d, RecurrentConv, SENorm
from synthetic_pet_ct import one_torch_thread

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("in_channels", [2, 5])
def test_every_architecture_maps_inputs_to_three_class_logits(name, in_channels):
    net = ARCHITECTURES[name](in_channels=in_channels, base_channels=4, depth=2).eval()
    x = torch.randn(2, in_channels, 16, 12, 8)
    with torch.inference_mode():
        out = net(x)
    assert out.shape == (2, 3, 16, 12, 8)
    assert torch.isfinite(out).all()
    assert net.divisor == 4


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_width_and_depth_are_configurable(name):
    cls = ARCHITECTURES[name]
    small, wide, deep = cls(base_channels=4, depth=2), cls(base_channels=8, depth=2), cls(base_channels=4, depth=3)
    count = lambda n: sum(p.numel() for p in n.parameters())  # noqa: E731
    assert count(wide) > 2 * count(small)
    assert count(deep) > count(small)
    assert deep.divisor == 8 and len(deep.encoders) == 4


def test_se_norm_is_instance_norm_scaled_by_sigmoid_and_shifted_by_tanh():
    norm = SENorm(4)
    x = torch.randn(2, 4, 5, 6, 7) * 3 + 1
    with torch.no_grad():
        for branch in (norm.gamma, norm.beta):
            branch.fc2.weight.zero_()
        norm.gamma.fc2.bias.fill_(0.0)  # sigmoid(0) = 0.5
        norm.beta.fc2.bias.fill_(100.0)  # tanh(100) = 1
        out = norm(x)
    expected = 0.5 * nn.functional.instance_norm(x) + 1.0
    assert torch.allclose(out, expected, atol=1e-5)


def test_se_norm_scale_and_shift_depend_on_the_input():
    norm = SENorm(4).eval()
    x = torch.randn(1, 4, 6, 6, 6)
    with torch.no_grad():
        a, b = norm(x), norm(x * 5 + 2)  # same instance-normalised input, other channel means
    assert not torch.allclose(a, b, atol=1e-4)


def test_recurrent_conv_applies_its_convolution_t_times():
    block = RecurrentConv(3, t=2)
    calls = []
    block.conv.register_forward_hook(lambda *_: calls.append(1))
    block(torch.randn(1, 3, 4, 4, 4))
    assert len(calls) == 2


def test_attention_bottleneck_handles_any_size_and_mixes_distant_voxels():
    torch.manual_seed(0)
    block = BottleneckMHSA(8, heads=2).eval()
    x = torch.randn(1, 8, 3, 4, 5)
    with torch.no_grad():
        base = block(x)
        changed = x.clone()
        changed[0, :, 0, 0, 0] += torch.randn(8) * 3  # one corner voxel
        moved = block(changed)
    assert base.shape == x.shape
    assert not torch.allclose(base[0, :, 2, 3, 4], moved[0, :, 2, 3, 4])  # the opposite corner saw it


def test_mhsa_unet_rejects_heads_that_do_not_divide_the_bottleneck():
    with pytest.raises(ValueError, match="divisible"):
        ResUNetMHSA(base_channels=3, depth=1, heads=4)


@pytest.mark.parametrize("cin,cout,kernel,stride", [(2, 8, 3, 1), (5, 4, 3, 2), (8, 8, 1, 1)])
def test_onednn_conv_equals_torch_conv(cin, cout, kernel, stride):
    torch.manual_seed(1)
    fast = Conv3d(cin, cout, kernel, stride=stride, padding=kernel // 2)
    reference = nn.Conv3d(cin, cout, kernel, stride=stride, padding=kernel // 2)
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(1, cin, 20, 18, 9)
    with torch.inference_mode():
        assert torch.allclose(fast(x), reference(x), atol=1e-5)
    loss = fast(x).sum()  # training path: ordinary autograd
    loss.backward()
    assert fast.weight.grad is not None


def test_networks_train_with_gradients():
    net = SENormResUNet(base_channels=2, depth=1)
    x = torch.randn(1, 2, 8, 8, 8)
    nn.functional.cross_entropy(net(x), torch.zeros(1, 8, 8, 8, dtype=torch.long)).backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
