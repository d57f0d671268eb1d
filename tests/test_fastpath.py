"""The OpenVINO engine: same pictures as PyTorch, cached exports, and no PyTorch start-up."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artstyle import load
from artstyle.cli import main
from artstyle.config import ModelConfig, RunConfig
from artstyle.engines import openvino_c
from artstyle.engines import openvino_engine as fastpath
from artstyle.engines.torch_engine import TorchStylizer
from artstyle.errors import ArtstyleError, ModelError, UsageError
from artstyle.image import from_array, psnr, to_array
from artstyle.model_folder import ModelFolder
from artstyle.models import build_model

pytest.importorskip("openvino", reason="the OpenVINO engine needs: pip install 'artstyle[fast]'")


def _photo(width: int, height: int) -> Image.Image:
    pixels = torch.rand(height, width, 3, generator=torch.Generator().manual_seed(1)).mul(255).byte()
    return Image.fromarray(pixels.numpy())


def _psnr(a: Image.Image, b: Image.Image) -> float:
    return psnr(to_array(a), to_array(b))


def test_openvino_paints_what_pytorch_paints(trained_run: Path, tmp_path: Path) -> None:
    folder = trained_run / "ember"
    floating = "bf16" if fastpath.cpu_has_bf16() else "fp32"  # int8 has a test of its own, on a shipped model
    fast = fastpath.OpenVinoStylizer(ModelFolder.read(folder), precision=floating, cache_dir=tmp_path)
    exact = load(folder, precision="fp32", engine="torch")
    assert fast.label() == "ember"
    for photo in (_photo(53, 37), _photo(64, 48), _photo(53, 37)):  # sizes not a multiple of 4; a compiled size reused
        assert _psnr(fast(photo), exact(photo)) > 40
    assert len(fast._compiled) == 2
    batch = np.concatenate([to_array(_photo(40, 32)), to_array(_photo(40, 32).transpose(Image.Transpose.ROTATE_180))])
    out = fast.stylize_array(batch)
    assert out.shape == batch.shape and np.abs(out[0] - out[1]).mean() > 0.01
    with pytest.raises(ValueError, match="expected"):
        fast.stylize_array(batch[0])
    assert fast(_photo(90, 60), size=45).size == (45, 30)
    exact_fp32 = fastpath.OpenVinoStylizer(ModelFolder.read(folder), precision="fp32", cache_dir=tmp_path)
    assert _psnr(exact_fp32(_photo(53, 37)), exact(_photo(53, 37))) > 60


def test_each_shape_is_saved_once_and_later_processes_skip_the_export(trained_run: Path, tmp_path: Path) -> None:
    model = ModelFolder.read(trained_run / "ember")
    first = fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path)
    painted = first(_photo(53, 37))
    saved = sorted(p.name for p in (tmp_path / "openvino-ir").iterdir())
    assert len(saved) == 2 and saved[0].endswith("-pixels1-1x37x53x3.bin") and saved[1].endswith("-1x37x53x3.xml")
    fastpath.cached_onnx(trained_run / "ember", tmp_path).write_bytes(b"not onnx")  # a later process must not read it
    compiled = sorted(p.name for p in (tmp_path / "openvino").iterdir())
    modified = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "openvino-ir").iterdir()}
    later = fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path)
    assert _psnr(later(_photo(53, 37)), painted) > 80  # the shape it has: from the saved IR alone
    assert sorted(p.name for p in (tmp_path / "openvino").iterdir()) == compiled  # from OpenVINO's compile cache,
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "openvino-ir").iterdir()} == modified  # keyed by these
    with pytest.raises(ArtstyleError, match="cannot read this cached export"):
        later(_photo(64, 48))  # a new shape needs the export, and says what to do when it is broken
    assert sorted(p.name for p in (tmp_path / "openvino-ir").iterdir()) == saved  # no temporary files left


def test_a_damaged_ir_file_is_made_again_and_a_network_that_will_not_compile_says_what_to_do(
        trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = ModelFolder.read(trained_run / "ember")
    painted = fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path)(_photo(53, 37))
    for ir in (tmp_path / "openvino-ir").glob("*.xml"):
        ir.write_text("<net")  # a disk error, half a file
    again = fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path)(_photo(53, 37))
    assert _psnr(again, painted) > 80
    assert all(ir.read_text().rstrip().endswith("</net>") for ir in (tmp_path / "openvino-ir").glob("*.xml"))

    def refuse(*args: object) -> None:
        raise openvino_c.OpenVinoError("ov_core_compile_model_from_file_props: Exception from plugin.cpp:\nno bf16")

    monkeypatch.setattr(openvino_c, "CompiledNetwork", refuse)
    with pytest.raises(ModelError, match=r"cannot compile ember in fp32 for this CPU \(no bf16\); use --precision"):
        fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path)(_photo(53, 37))


def test_a_shape_that_cannot_be_saved_is_compiled_from_memory(trained_run: Path, tmp_path: Path) -> None:
    model = ModelFolder.read(trained_run / "ember")
    (tmp_path / "openvino-ir").write_text("a file where the folder of saved shapes would go")
    unsaved = fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path)(_photo(53, 37))
    saved = fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path / "other")(_photo(53, 37))
    assert _psnr(unsaved, saved) > 80


def test_the_c_api_paints_what_openvinos_python_package_paints(trained_run: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    model = ModelFolder.read(trained_run / "ember")
    photo = _photo(53, 37)
    through_c = fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path)
    painted, array = through_c(photo), through_c.stylize_array(to_array(photo))
    assert {type(n) for n in through_c._compiled.values()} == {openvino_c.CompiledNetwork}
    # pixels converted inside the network as to_array and from_array convert them
    assert _psnr(painted, from_array(array)) > 60
    monkeypatch.setattr(openvino_c, "available", lambda: False)  # e.g. an openvino without its C library
    through_python = fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path)
    assert np.array_equal(np.asarray(through_python(photo)), np.asarray(painted))
    assert np.allclose(through_python.stylize_array(to_array(photo)), array, atol=1e-6)
    assert openvino_c.CompiledNetwork not in {type(n) for n in through_python._compiled.values()}


def test_the_c_api_refuses_wrong_buffers_and_reports_openvinos_own_errors(trained_run: Path, tmp_path: Path) -> None:
    stylizer = fastpath.OpenVinoStylizer(ModelFolder.read(trained_run / "ember"), precision="fp32", cache_dir=tmp_path)
    painted = stylizer(_photo(53, 37))
    network = next(iter(stylizer._compiled.values()))
    size = 37 * 53 * 3
    with pytest.raises(ValueError, match="writable contiguous buffer of 5883 u8"):
        network.run(bytes(size), bytearray(size))  # read-only
    with pytest.raises(ValueError, match="got 10 bytes"):
        network.run(bytearray(size), bytearray(10))
    again = bytearray(size)
    network.run(bytearray(_photo(53, 37).tobytes()), again)  # still usable
    assert bytes(again) == painted.tobytes()
    (tmp_path / "broken.xml").write_text("<net>")
    with pytest.raises(openvino_c.OpenVinoError, match="ov_core_compile_model_from_file_props: .+"):
        openvino_c.CompiledNetwork(tmp_path / "broken.xml", {}, tmp_path / "compiled", ("u8", (1, 4, 4, 3)),
                                   ("u8", (1, 4, 4, 3)))


def test_a_photo_is_painted_without_numpy_or_openvinos_python_package(trained_run: Path, tmp_path: Path) -> None:
    """Those imports are most of the start of a process (benchmarks/README.md): once the photo's
    shape has its IR file in the cache, painting it needs neither."""
    photo, out = tmp_path / "photo.jpg", tmp_path / "out.png"
    _photo(50, 40).save(photo)
    code = ("import sys; from artstyle.cli import main; "
            f"status = main(['stylize', {str(photo)!r}, '-m', {str(trained_run / 'ember')!r}, '-o', {str(out)!r}, "
            "'--overwrite', '-q', '--engine', 'openvino']); "
            "print(status, [m for m in ('numpy', 'openvino', 'torch') if m in sys.modules])")
    env = {**os.environ, "ARTSTYLE_CACHE": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.startswith("0 ") and "'openvino'" in first.stdout  # the first use makes the IR file
    later = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert later.stdout.strip() == "0 []", later.stderr
    assert Image.open(out).size == (50, 40)


def test_the_export_is_made_once_and_follows_the_weights(trained_run: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = fastpath.cached_onnx(trained_run / "ember", tmp_path)
    assert path.is_file() and path.parent == tmp_path / "onnx"
    import artstyle.export

    def refuse(folder: Path) -> bytes:
        raise AssertionError("exported again")

    monkeypatch.setattr(artstyle.export, "onnx_bytes", refuse)
    assert fastpath.cached_onnx(trained_run / "ember", tmp_path) == path
    with pytest.raises(AssertionError, match="exported again"):  # other weights, another entry
        fastpath.cached_onnx(trained_run / "lagoon", tmp_path)


def test_a_halfres_network_is_exported_and_painted_as_pytorch_paints_it(tmp_path: Path) -> None:
    config = ModelConfig(arch="halfres", channels=8, residual_blocks=2, movements=("ember",))
    torch.manual_seed(0)
    ModelFolder("ember-fast", RunConfig(model=config)).save_pretrained(tmp_path / "half", build_model(config))
    model = ModelFolder.read(tmp_path / "half")
    exact = load(model, engine="torch", precision="fp32")
    fast = fastpath.OpenVinoStylizer(model, precision="fp32", cache_dir=tmp_path)
    for photo in (_photo(53, 37), _photo(64, 48)):  # the export pads to the network's stride of 4
        assert _psnr(fast(photo), exact(photo)) > 60


def test_joint_models_are_left_to_pytorch(tmp_path: Path) -> None:
    config = ModelConfig(channels=8, residual_blocks=1, movements=("a", "b"), conditional=True)
    ModelFolder("ab", RunConfig(model=config)).save_pretrained(tmp_path / "joint", build_model(config))
    with pytest.raises(UsageError, match="joint model"):
        fastpath.OpenVinoStylizer(ModelFolder.read(tmp_path / "joint"), cache_dir=tmp_path)


def _stylize(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["stylize", *args, "--json", "-q", "--overwrite"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_cli_picks_the_engine(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "gpu_may_exist", lambda: False)
    photo = tmp_path / "photo.png"
    _photo(50, 40).save(photo)
    model, out = str(trained_run / "ember"), str(tmp_path / "out.png")
    assert _stylize([str(photo), "-m", model, "-o", out], capsys)["engine"] == ["openvino"]
    assert _stylize([str(photo), "-m", model, "-o", out, "--engine", "torch"], capsys)["engine"] == ["torch"]
    assert _stylize([str(photo), "-m", model, "-o", out, "--strength", "0.5"], capsys)["engine"] == ["torch"]
    assert _stylize([str(photo), "-m", model, "-o", out, "--device", "cpu"], capsys)["engine"] == ["openvino"]
    monkeypatch.setattr(fastpath, "gpu_may_exist", lambda: True)  # PyTorch would look for the GPU
    assert _stylize([str(photo), "-m", model, "-o", out], capsys)["engine"] == ["torch"]
    monkeypatch.setattr(fastpath, "gpu_may_exist", lambda: False)
    monkeypatch.setattr(fastpath, "openvino_available", lambda: False)  # e.g. installed without artstyle[fast]
    assert _stylize([str(photo), "-m", model, "-o", out], capsys)["engine"] == ["torch"]
    for extra, message in [(["--preserve-color"], "drop --movement"), (["--device", "cuda"], "runs on the CPU"),
                           (["-m", str(trained_run)], "holds 2 models")]:
        assert main(["stylize", str(photo), "-m", model, "-o", out, "--overwrite", "--engine", "openvino",
                     *extra]) == 2
        assert message in capsys.readouterr().err


def test_engine_openvino_refuses_what_it_cannot_run(trained_run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "photo.png"
    _photo(50, 40).save(photo)
    onnx_file = tmp_path / "ember.onnx"
    onnx_file.write_bytes(fastpath.cached_onnx(trained_run / "ember", tmp_path).read_bytes())
    config = ModelConfig(channels=8, residual_blocks=1, movements=("a", "b"), conditional=True)
    ModelFolder("ab", RunConfig(model=config)).save_pretrained(tmp_path / "joint", build_model(config))
    for model, message in [(onnx_file, "takes a model folder"), (tmp_path / "joint", "joint model")]:
        assert main(["stylize", str(photo), "-m", str(model), "-o", str(tmp_path / "out.png"),
                     "--engine", "openvino"]) == 2
        assert message in capsys.readouterr().err


def test_images_too_large_to_paint_whole_go_to_pytorch_tiles(trained_run: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import artstyle.image

    monkeypatch.setattr(artstyle.image, "AUTO_TILE_PIXELS", 100 * 80 - 1)
    monkeypatch.setattr(artstyle.image, "DEFAULT_TILE", 64)
    monkeypatch.setattr(fastpath, "gpu_may_exist", lambda: False)
    tiled: list[tuple[int, ...]] = []
    original = TorchStylizer.stylize_tiled

    def spy(self: TorchStylizer, image: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        tiled.append(tuple(image.shape))
        return original(self, image, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TorchStylizer, "stylize_tiled", spy)
    small, large = tmp_path / "in" / "small.png", tmp_path / "in" / "large.png"
    small.parent.mkdir()
    _photo(80, 60).save(small)
    _photo(100, 80).save(large)
    summary = _stylize([str(small.parent), "-m", str(trained_run / "ember"), "-o", str(tmp_path / "out")], capsys)
    assert summary["engine"] == ["openvino", "torch"] and len(summary["written"]) == 2  # type: ignore[arg-type]
    assert tiled == [(1, 3, 80, 100)]  # only the large one, in tiles


def test_a_stylize_run_never_starts_pytorch(trained_run: Path, tmp_path: Path) -> None:
    """The whole point of the engine: the process skips PyTorch's import (over a second)."""
    fastpath.cached_onnx(trained_run / "ember", None)  # made once, in this process ($ARTSTYLE_CACHE is a tmp dir)
    photo = tmp_path / "photo.png"
    _photo(48, 40).save(photo)
    script = ("import sys; from artstyle.cli import main; "
              f"code = main(['stylize', {str(photo)!r}, '-m', {str(trained_run / 'ember')!r}, "
              f"'-o', {str(tmp_path / 'out.png')!r}, '--device', 'cpu', '-q']); "
              "assert code == 0, code; assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert Image.open(tmp_path / "out.png").size == (48, 40)


def test_auto_falls_back_to_pytorch_when_openvino_cannot_start(trained_run: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "cache"))

    monkeypatch.setattr(fastpath, "gpu_may_exist", lambda: False)
    monkeypatch.setattr(fastpath, "OpenVinoStylizer", broken)
    photo = tmp_path / "photo.png"
    _photo(50, 40).save(photo)
    args = [str(photo), "-m", str(trained_run / "ember"), "-o", str(tmp_path / "out.png")]
    assert _stylize(args, capsys)["engine"] == ["torch"]
    assert main(["stylize", *args, "--overwrite", "--engine", "openvino"]) != 0
    assert "Permission denied" in capsys.readouterr().err


