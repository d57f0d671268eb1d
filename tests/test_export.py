from pathlib import Path

import pytest
import torch
from PIL import Image

from artstyle import load
from artstyle.cli import main
from artstyle.config import ModelConfig, RunConfig
from artstyle.errors import ModelError
from artstyle.export import export_onnx
from artstyle.model_folder import ModelFolder
from artstyle.models import build_model


def test_export_matches_pytorch_at_any_size(trained_run: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.radial_gradient("L").convert("RGB").resize((120, 90)).save(photo)
    report = export_onnx(ModelFolder.read(trained_run / "ember"), tmp_path / "ember.onnx", photo)
    assert report.psnr_db > 60 and report.max_abs_diff < 1e-3 and report.size_bytes > 10_000
    onnx_stylizer = load(tmp_path / "ember.onnx")
    torch_stylizer = load(trained_run / "ember", precision="fp32", engine="torch")
    assert onnx_stylizer.name == "ember" and onnx_stylizer.movements == ("ember",)
    assert onnx_stylizer.engine == "onnxruntime"
    for shape in [(1, 3, 37, 53), (2, 3, 64, 48)]:  # dynamic batch, height and width
        x = torch.rand(*shape)
        torch.testing.assert_close(onnx_stylizer.stylize_tensor(x), torch_stylizer.stylize_tensor(x),
                                   atol=1e-4, rtol=0)


def test_joint_export_takes_style_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = ModelConfig(channels=8, residual_blocks=1, movements=("a", "b"), conditional=True)
    model = build_model(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.uniform_(0.2, 2.0)
    ModelFolder("ab", RunConfig(model=config)).save_pretrained(tmp_path / "joint", model)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (90, 20, 200)).save(photo)
    export_onnx(ModelFolder.read(tmp_path / "joint"), tmp_path / "joint.onnx", photo)
    ours = load(tmp_path / "joint.onnx")
    theirs = load(tmp_path / "joint", precision="fp32", engine="torch")
    x = torch.rand(1, 3, 32, 36)
    for movement in ("a", {"a": 0.3, "b": 0.7}):
        torch.testing.assert_close(ours.stylize_tensor(x, movement), theirs.stylize_tensor(x, movement),
                                   atol=1e-4, rtol=0)


def test_export_and_stylize_through_the_cli(trained_run: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    onnx_file = tmp_path / "lagoon.onnx"
    assert main(["export", "--model", str(trained_run / "lagoon"), "-o", str(onnx_file), "--json", "-q"]) == 0
    assert '"psnr_db"' in capsys.readouterr().out
    photo = tmp_path / "photo.png"
    Image.new("RGB", (50, 40), (10, 200, 30)).save(photo)
    assert main(["stylize", str(photo), "--model", str(onnx_file), "-o", str(tmp_path / "out.png"), "-q"]) == 0
    assert Image.open(tmp_path / "out.png").size == (50, 40)
    assert main(["export", "--model", str(trained_run / "lagoon"), "-o", str(onnx_file), "-q"]) == 2


def test_foreign_onnx_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="not an ONNX file"):
        load(junk)
