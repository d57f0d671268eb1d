from pathlib import Path

import pytest
import torch
from PIL import Image

from artstyle import load
from artstyle.config import ModelConfig, RunConfig
from artstyle.engines import Stylizer, parse_movement
from artstyle.engines.tiles import cells, collage, ramp, tile_starts
from artstyle.engines.torch_engine import transfer_luminance
from artstyle.errors import UsageError
from artstyle.image import plan_outputs, psnr, to_pil, to_tensor
from artstyle.model_folder import ModelFolder, resolve_models
from artstyle.models import build_model
from artstyle.models.rewrite import BlockConv
from artstyle.sheet import make_sheet


def test_stylizer_loads_and_keeps_size(trained_run: Path) -> None:
    stylizer = load(trained_run / "ember", engine="torch")
    assert stylizer.name == "ember" and stylizer.movements == ("ember",) and not stylizer.conditional
    photo = Image.new("RGB", (90, 61), (40, 120, 200))
    out = stylizer(photo)
    assert out.size == (90, 61) and out.mode == "RGB"
    assert stylizer(photo, size=45).size == (45, 30)
    batch = stylizer.stylize_tensor(torch.rand(2, 3, 33, 35))
    assert batch.shape == (2, 3, 33, 35)


def test_models_differ_by_movement(trained_run: Path) -> None:
    photo = to_pil(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    a = to_tensor(load(trained_run / "ember", engine="torch")(photo))
    b = to_tensor(load(trained_run / "lagoon", engine="torch")(photo))
    assert (a - b).abs().mean() > 0.005


def test_plan_outputs(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.png"):
        Image.new("RGB", (20, 20)).save(tmp_path / name)
    one = tmp_path / "a.jpg"
    assert plan_outputs([one], tmp_path / "out.jpg") == [(one, tmp_path / "out.jpg")]
    assert plan_outputs([one], tmp_path / "dir") == [(one, tmp_path / "dir" / "a.png")]
    pairs = plan_outputs([tmp_path], tmp_path / "dir")
    assert [dst.name for _, dst in pairs] == ["a.png", "b.png"]
    with pytest.raises(UsageError, match="need an output folder"):
        plan_outputs([tmp_path], tmp_path / "out.png")
    Image.new("RGB", (20, 20)).save(tmp_path / "a.png")
    with pytest.raises(UsageError, match="would both be written"):
        plan_outputs([tmp_path / "a.jpg", tmp_path / "a.png"], tmp_path / "dir")


def test_sheet_has_the_photo_and_each_model(trained_run: Path) -> None:
    stylizers = [load(p, engine="torch") for p in resolve_models([trained_run])]
    photo = Image.new("RGB", (200, 100), (250, 250, 250))
    sheet = make_sheet(photo, stylizers, size=100, cell=100)
    assert sheet.width > 3 * 100 and sheet.height > 50
    assert sheet.getpixel((6 + 50, sheet.height - 6 - 25)) == (250, 250, 250)  # the original comes first


@pytest.fixture(scope="module")
def joint(tmp_path_factory: pytest.TempPathFactory) -> Stylizer:
    """An (untrained, randomised) joint model of three movements."""
    torch.manual_seed(0)
    config = ModelConfig(channels=8, residual_blocks=1, movements=("a", "b", "c"), conditional=True)
    model = build_model(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.uniform_(0.2, 2.0)
    folder = tmp_path_factory.mktemp("joint")
    ModelFolder("abc", RunConfig(model=config)).save_pretrained(folder, model)
    return load(folder, engine="torch")


def test_joint_model_picks_and_blends(joint: Stylizer) -> None:
    x = torch.rand(1, 3, 32, 32)
    a, b = joint.stylize_tensor(x, "a"), joint.stylize_tensor(x, "b")
    assert (a - b).abs().mean() > 1e-3
    torch.testing.assert_close(joint.stylize_tensor(x, {"a": 2.0}), a)
    blend = joint.stylize_tensor(x, {"a": 1.0, "b": 1.0})
    assert not torch.allclose(blend, a) and not torch.allclose(blend, b)
    assert joint.label({"a": 1.0, "b": 3.0}) == "a 25% + b 75%"
    with pytest.raises(UsageError, match="choose with --movement, one of: a, b, c"):
        joint.stylize_tensor(x)
    with pytest.raises(UsageError, match="unknown movement 'd'"):
        joint.stylize_tensor(x, "d")
    with pytest.raises(UsageError, match="must be positive"):
        joint.stylize_tensor(x, {"a": -1.0, "b": 0.5})


def test_one_movement_model_refuses_another_movement(trained_run: Path) -> None:
    stylizer = load(trained_run / "ember", engine="torch")
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(stylizer.stylize_tensor(x, "ember"), stylizer.stylize_tensor(x))
    with pytest.raises(UsageError, match="paints only ember"):
        stylizer.stylize_tensor(x, "lagoon")


def test_parse_movement() -> None:
    assert parse_movement(None) is None
    assert parse_movement("baroque") == "baroque"
    assert parse_movement("baroque:0.5, cubism:0.5") == {"baroque": 0.5, "cubism": 0.5}
    with pytest.raises(UsageError, match="baroque:0.5,cubism:0.5"):
        parse_movement("baroque:lots")


def test_strength(trained_run: Path) -> None:
    stylizer = load(trained_run / "ember", engine="torch")
    x = torch.rand(1, 3, 24, 24)
    torch.testing.assert_close(stylizer.stylize_tensor(x, strength=0.0), x)
    full = stylizer.stylize_tensor(x)
    torch.testing.assert_close(stylizer.stylize_tensor(x, strength=0.25), 0.75 * x + 0.25 * full)
    with pytest.raises(UsageError, match="outside 0..1"):
        stylizer.stylize_tensor(x, strength=1.5)


def test_preserve_color_keeps_the_photos_chroma_and_the_results_light() -> None:
    torch.manual_seed(0)
    photo = torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    stylized = torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    out = transfer_luminance(stylized, photo)

    def ycbcr(x: torch.Tensor) -> torch.Tensor:
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return torch.stack([y, (b - y) * 0.564, (r - y) * 0.713])

    torch.testing.assert_close(ycbcr(out)[0], ycbcr(stylized)[0], atol=1e-3, rtol=0)
    torch.testing.assert_close(ycbcr(out)[1:], ycbcr(photo)[1:], atol=1e-3, rtol=0)
    gray = torch.full((1, 3, 4, 4), 0.5)
    torch.testing.assert_close(transfer_luminance(gray, gray), gray, atol=1e-4, rtol=0)


def test_sheet_of_a_joint_model_shows_each_movement(joint: Stylizer) -> None:
    photo = Image.new("RGB", (100, 100), (200, 100, 50))
    one = make_sheet(photo, [joint], size=100, cell=100, movement="b")
    every = make_sheet([photo, photo], [joint], size=100, cell=100)
    assert every.width > one.width + 2 * 100 and every.height > one.height + 100
    assert to_tensor(every).shape[1] == 3


def test_tiled_matches_untiled(trained_run: Path) -> None:
    from artstyle.models.layers import InstanceNorm

    stylizer = load(trained_run / "ember", engine="torch")
    image = Image.radial_gradient("L").resize((230, 170)).convert("RGB")
    x = to_tensor(image) * torch.linspace(0.5, 1.0, 230)  # not flat: texture for the network to paint
    whole = stylizer.stylize_tensor(x)
    tiled = stylizer.stylize_tiled(x, tile=96, overlap=32, stats_side=512)
    assert psnr(tiled, whole) > 35
    # statistics from collages of full-resolution crops, when the image is larger than stats_side
    # (how close on real photos: benchmarks/large_photo.py; here only that nothing breaks)
    reduced = stylizer.stylize_tiled(x, tile=96, overlap=32, stats_side=150)
    assert psnr(reduced, whole) > 20
    assert all(m.mode == "normal" and m.stats is None and not m.recorded
               for m in stylizer.network.modules() if isinstance(m, InstanceNorm))  # type: ignore[attr-defined]
    # big images are tiled automatically; the result has the image's size
    assert stylizer(image, tile=100).size == (230, 170)
    with pytest.raises(UsageError, match="more than twice the overlap"):
        stylizer.stylize_tiled(x, tile=64, overlap=32)


def test_collage_is_made_of_full_resolution_crops() -> None:
    assert cells(300, 128, 0) == [(0, 128), (128, 256), (256, 300)]
    assert cells(300, 128, 64) == [(0, 64), (64, 192), (192, 300)]
    image = torch.rand(1, 3, 400, 600)
    made = collage(image, 0.5, 64, (32, 0))
    assert made.shape == (1, 3, 200, 300)
    block = made[:, :, 32:96, 64:128]  # a full cell: the 64 px crop around the matching point (128, 192)
    torch.testing.assert_close(block, image[:, :, 96:160, 160:224], rtol=0, atol=0)


def test_collage_statistics_keep_fine_detail() -> None:
    """The first layer's statistics from a collage match the full image's; a downscaled copy's do not."""
    from artstyle.model_folder import shipped_models
    from artstyle.models.layers import InstanceNorm

    stylizer = load(shipped_models()["baroque"], precision="fp32", engine="torch")
    model = stylizer.network  # type: ignore[attr-defined]
    assert isinstance(model, torch.nn.Module)
    first = next(m for m in model.modules() if isinstance(m, InstanceNorm))
    texture = torch.rand(1, 3, 512, 768, generator=torch.Generator().manual_seed(0))  # detail at every pixel

    def first_layer_std(image: torch.Tensor) -> float:
        first.mode, first.recorded = "record", []
        with torch.inference_mode():
            model(image)
        first.mode = "normal"
        return float(first.recorded[0][1].sqrt().mean())

    full = first_layer_std(texture)
    from_collage = first_layer_std(collage(texture, 0.25, 32))
    downscaled = first_layer_std(torch.nn.functional.interpolate(texture, scale_factor=0.25, mode="area"))
    assert abs(from_collage - full) < 0.05 * full
    assert abs(downscaled - full) > 0.3 * full


def test_tile_layout() -> None:
    assert tile_starts(100, 200, 32) == [0]
    starts = tile_starts(1000, 256, 64)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 192 for a, b in zip(starts, starts[1:], strict=False))
    weights = ramp(10, 4, fade_in=True, fade_out=False)
    assert weights[0] == pytest.approx(0.2) and weights[3] == pytest.approx(0.8) and weights[4:].eq(1).all()


def test_bf16_joint_model_matches_fp32(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = ModelConfig(channels=8, residual_blocks=2, movements=("a", "b"), conditional=True)
    ModelFolder("ab", RunConfig(model=config)).save_pretrained(tmp_path / "joint", build_model(config))
    fast = load(tmp_path / "joint", precision="bf16", engine="torch")
    exact = load(tmp_path / "joint", precision="fp32", engine="torch")
    x = torch.rand(2, 3, 48, 40)
    for movement in ("a", {"a": 0.3, "b": 0.7}):
        assert psnr(fast.stylize_tensor(x, movement), exact.stylize_tensor(x, movement)) > 40


def test_compiled_network_matches_eager(tmp_path: Path) -> None:
    """``compile=True`` (the GPU rewrite, then torch.compile, which takes the fused instance norm)
    paints what eager does."""
    torch.manual_seed(0)
    config = ModelConfig(channels=8, residual_blocks=1, movements=("m",))
    ModelFolder("m", RunConfig(model=config)).save_pretrained(tmp_path / "m", build_model(config))
    eager = load(tmp_path / "m", precision="fp32", engine="torch")
    compiled = load(tmp_path / "m", precision="fp32", compile=True, engine="torch")
    assert compiled.network is not eager.network  # type: ignore[attr-defined]
    assert type(compiled.network).__name__ == "OptimizedModule"  # type: ignore[attr-defined]
    assert any(isinstance(m, BlockConv) for m in compiled.network.modules())  # type: ignore[attr-defined]  # rewritten for GPUs
    x = torch.rand(2, 3, 32, 40)
    assert psnr(compiled.stylize_tensor(x), eager.stylize_tensor(x)) > 60
