import pytest
import torch

from artstyle.config import LossConfig
from artstyle.training.losses import content_loss, gram_matrix, perceptual_losses, style_loss, tv_loss


def test_gram_matrix_matches_a_hand_computation() -> None:
    f = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2) / 7
    g = gram_matrix(f)
    n, c, h, w = f.shape
    for b in range(n):
        for i in range(c):
            for j in range(c):
                expected = sum(float(f[b, i, y, x] * f[b, j, y, x]) for y in range(h) for x in range(w))
                assert g[b, i, j].item() == pytest.approx(expected / (c * h * w), rel=1e-6)


def test_gram_is_float32_even_for_bf16_features() -> None:
    assert gram_matrix(torch.rand(1, 4, 3, 3).bfloat16()).dtype == torch.float32


def test_relative_losses_by_hand() -> None:
    target = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # one (2, 2) "Gram"
    x = torch.tensor([[[1.0, 2.0], [3.0, 2.0]]])
    assert style_loss(x, target[0]).item() == pytest.approx(4.0 / 30.0)
    feats, photo = torch.ones(2, 1, 2, 2), torch.full((2, 1, 2, 2), 2.0)
    assert content_loss(feats, photo).item() == pytest.approx(4 * 1.0 / (4 * 4.0))
    assert content_loss(photo, photo).item() == 0.0


def test_tv_by_hand() -> None:
    image = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])
    # horizontal diffs: |1-0|, |0-0| -> mean 0.5; vertical: |0-0|, |0-1| -> mean 0.5
    assert tv_loss(image).item() == pytest.approx(1.0)


def test_perceptual_losses_parts_are_weighted_and_sum_to_total() -> None:
    config = LossConfig(style_layers=("relu1_1", "relu2_1"), style_layer_weights=(1.0, 0.5),
                        content_layer="relu4_2",
                        content_weight=2.0, style_weight=3.0, tv_weight=0.1)
    torch.manual_seed(0)
    a, b, c = "relu1_1", "relu2_1", "relu4_2"
    out_f = {k: torch.rand(2, 4, 5, 5) for k in (a, b, c)}
    photo_f = {c: torch.rand(2, 4, 5, 5)}
    targets = {k: gram_matrix(torch.rand(1, 4, 5, 5))[0] for k in (a, b)}
    image = torch.rand(2, 3, 8, 8)
    parts = perceptual_losses(image, out_f, photo_f, targets, config)
    assert set(parts) == {"content", f"style/{a}", f"style/{b}", "style", "tv", "total"}
    assert parts["content"].item() == pytest.approx(2.0 * content_loss(out_f[c], photo_f[c]).item())
    assert parts[f"style/{b}"].item() == pytest.approx(
        3.0 * 0.5 * style_loss(gram_matrix(out_f[b]), targets[b]).item(), rel=1e-5)
    assert parts["total"].item() == pytest.approx(
        parts["content"].item() + parts[f"style/{a}"].item() + parts[f"style/{b}"].item() + parts["tv"].item(),
        rel=1e-5)


def test_sliced_style_loss_by_hand() -> None:
    from artstyle.training.losses import sliced_style_loss

    features = torch.tensor([4.0, 1.0, 3.0, 2.0]).view(1, 1, 2, 2)
    pool = torch.tensor([[6.0], [2.0], [8.0], [4.0]])  # the same distribution, twice as wide
    direction = torch.ones(1, 1)
    # sorted output 1,2,3,4 against the pool's quantiles 2,4,6,8
    expected = (1 + 4 + 9 + 16) / (4 + 16 + 36 + 64)
    assert sliced_style_loss(features, pool, direction).item() == pytest.approx(expected)
    # quantiles of a larger pool are read at the output's own ranks
    wide = torch.tensor([[v] for v in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5)])
    assert sliced_style_loss(features, wide, direction).item() == pytest.approx(
        ((1 - 1.5) ** 2 + (2 - 2.5) ** 2 + (3 - 3.5) ** 2 + (4 - 4.5) ** 2) / (1.5**2 + 2.5**2 + 3.5**2 + 4.5**2))


def test_sliced_style_loss_is_zero_for_the_same_features_in_any_order() -> None:
    from artstyle.training.losses import random_directions, sliced_style_loss

    features = torch.rand(2, 8, 5, 6)
    pools = torch.stack([f.reshape(8, 30).T[torch.randperm(30)] for f in features])  # (N, M, C), shuffled
    directions = random_directions(8, seed=3)
    assert sliced_style_loss(features, pools, directions).item() == pytest.approx(0.0, abs=1e-10)
    assert sliced_style_loss(features, pools.flip(0), directions).item() > 0.01  # each image its own pool
    assert torch.allclose(directions.norm(dim=0), torch.ones(8))
    assert torch.equal(directions, random_directions(8, seed=3))
    assert not torch.equal(directions, random_directions(8, seed=4))
