import pytest
import torch
from torch import nn

from artstyle.config import ModelConfig
from artstyle.errors import ModelError
from artstyle.image import to_tensor
from artstyle.models import HalfResNet, TransformerNet, build_model
from artstyle.models.layers import ConvLayer, InstanceNorm, UpsampleConv, scale_shift_norm
from artstyle.models.rewrite import BlockConv, SubPixelUpsampleConv, depth_to_space, rewrite_for_gpu, space_to_depth


@pytest.mark.parametrize("arch", [TransformerNet, HalfResNet])
@pytest.mark.parametrize("h,w", [(32, 32), (37, 53), (20, 64)])
def test_any_size_in_same_size_out_in_unit_range(arch: type[nn.Module], h: int, w: int) -> None:
    net = arch(channels=8, residual_blocks=2)
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


def test_halfres_never_convolves_at_full_resolution_and_paints_every_pixel() -> None:
    net = build_model(ModelConfig(arch="halfres", channels=8))
    assert isinstance(net, HalfResNet) and len(net.residuals) == 5
    sizes: list[tuple[int, int]] = []
    for conv in (m for m in net.modules() if isinstance(m, nn.Conv2d)):
        conv.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
    x = torch.rand(1, 3, 64, 48, requires_grad=True)
    out = net(x)
    assert max(sizes) == (32, 24) and (16, 12) in sizes  # half resolution at most, a quarter in the middle
    # every output pixel, not one per 2x2 block: its four pixels differ, and each sees its own input pixel
    assert (out[..., 0::2, 0::2] - out[..., 1::2, 1::2]).abs().mean() > 1e-3
    out[0, :, 5, 7].sum().backward()
    assert x.grad is not None and x.grad[0, :, 5, 7].abs().sum() > 0


@pytest.mark.parametrize("arch", [TransformerNet, HalfResNet])
def test_backward_reaches_every_parameter(arch: type[nn.Module]) -> None:
    net = arch(channels=8, residual_blocks=1)
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
    with pytest.raises(ModelError, match="known: johnson, halfres"):
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


@pytest.mark.parametrize("arch", ["johnson", "halfres"])
def test_conditional_network_picks_and_blends_movements(arch: str) -> None:
    torch.manual_seed(0)
    joint = build_model(ModelConfig(arch=arch, channels=8, residual_blocks=1, movements=("a", "b"),
                                    conditional=True))
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
    single = build_model(ModelConfig(arch=arch, channels=8, residual_blocks=1))
    # the only 2-D tensors are the (movements, channels) norm parameters
    single.load_state_dict({k: (v[1] if v.dim() == 2 else v) for k, v in joint.state_dict().items()})
    torch.testing.assert_close(single(x), b)
    # a half-half blend interpolates the norm parameters
    half = build_model(ModelConfig(arch=arch, channels=8, residual_blocks=1))
    half.load_state_dict({k: (v.mean(0) if v.dim() == 2 else v) for k, v in joint.state_dict().items()})
    torch.testing.assert_close(half(x), joint(x, torch.tensor([0.5, 0.5])))
    with pytest.raises(ValueError, match="say which"):
        joint(x)


def test_space_to_depth_layout() -> None:
    x = torch.randn(2, 3, 8, 12)
    blocks = space_to_depth(x, 4)
    assert blocks.shape == (2, 48, 2, 3)
    i, j, c, y, x_ = 1, 3, 2, 1, 2  # channel (i * r + j) * C + c holds pixel (r * y + i, r * x + j)
    assert blocks[1, (i * 4 + j) * 3 + c, y, x_] == x[1, c, 4 * y + i, 4 * x_ + j]
    assert torch.equal(depth_to_space(blocks, 4), x)


@pytest.mark.parametrize("kernel,r", [(9, 4), (5, 2), (3, 2)])
def test_block_conv_equals_padded_convolution(kernel: int, r: int) -> None:
    torch.manual_seed(0)
    layer = ConvLayer(3, 5, kernel).double()
    x = torch.rand(2, 3, 4 * r, 6 * r, dtype=torch.double)
    torch.testing.assert_close(BlockConv(layer[1], r)(x), layer(x), rtol=0, atol=1e-12)


def test_block_conv_refuses_what_it_cannot_rewrite() -> None:
    with pytest.raises(ValueError, match="stride-1"):
        BlockConv(nn.Conv2d(3, 8, 9, stride=2))
    with pytest.raises(ValueError, match="divisible by 3"):
        BlockConv(nn.Conv2d(3, 8, 9), r=3)


def test_sub_pixel_upsampling_equals_upsampling_then_convolution() -> None:
    torch.manual_seed(0)
    layer = UpsampleConv(6, 4).double().eval()
    x = torch.rand(2, 6, 5, 7, dtype=torch.double)
    torch.testing.assert_close(SubPixelUpsampleConv(layer)(x), layer(x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("movements,h,w", [(1, 32, 40), (1, 37, 53), (3, 20, 28)])
def test_gpu_rewrite_paints_what_the_network_paints(movements: int, h: int, w: int) -> None:
    """Every layer rewritten, sizes not a multiple of 4, a conditional network: the same pictures."""
    torch.manual_seed(0)
    net = TransformerNet(channels=8, residual_blocks=2, movements=movements).double().eval()
    for m in net.modules():
        if isinstance(m, InstanceNorm):
            with torch.no_grad():
                m.weight.uniform_(0.5, 2)
                m.bias.uniform_(-1, 1)
    rewritten = rewrite_for_gpu(net)
    assert sum(isinstance(m, BlockConv) for m in rewritten.modules()) == 2
    assert sum(isinstance(m, SubPixelUpsampleConv) for m in rewritten.modules()) == 2
    assert sum(isinstance(m, UpsampleConv) for m in net.modules()) == 2  # the original is left as it was
    x = torch.rand(2, 3, h, w, dtype=torch.double)
    style = torch.tensor([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]], dtype=torch.double) if movements > 1 else None
    with torch.no_grad():
        torch.testing.assert_close(rewritten(x, style), net(x, style), rtol=0, atol=1e-12)


def test_the_movement_critic_learns_to_tell_paintings_from_photos() -> None:
    from artstyle.models.critic import PatchCritic, critic_loss, diff_augment
    from artstyle.training.synthetic import painting, photo

    torch.manual_seed(0)
    paintings = torch.stack([to_tensor(painting("ember", 48, seed=i))[0] for i in range(8)])
    photos = torch.stack([to_tensor(photo(48, seed=i))[0] for i in range(8)])
    critic = PatchCritic(channels=8)
    assert critic(paintings).shape == (8, 1, 5, 5)  # one logit per overlapping patch
    optimizer = torch.optim.Adam(critic.parameters(), lr=2e-3, betas=(0.5, 0.999))
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        loss = critic_loss(critic(diff_augment(paintings, generator)), critic(diff_augment(photos, generator)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        fresh_paintings = torch.stack([to_tensor(painting("ember", 48, seed=100 + i))[0] for i in range(4)])
        fresh_photos = torch.stack([to_tensor(photo(48, seed=100 + i))[0] for i in range(4)])
        assert critic(fresh_paintings).mean() > 0 > critic(fresh_photos).mean()


def test_diff_augment_keeps_shape_and_gradient_and_is_seeded() -> None:
    from artstyle.models.critic import diff_augment

    x = torch.rand(3, 3, 20, 24, requires_grad=True)
    a = diff_augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and not torch.equal(a, x)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(a, diff_augment(x, torch.Generator().manual_seed(1)))
