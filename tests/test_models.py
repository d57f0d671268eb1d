import pytest
import torch
from torch import nn

from artstyle.config import ModelConfig
from artstyle.errors import ModelError
from artstyle.models import TransformerNet, build_model
from artstyle.models.layers import InstanceNorm, scale_shift_norm


@pytest.mark.parametrize("h,w", [(32, 32), (37, 53), (20, 64)])
def test_any_size_in_same_size_out_in_unit_range(h: int, w: int) -> None:
    net = TransformerNet(channels=8, residual_blocks=2)
    out = net(torch.rand(2, 3, h, w))
    assert out.shape == (2, 3, h, w)
    assert out.min() >= 0 and out.max() <= 1


def test_johnson_layout() -> None:
    net = build_model(ModelConfig())
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].kernel_size == (9, 9) and convs[-1].kernel_size == (9, 9)
    assert [c.stride for c in convs[1:3]] == [(2, 2), (2, 2)]
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in net.modules()) == len(convs)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    assert sum(isinstance(m, InstanceNorm) for m in net.modules()) == 3 + 2 * 5 + 2
    assert len(net.residuals) == 5


def test_backward_reaches_every_parameter() -> None:
    net = TransformerNet(channels=8, residual_blocks=1)
    net(torch.rand(1, 3, 24, 24)).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_seeded_init_is_deterministic() -> None:
    torch.manual_seed(3)
    a = TransformerNet(channels=8, residual_blocks=1)
    torch.manual_seed(3)
    b = TransformerNet(channels=8, residual_blocks=1)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(a(x), b(x))


def test_unknown_architecture() -> None:
    with pytest.raises(ModelError, match="known: johnson"):
        build_model(ModelConfig(arch="unet"))


def test_single_movement_norm_equals_torch_instance_norm() -> None:
    norm, reference = InstanceNorm(4), nn.InstanceNorm2d(4, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(2, 4, 5, 6)
    torch.testing.assert_close(norm(x), reference(x))  # training: F.instance_norm
    with torch.no_grad():  # inference: per-image batch norm, also on channels_last tensors
        torch.testing.assert_close(norm(x), reference(x))
        torch.testing.assert_close(norm(x.contiguous(memory_format=torch.channels_last)), reference(x))


def test_scale_shift_norm_equals_torch_instance_norm() -> None:
    """The form compiled inference uses, in both layouts and in bf16."""
    torch.manual_seed(0)
    x, weight, bias = torch.randn(2, 4, 5, 6) * 3 + 1, torch.rand(4) + 0.5, torch.randn(4)
    reference = torch.nn.functional.instance_norm(x, weight=weight, bias=bias)
    torch.testing.assert_close(scale_shift_norm(x, weight, bias), reference)
    torch.testing.assert_close(scale_shift_norm(x.contiguous(memory_format=torch.channels_last), weight, bias),
                               reference)
    torch.testing.assert_close(scale_shift_norm(x), torch.nn.functional.instance_norm(x))
    half = scale_shift_norm(x.bfloat16(), weight, bias)
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), reference, atol=0.05, rtol=0.02)


def test_conditional_network_picks_and_blends_movements() -> None:
    torch.manual_seed(0)
    joint = build_model(ModelConfig(channels=8, residual_blocks=1, movements=("a", "b"), conditional=True))
    for m in joint.modules():
        if isinstance(m, InstanceNorm):
            assert m.movements == 2
            with torch.no_grad():
                m.weight.uniform_(0.5, 2)
                m.bias.uniform_(-1, 1)
    x = torch.rand(1, 3, 24, 24)
    a, b = joint(x, torch.tensor([1.0, 0.0])), joint(x, torch.tensor([0.0, 1.0]))
    assert (a - b).abs().mean() > 1e-3
    # movement "b" alone equals a one-movement network holding b's norm parameters
    single = build_model(ModelConfig(channels=8, residual_blocks=1))
    # the only 2-D tensors are the (movements, channels) norm parameters
    single.load_state_dict({k: (v[1] if v.dim() == 2 else v) for k, v in joint.state_dict().items()})
    torch.testing.assert_close(single(x), b)
    # a half-half blend interpolates the norm parameters
    half = build_model(ModelConfig(channels=8, residual_blocks=1))
    half.load_state_dict({k: (v.mean(0) if v.dim() == 2 else v) for k, v in joint.state_dict().items()})
    torch.testing.assert_close(half(x), joint(x, torch.tensor([0.5, 0.5])))
    with pytest.raises(ValueError, match="say which"):
        joint(x)
