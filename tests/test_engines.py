"""One way to load a model: every engine behind the Stylizer protocol, and the choice between them."""

from pathlib import Path

import pytest
import torch
from PIL import Image

import artstyle
from artstyle.engines import Stylizer, load, openvino_engine
from artstyle.errors import UsageError
from artstyle.export import export_onnx
from artstyle.image import psnr, to_tensor
from artstyle.model_folder import ModelFolder

pytest.importorskip("openvino", reason="the OpenVINO engine needs: pip install 'artstyle[fast]'")


def _photo() -> Image.Image:
    return Image.radial_gradient("L").resize((72, 56)).convert("RGB")


def test_every_engine_is_a_stylizer_and_paints_what_pytorch_paints(trained_run: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openvino_engine, "gpu_may_exist", lambda: False)
    folder = trained_run / "ember"
    onnx_file = tmp_path / "ember.onnx"
    _photo().save(tmp_path / "p.png")
    export_onnx(ModelFolder.read(folder), onnx_file, tmp_path / "p.png")
    reference = load(folder, engine="torch", precision="fp32")
    # fp32 for auto: int8, the default on CPUs without AMX, has a test of its own (on a shipped model)
    stylizers = {"openvino": load(folder, engine="openvino", precision="fp32"), "auto": load(folder, precision="fp32"),
                 "onnxruntime": load(onnx_file), "torch bf16": load(folder, engine="torch", precision="bf16")}
    expected = to_tensor(reference(_photo()))
    for name, stylizer in stylizers.items():
        assert isinstance(stylizer, Stylizer), name
        assert stylizer.name == "ember" and stylizer.movements == ("ember",) and stylizer.label() == "ember"
        assert psnr(to_tensor(stylizer(_photo())), expected) > 35, name
        x = to_tensor(_photo())
        assert psnr(stylizer.stylize_tensor(x), reference.stylize_tensor(x)) > 35, name
    assert [s.engine for s in stylizers.values()] == ["openvino", "auto", "onnxruntime", "torch"]


def test_auto_paints_plain_calls_with_openvino_and_the_rest_with_pytorch(trained_run: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openvino_engine, "gpu_may_exist", lambda: False)
    stylizer = load(trained_run / "ember", precision="fp32")  # both engines alike, to compare them
    stylizer(_photo())
    assert stylizer.engines_used() == ["openvino"]
    half = stylizer(_photo(), strength=0.5)
    assert stylizer.engines_used() == ["openvino", "torch"]
    torch.testing.assert_close(to_tensor(half), 0.5 * to_tensor(_photo()) + 0.5 * to_tensor(stylizer(_photo())),
                               atol=3 / 255, rtol=0)
    with pytest.raises(UsageError, match="paints only ember"):
        stylizer.check("lagoon")
    monkeypatch.setattr(openvino_engine, "gpu_may_exist", lambda: True)  # PyTorch would look for the GPU
    assert load(trained_run / "ember").engine == "torch"


def test_the_engine_choice_refuses_what_cannot_run(trained_run: Path) -> None:
    with pytest.raises(UsageError, match="unknown engine 'tensorrt'; choose one of: auto"):
        load(trained_run / "ember", engine="tensorrt")
    with pytest.raises(UsageError, match="runs on the CPU"):
        load(trained_run / "ember", engine="openvino", device="cuda")
    with pytest.raises(UsageError, match="runs .onnx files"):
        load(trained_run / "ember", engine="onnxruntime")
    with pytest.raises(UsageError, match="drop --movement"):
        load(trained_run / "ember", engine="openvino").check(strength=0.5)


def test_the_package_exports_load_lazily() -> None:
    assert artstyle.load is load and artstyle.ModelFolder is ModelFolder
    with pytest.raises(AttributeError, match="no attribute 'stylise'"):
        artstyle.stylise  # noqa: B018


def test_a_job_openvino_cannot_paint_never_exports_the_model_for_it(trained_run: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openvino_engine, "gpu_may_exist", lambda: False)
    monkeypatch.setenv("ARTSTYLE_CACHE", str(tmp_path / "cache"))
    stylizer = load(trained_run / "ember")
    stylizer.check(strength=0.5)
    stylizer(_photo(), strength=0.5)
    assert stylizer.engines_used() == ["torch"] and not (tmp_path / "cache" / "onnx").exists()
    stylizer(_photo())
    assert stylizer.engines_used() == ["openvino", "torch"] and list((tmp_path / "cache" / "onnx").iterdir())


def test_an_onnx_file_refuses_tiles_and_other_precisions(trained_run: Path, tmp_path: Path) -> None:
    _photo().save(tmp_path / "p.png")
    export_onnx(ModelFolder.read(trained_run / "ember"), tmp_path / "ember.onnx", tmp_path / "p.png")
    with pytest.raises(UsageError, match="runs as exported, in fp32, not int8"):
        load(tmp_path / "ember.onnx", precision="int8")
    with pytest.raises(UsageError, match="cannot paint in tiles"):
        load(tmp_path / "ember.onnx").check(tile=256)
