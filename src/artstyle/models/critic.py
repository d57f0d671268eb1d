"""A movement critic: a patch discriminator that tells crops of a movement's paintings from outputs.

Sanakoyeu et al., "A Style-Aware Content Loss for Real-time HD Style Transfer" (ECCV 2018), train
the stylizer against such a critic instead of (or beside) a Gram target, so that it learns what a
collection of paintings looks like rather than its average statistics. This one is a PatchGAN
(Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017):
strided 4x4 convolutions with spectral normalisation (Miyato et al., ICLR 2018) for a stable
hinge loss, one logit per patch of about 70 px. Both real and generated crops pass through the
same random, differentiable augmentation (Zhao et al., "Differentiable Augmentation for
Data-Efficient GAN Training", NeurIPS 2020), since some movements have only a dozen paintings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchCritic(nn.Module):
    """(N, 3, H, W) images in [0, 1] -> (N, 1, H/8 - 1, W/8 - 1) patch logits: > 0 means "a painting"."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels
        layers: list[nn.Module] = []
        for cin, cout, stride in ((3, c, 2), (c, 2 * c, 2), (2 * c, 4 * c, 2), (4 * c, 4 * c, 1)):
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, stride, 1)), nn.LeakyReLU(0.2)]
        layers.append(spectral_norm(nn.Conv2d(4 * c, 1, 3, 1, 1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def diff_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random brightness, saturation, contrast and translation (by up to 1/8), per image, differentiable."""
    n = x.shape[0]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(x.device)

    x = x + (rand(n, 1, 1, 1) - 0.5) * 0.4
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) * 1.0 + 0.5) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1) * 0.6 + 0.7) + mean
    h, w = x.shape[-2:]
    shift = (rand(n, 2) - 0.5) * 0.25  # fraction of the side
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift.to(x.dtype) * 2
    grid = F.affine_grid(theta, [n, 3, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def critic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the critic: paintings above +1, outputs below -1."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """What the stylizer minimises: the critic's score of its outputs, negated."""
    return -fake_logits.float().mean()
