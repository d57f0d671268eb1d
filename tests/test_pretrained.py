"""The shipped movement models: present, loadable offline, and painting real, clean pictures."""

import itertools

import pytest
import torch

from artstyle import load
from artstyle.demo import sample_photo_path
from artstyle.image import open_image, psnr, resize_max, to_tensor
from artstyle.model_folder import ModelFolder, shipped_models

# modern_art: abstract, fauvism, futurism, orphism and suprematism as one movement
MOVEMENTS = ["baroque", "impressionism", "cubism", "expressionism", "modern_art", "realism", "renaissance",
             "romanticism", "post_impressionism"]
FAST = [f"{m}-fast" for m in MOVEMENTS]  # the quarter-width variants, distilled from the full models


@pytest.fixture(scope="module")
def outputs() -> dict[str, torch.Tensor]:
    """The sample photo (256 px) painted by every shipped movement."""
    photo = to_tensor(resize_max(open_image(sample_photo_path()), 256))
    result = {"photo": photo}
    for name, folder in shipped_models().items():
        stylizer = load(folder, engine="torch")
        for movement in (stylizer.movements if stylizer.conditional else [None]):
            result[name if movement is None else movement] = stylizer.stylize_tensor(photo, movement)
    return result


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[0]


def _edges(y: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of a (H, W) image, (H - 1, W - 1)."""
    dx, dy = y[:-1, 1:] - y[:-1, :-1], y[1:, :-1] - y[:-1, :-1]
    return (dx.pow(2) + dy.pow(2)).sqrt()


def _edge_correlation(x: torch.Tensor, y: torch.Tensor) -> float:
    """Correlation of two images' edge strengths, averaged over 8 px blocks."""
    a, b = (torch.nn.functional.avg_pool2d(_edges(_luma(z))[None, None], 8).flatten() for z in (x, y))
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def _nyquist_share(y: torch.Tensor) -> float:
    """Share of each row's variance in the period-2 (checkerboard) component."""
    power = torch.fft.rfft(y - y.mean(1, keepdim=True), dim=1).abs().pow(2).mean(0)
    return float(power[-1] / power[1:].sum())


def test_the_checkerboard_measure_sees_a_faint_checkerboard() -> None:
    y = _luma(to_tensor(resize_max(open_image(sample_photo_path()), 256)))
    pattern = torch.ones_like(y)
    pattern[0::2, 1::2] = pattern[1::2, 0::2] = -1
    assert _nyquist_share(y) < 0.002
    assert _nyquist_share(y + 0.01 * pattern) > 0.002  # +-2.5 grey levels of checkerboard


def test_every_main_movement_ships_in_full_and_quarter_width() -> None:
    assert set(MOVEMENTS + FAST) <= set(shipped_models())
    for name in ("modern_art", "modern_art-fast"):
        folders = ModelFolder.read(shipped_models()[name]).paintings("modern_art").folders
        assert [f.rsplit("/", 1)[-1] for f in folders] == ["abstract", "fauvism", "futurism", "orphism", "suprematism"]
    assert set(shipped_models(fast=False)) == set(shipped_models()) - set(FAST)
    for movement in MOVEMENTS:
        full = ModelFolder.read(shipped_models()[movement])
        fast = ModelFolder.read(shipped_models()[f"{movement}-fast"])
        assert fast.movements == full.movements == (movement,)
        assert 4 * fast.config.model.channels == full.config.model.channels
        assert fast.trained is not None and fast.trained.distilled is not None
        assert fast.trained.distilled.teacher == movement  # taught by the full model that ships beside it


@pytest.mark.parametrize("movement", MOVEMENTS)
def test_a_fast_model_paints_what_its_full_model_paints(outputs: dict[str, torch.Tensor], movement: str) -> None:
    fast, full = outputs[f"{movement}-fast"], outputs[movement]
    assert psnr(fast, full) > 24
    others = [m for m in MOVEMENTS if m != movement]
    assert all(psnr(fast, full) > psnr(fast, outputs[m]) + 5 for m in others)  # far nearer than any other movement


@pytest.mark.parametrize("movement", MOVEMENTS + FAST)
def test_output_is_a_clean_painting_of_the_photo(outputs: dict[str, torch.Tensor], movement: str) -> None:
    photo, out = outputs["photo"], outputs[movement]
    assert out.shape == photo.shape
    assert (out - photo).abs().mean() > 0.05  # the style is applied
    # not washed out: the output keeps a real tonal range
    assert _luma(out).std() > 0.5 * _luma(photo).std()
    low = torch.quantile(_luma(out).flatten(), 0.02)
    high = torch.quantile(_luma(out).flatten(), 0.98)
    assert high - low > 0.35
    # the photo is still recognisable: where its edges are (8 px blocks) correlates with the
    # original's, and far more than with the same photo upside down (the same edges, elsewhere: it
    # scores 0.03 against the photo; noise 0.04). Edges, not brightness: a movement may remap tones
    # (expressionism darkens a bright sky). The bound is low because cubism and modern_art paint
    # facets and planes of their own over the photo (0.61 to 0.65 here), and impressionism since
    # the tenth round strokes of its own (0.46, while it scores -0.27 against the photo upside down,
    # the widest margin of all); the judge's content retrieval still finds their own photo for 93
    # to 100% of the report photos
    own = _edge_correlation(out, photo)
    assert own > 0.45 and own > _edge_correlation(out, photo.flip(-2)) + 0.3
    # no frame along the borders
    y = _luma(out)
    for edge, inner in [(y[:3], y[3:6]), (y[-3:], y[-6:-3]), (y[:, :3], y[:, 3:6]), (y[:, -3:], y[:, -6:-3])]:
        assert (edge.mean() - inner.mean()).abs() < 0.08
    # no checkerboard: hardly any energy at the highest frequency, across or down
    assert _nyquist_share(y) < 0.002 and _nyquist_share(y.T) < 0.002


def test_movements_look_different(outputs: dict[str, torch.Tensor]) -> None:
    for models in (MOVEMENTS, FAST):
        for a, b in itertools.combinations(models, 2):
            assert (outputs[a] - outputs[b]).abs().mean() > 0.03, (a, b)


@pytest.mark.parametrize("name", sorted(shipped_models()))
def test_bf16_inference_matches_fp32(name: str) -> None:
    """The fast CPU/GPU path (bf16 weights, channels_last, batch-norm statistics) paints what fp32 paints."""
    photo = to_tensor(resize_max(open_image(sample_photo_path()), 192))
    fast = load(shipped_models()[name], precision="bf16", engine="torch")
    exact = load(shipped_models()[name], precision="fp32", engine="torch")
    assert fast.precision == "bf16" and exact.precision == "fp32"
    assert psnr(fast.stylize_tensor(photo), exact.stylize_tensor(photo)) > 40


def test_models_lists_each_fast_model_with_its_teacher(capsys: pytest.CaptureFixture[str]) -> None:
    from artstyle.cli import main

    assert main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for movement in MOVEMENTS:
        assert f"distilled from {movement} " in lines[f"{movement}-fast"]
        assert "distilled" not in lines[movement]
