"""The command line: main([...]) in-process, and the installed command once."""

import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artstyle.cli import main


def _photo(path: Path, size: tuple[int, int] = (70, 50)) -> Path:
    Image.new("RGB", size, (30, 140, 90)).save(path)
    return path


def test_help_explains_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("train", "stylize", "sheet", "demo"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--resume" in out and "(default: 2000)" in out and "relu2_2" in out


def test_stylize_one_file_and_a_folder(trained_run: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    photo = _photo(tmp_path / "photo.jpg")
    out = tmp_path / "styled.png"
    assert main(["stylize", str(photo), "--model", str(trained_run / "ember"), "-o", str(out), "-q"]) == 0
    assert Image.open(out).size == (70, 50)
    # existing output is not overwritten silently
    assert main(["stylize", str(photo), "--model", str(trained_run / "ember"), "-o", str(out), "-q"]) == 2
    assert "exists; use --overwrite" in capsys.readouterr().err
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        _photo(folder / f"p{i}.png", (120, 80))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    code = main(["stylize", str(folder), "--model", str(trained_run / "lagoon"), "-o", str(tmp_path / "out"),
                 "--size", "60", "--json", "-q"])
    captured = capsys.readouterr()
    assert code == 1  # one input failed
    summary = json.loads(captured.out)
    assert len(summary["written"]) == 2 and summary["failed"] == [str(folder / "broken.jpg")]
    assert Image.open(tmp_path / "out" / "p0.png").size == (60, 40)


def test_sheet(trained_run: Path, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.jpg", (160, 100))
    sheet = tmp_path / "sheet.png"
    assert main(["sheet", str(photo), "--model", str(trained_run), "-o", str(sheet), "-q"]) == 0
    assert Image.open(sheet).width > 3 * 160


@pytest.mark.parametrize("argv,message,code", [
    (["stylize", "{tmp}/nope.jpg", "--model", "{run}/ember"], "no such file or folder", 2),
    (["stylize", "{photo}", "--model", "{tmp}"], "not a model folder", 1),
    (["stylize", "{photo}", "--model", "{run}"], "holds 2 models; pick one", 2),
    (["sheet", "{tmp}/notes.txt", "--model", "{run}", "-o", "{tmp}/s.png"], "not an image file", 1),
    (["train", "{tmp}/nowhere", "--photos", "{tmp}"], "no such folder", 2),
    (["train", "{data}", "--photos", "{photos}", "--movements", "embr", "--out", "{tmp}/r"],
     "unknown movement(s) 'embr'; choose from: ember, lagoon", 2),
    (["stylize", "{photo}", "--model", "{run}/ember", "--device", "cuda"], "no CUDA GPU", 2),
    (["stylize", "{photo}", "--model", "{run}/ember", "-o", "{photo}/x.png"], "photo.jpg is a file, not a folder", 1),
    (["sheet", "{photo}", "--model", "{run}/ember", "-o", "{photo}/s.png"], "photo.jpg is a file, not a folder", 1),
    (["demo", "-o", "{photo}/demo", "--tiny", "--steps", "1"], "photo.jpg is a file, not a folder", 1),
    (["train", "{data}", "--photos", "{photos}", "--out", "{photo}/run", "--min-paintings", "2"],
     "photo.jpg is a file, not a folder", 1),
    (["stylize", "{thin}", "--model", "{run}/ember", "--size", "64", "-o", "{tmp}/o.png"], "too thin to paint", 1),
    (["train", "{data}", "--photos", "{photos}", "--out", "{tmp}/r", "--resume", "--min-paintings", "2"],
     "nothing to resume", 2),
    (["demo", "-o", "{tmp}/old_demo"], "holds an earlier demo; use --overwrite", 2),
])
def test_errors_are_one_line_without_traceback(argv: list[str], message: str, code: int, trained_run: Path,
                                              dataset: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    photo = _photo(tmp_path / "photo.jpg")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "old_demo").mkdir()
    (tmp_path / "old_demo" / "sheet.png").write_bytes(b"an earlier demo's sheet")
    fill = {"tmp": tmp_path, "run": trained_run, "photo": photo, "data": dataset[0], "photos": dataset[1],
            "thin": _photo(tmp_path / "thin.png", (3000, 17))}
    argv = [a.format(**fill) for a in argv]
    assert main([*argv, "-q"]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("artstyle: error: ")


@pytest.mark.parametrize("argv,message", [
    (["train", "x", "--photos", "y", "--steps", "-5"], "-5 must be positive"),
    (["train", "x", "--photos", "y", "--preview-photos", "-1"], "-1 must be 0 or more"),
    (["train", "x", "--photos", "y", "--lr-step", "-3"], "-3 must be 0 or more"),
    (["train", "x", "--photos", "y", "--content-layer", "relu9_9"], "invalid choice: 'relu9_9'"),
    (["train", "x", "--photos", "y", "--tv-weight", "nan"], "nan must be a number, 0 or more"),
    (["train", "x", "--photos", "y", "--adversarial-weight", "-1"], "-1 must be a number, 0 or more"),
    (["stylize", "p.jpg", "--model", "m", "--tile", "5"], "5 px is too small: give at least 64 px"),
    (["stylize", "p.jpg", "--model", "m", "--tile", "-5"], "-5 must be 0 or more"),
])
def test_bad_option_values_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_shows_defaults_of_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "one drop at 3/4 of the run) (default: 0)" in out  # --lr-step


def test_progress_without_a_terminal_is_logged(trained_run: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from artstyle.cli.common import LogProgress

    clock = [0.0]
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("artstyle")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        bar = LogProgress(total=10, desc="ember", unit="img", interval=30.0, clock=lambda: clock[0])
        for _ in range(10):
            clock[0] += 12.0  # an update every 12 s: a line at 36 s, 72 s and 108 s, and one at the end
            bar.update(1)
        bar.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert lines == ["ember: 3/10 img (30%), ETA 1:24, 0:36 elapsed", "ember: 6/10 img (60%), ETA 0:48, 1:12 elapsed",
                     "ember: 9/10 img (90%), ETA 0:12, 1:48 elapsed", "ember: 10/10 img (100%), 2:00 elapsed"]
    # the real thing, through the command (pytest's stderr is not a terminal)
    photo = _photo(tmp_path / "photo.jpg")
    assert main(["stylize", str(photo), "--model", str(trained_run / "ember"), "-o", str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err
    assert "stylize (ember): 1/1 img (100%), 0:0" in err and f"wrote {tmp_path / 'o.png'}" in err


@pytest.mark.slow
def test_train_through_the_cli(dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paintings, photos = dataset
    out = tmp_path / "run"
    argv = ["train", str(paintings), "--photos", str(photos), "--out", str(out), "--movements", "lagoon",
            "--steps", "2", "--batch-size", "1", "--image-size", "32", "--style-size", "48", "--channels", "8",
            "--residual-blocks", "1", "--precision", "fp32", "--preset", "original-light", "--json", "-q",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["models"][0]["name"] == "lagoon" and summary["models"][0]["steps"] == 2
    config = json.loads((out / "lagoon" / "config.json").read_text())
    assert config["loss"]["preset"] == "original-light" and config["model"]["channels"] == 8
    assert main(argv) == 2  # the run exists: --resume or --overwrite
    assert main([*argv, "--resume", "--steps", "3"]) == 0
    assert json.loads((out / "lagoon" / "config.json").read_text())["trained"]["steps"] == 3


def test_train_compile_flag_reaches_the_request(dataset: tuple[Path, Path], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``--compile`` is passed on to training (compiled training itself: test_train.py)."""
    requests = []
    monkeypatch.setattr("artstyle.training.loop.train", lambda request, progress=None: requests.append(request) or [])
    paintings, photos = dataset
    for flags in ([], ["--compile"]):
        assert main(["train", str(paintings), "--photos", str(photos), "--out", str(tmp_path), *flags, "-q"]) == 0
    assert [r.compile for r in requests] == [False, True]


def test_installed_command(trained_run: Path, tmp_path: Path) -> None:
    exe = shutil.which("artstyle", path=os.path.dirname(sys.executable)) or shutil.which("artstyle")
    assert exe, "the artstyle console script is not installed"
    photo = _photo(tmp_path / "photo.jpg")
    result = subprocess.run([exe, "stylize", str(photo), "--model", str(trained_run / "ember"),
                             "-o", str(tmp_path / "out.png")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out.png").size == (70, 50)
    result = subprocess.run([sys.executable, "-m", "artstyle", "stylize", str(photo), "--model", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "not a model folder" in result.stderr


@pytest.mark.slow
def test_sigterm_to_a_training_process_saves_a_checkpoint(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    """What a cluster scheduler does before it preempts a job: SIGTERM, then resume."""
    import signal
    import time

    from artstyle.training.checkpoint import load_checkpoint

    paintings, photos = dataset
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "artstyle", "train", str(paintings), "--photos", str(photos), "--out", str(out),
            "--movements", "ember", "--steps", "100000", "--checkpoint-every", "1", "--batch-size", "1",
            "--image-size", "32", "--style-size", "48", "--channels", "8", "--residual-blocks", "1",
            "--precision", "fp32", "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    checkpoint = out / "ember" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("artstyle: error: terminated (SIGTERM): ember saved at step ") and "--resume" in last
    step = load_checkpoint(checkpoint)["step"]
    assert f"saved at step {step} of 100000" in last and step >= 1
    assert not list((out / "ember").glob(".*.tmp"))
    resumed = subprocess.run([*argv[:argv.index("--steps") + 1], str(step + 1), *argv[argv.index("--steps") + 2:],
                              "--resume", "-q"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(checkpoint)["step"] == step + 1


@pytest.mark.slow
def test_demo_trains_a_tiny_model_then_stylizes_the_sample(tmp_path: Path) -> None:
    assert main(["demo", "-o", str(tmp_path / "demo"), "--steps", "2", "--tiny", "-q"]) == 0
    sample = Image.open(tmp_path / "demo" / "sample_stylized.png")
    assert sample.size == (768, 512)
    assert (tmp_path / "demo" / "run" / "demo_strokes" / "model.safetensors").is_file()
    sheet = Image.open(tmp_path / "demo" / "sheet.png")
    assert sheet.width > 2 * sheet.height  # original and stylized side by side


def test_stylize_strength_and_preserve_color(trained_run: Path, tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    model = str(trained_run / "ember")
    zero, colour = tmp_path / "zero.png", tmp_path / "colour.png"
    assert main(["stylize", str(photo), "--model", model, "-o", str(zero), "--strength", "0", "-q"]) == 0
    assert Image.open(zero).getpixel((10, 10)) == (30, 140, 90)  # strength 0 returns the photo
    assert main(["stylize", str(photo), "--model", model, "-o", str(colour), "--preserve-color", "-q"]) == 0
    r, g, b = Image.open(colour).getpixel((35, 25))
    assert g > r and g > b  # the photo's green survives whatever the movement's palette
    with pytest.raises(SystemExit):
        main(["stylize", str(photo), "--model", model, "--strength", "2"])


def test_shipped_models_by_name(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    import artstyle.model_folder

    monkeypatch.setattr(artstyle.model_folder, "shipped_models",
                        lambda fast=True: {"ember": trained_run / "ember", "lagoon": trained_run / "lagoon"})
    monkeypatch.chdir(tmp_path)
    photo = _photo(tmp_path / "photo.png")
    assert main(["stylize", str(photo), "--model", "lagoon", "-o", "out.png", "-q"]) == 0
    assert main(["sheet", str(photo), str(photo), "-o", "sheet.png", "-q"]) == 0  # all shipped models
    sheet = Image.open("sheet.png")
    assert sheet.width > 3 * 70 and sheet.height > 2 * 50
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["ember", "lagoon"] and rows[0]["paintings"] == {"ember": 4}
    assert main(["models"]) == 0
    assert "ember" in capsys.readouterr().out
    assert main(["stylize", str(photo), "--model", "cubsim", "-q"]) == 1
    assert "or a shipped model (ember, lagoon)" in capsys.readouterr().err


def test_no_shipped_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import artstyle.model_folder

    monkeypatch.setattr(artstyle.model_folder, "shipped_models", lambda fast=True: {})
    assert main(["sheet", str(_photo(tmp_path / "p.png")), "-o", str(tmp_path / "s.png"), "-q"]) == 2
    assert "no shipped models" in capsys.readouterr().err


def test_a_folder_is_painted_in_order_as_each_photo_alone(trained_run: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Decoding ahead and writing behind the network change nothing: the same pictures, in order,
    with the unreadable ones skipped wherever they fall."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        _photo(folder / f"p{i}.png", (60 + 4 * i, 40))
    (folder / "p2.png").write_bytes(b"not a png")
    model = ["--model", str(trained_run / "ember"), "--engine", "torch", "-q"]
    assert main(["stylize", str(folder), *model, "-o", str(tmp_path / "out"), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == [str(tmp_path / "out" / f"p{i}.png") for i in (0, 1, 3, 4, 5)]
    assert summary["failed"] == [str(folder / "p2.png")]
    assert main(["stylize", str(folder / "p4.png"), *model, "-o", str(tmp_path / "alone.png")]) == 0
    alone, in_folder = Image.open(tmp_path / "alone.png"), Image.open(tmp_path / "out" / "p4.png")
    assert np.array_equal(np.asarray(alone), np.asarray(in_folder))


def test_output_cut_short_by_its_reader_is_no_error(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    class ClosedPipe(io.StringIO):  # what `artstyle models | head -1` leaves artstyle writing to
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["models"]) == 0
    assert capsys.readouterr().err == ""