def test_an_unwritable_cache_falls_back_to_pytorch(trained_run: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "not_a_folder").write_text("x")
    monkeypatch.setenv("ARTSTYLE_CACHE", str(tmp_path / "not_a_folder" / "cache"))
    monkeypatch.setattr(fastpath, "gpu_may_exist", lambda: False)
    photo = tmp_path / "photo.png"
    _photo(50, 40).save(photo)
    args = [str(photo), "-m", str(trained_run / "ember"), "-o", str(tmp_path / "out.png")]
    assert main(["stylize", *args, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["engine"] == ["torch"]
    assert "cannot be written" in captured.err and "set ARTSTYLE_CACHE" in captured.err
    assert Image.open(tmp_path / "out.png").size == (50, 40)


def _deep_water(width: int = 256, height: int = 144) -> Image.Image:
    """Dark blue water lit from above, as in an underwater photo: dark and smooth, with one light."""
    y = np.linspace(0, 1, height)[:, None, None]
    x = np.linspace(-1, 1, width)[None, :, None]
    surface, depth = np.array([40.0, 170.0, 180.0]), np.array([0.0, 22.0, 38.0])
    pixels = surface * (1 - y) ** 2 + depth * (1 - (1 - y) ** 2) + 255 * np.exp(-((x + 0.4) ** 2 + y ** 2) / 0.02)
    pixels = pixels + np.random.default_rng(0).normal(0, 2, (height, width, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def test_int8_keeps_dark_photos_with_a_light(tmp_path: Path) -> None:
    """The networks amplify int8's rounding in dark, smooth water lit from above: with only the first
    convolution kept float this picture fell to 26 dB against fp32, with two to 29 dB, and a real
    underwater photo to 31 dB (benchmarks/README.md)."""
    from artstyle.model_folder import shipped_models

    model = ModelFolder.read(shipped_models()["impressionism-fast"])
    int8 = fastpath.OpenVinoStylizer(model, precision="int8", cache_dir=tmp_path)
    picture = _deep_water()
    assert _psnr(int8(picture), load(model, engine="torch", precision="fp32")(picture)) > 35


def test_int8_paints_what_fp32_paints_and_is_quantised_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shipped model in int8, on photos it was not calibrated on, within the 35 dB the fast paths
    promise (benchmarks/fast_path_quality.py measures every shipped model)."""
    from artstyle.demo import sample_photo_path
    from artstyle.image import open_image, resize_max
    from artstyle.model_folder import shipped_models
    from artstyle.training.synthetic import photo

    model = ModelFolder.read(shipped_models()["baroque-fast"])
    int8 = fastpath.OpenVinoStylizer(model, precision="int8", cache_dir=tmp_path)
    exact = load(model, engine="torch", precision="fp32")
    assert int8.precision == "int8" and list((tmp_path / "onnx").glob("*-int8-*.onnx"))
    sample = resize_max(open_image(sample_photo_path()), 200)
    for picture in (sample.rotate(90, expand=True), photo(160, seed=3)):
        assert _psnr(int8(picture), exact(picture)) > 35

    def refuse(source: Path) -> bytes:
        raise AssertionError("quantised again")

    monkeypatch.setattr(fastpath, "quantized_onnx", refuse)
    fastpath.OpenVinoStylizer(model, precision="int8", cache_dir=tmp_path)  # from the cache


def test_auto_precision_is_bf16_with_amx_and_int8_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "cpu_has_amx", lambda: True)
    assert fastpath.resolve_precision("auto") == "bf16" and fastpath.resolve_precision("fp32") == "fp32"
    monkeypatch.setattr(fastpath, "cpu_has_amx", lambda: False)
    for native in (True, False):  # AVX-512 BF16 without AMX, and AVX2
        monkeypatch.setattr(fastpath, "cpu_has_bf16", lambda native=native: native)
        assert fastpath.resolve_precision("auto") == "int8"
    real_find_spec = fastpath.importlib.util.find_spec
    monkeypatch.setattr(fastpath.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    assert fastpath.resolve_precision("auto") == "fp32"  # no onnxruntime to quantise with, no native bf16
    monkeypatch.setattr(fastpath, "cpu_has_bf16", lambda: True)
    assert fastpath.resolve_precision("auto") == "bf16"
    with pytest.raises(UsageError, match="unknown precision 'int4'"):
        fastpath.resolve_precision("int4")


def test_a_cap_on_the_instruction_set_means_no_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # how an AVX2-only CPU is emulated on a newer one
    assert not fastpath.cpu_has_bf16() and not fastpath.cpu_has_amx()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")  # AVX-512 BF16 without AMX
    assert not fastpath.cpu_has_amx()


def test_int8_is_the_openvino_engines_alone(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath, "gpu_may_exist", lambda: False)
    photo = tmp_path / "photo.png"
    _photo(50, 40).save(photo)
    args = ["stylize", str(photo), "-m", str(trained_run / "ember"), "-o", str(tmp_path / "out.png")]
    assert main([*args, "--precision", "int8", "--engine", "torch"]) == 2
    assert "int8 runs on the OpenVINO engine" in capsys.readouterr().err
    # auto with int8: OpenVINO for the plain photo, PyTorch (at its own precision) for a strength below 1
    assert _stylize([*args[1:], "--precision", "int8", "--strength", "0.5"], capsys)["engine"] == ["torch"]


def test_openvino_is_imported_without_its_converter_which_stays_importable() -> None:
    code = ("import sys; from artstyle.engines.openvino_engine import import_openvino; ov = import_openvino(); "
            "assert 'openvino.tools.ovc' not in sys.modules; ov.Core(); "
            "from openvino.tools.ovc import convert_model; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
