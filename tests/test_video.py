from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from artstyle import load
from artstyle.cli import main
from artstyle.engines.torch_engine import TorchStylizer
from artstyle.video import output_size, stylize_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 fps, 16-frame, 70x50 clip of a square sliding over a still background, with a tone."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    rng = np.random.default_rng(0)
    background = (rng.random((50, 70, 3)) * 255).astype(np.uint8)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 70, 50, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        for i in range(16):
            frame = background.copy()
            frame[10:30, 3 * i: 3 * i + 20] = (250, 250, 30)
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        samples = (np.sin(np.arange(16000 * 4 // 3) * 2 * np.pi * 440 / 16000) * 0.3).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start: start + 1024]
            if len(chunk) < 1024:
                break
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
            for packet in audio.encode(frame):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
    return path


def test_output_keeps_rate_frames_size_and_audio(clip: Path, trained_run: Path, tmp_path: Path) -> None:
    stylizer = load(trained_run / "ember", engine="torch")
    report = stylize_video(clip, tmp_path / "out.mp4", stylizer, batch_size=3)
    assert report.frames == 16 and report.fps == 12 and report.size == (70, 50) and report.audio
    with av.open(str(tmp_path / "out.mp4")) as result:
        video = result.streams.video[0]
        assert video.average_rate == 12 and video.codec_context.name == "h264"
        assert (video.codec_context.width, video.codec_context.height) == (70, 50)
        assert len(result.streams.audio) == 1
        assert sum(1 for _ in result.decode(video=0)) == 16


def test_every_batch_has_one_shape(clip: Path, trained_run: Path, tmp_path: Path) -> None:
    """The last, shorter batch is padded, so a compiled network compiles once."""
    shapes = []

    class Spy(TorchStylizer):
        def stylize_tensor(self, images, *args, **kwargs):  # type: ignore[no-untyped-def]
            shapes.append(tuple(images.shape))
            return super().stylize_tensor(images, *args, **kwargs)

    spy = Spy.from_pretrained(trained_run / "ember")
    report = stylize_video(clip, tmp_path / "out.mp4", spy, batch_size=5)
    assert report.frames == 16 and len(shapes) == 4 and set(shapes) == {(5, 3, 50, 70)}


def test_smoothing_reduces_flicker(clip: Path, trained_run: Path, tmp_path: Path) -> None:
    stylizer = load(trained_run / "lagoon", engine="torch")
    plain = stylize_video(clip, tmp_path / "plain.mp4", stylizer)
    smooth = stylize_video(clip, tmp_path / "smooth.mp4", stylizer, smooth=0.7)
    assert smooth.output_change < plain.output_change
    assert smooth.input_change == pytest.approx(plain.input_change)


def test_size_is_even_and_bounded() -> None:
    assert output_size(1920, 1080, None) == (1920, 1080)
    assert output_size(1920, 1080, 500) == (500, 280)
    assert output_size(71, 51, None) == (70, 50)


def test_video_command(clip: Path, trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "styled.mp4"
    argv = ["video", str(clip), "-o", str(out), "--model", str(trained_run / "ember"), "--size", "40",
            "--smooth", "0.5", "-q"]
    assert main(argv) == 0
    with av.open(str(out)) as result:
        assert result.streams.video[0].codec_context.width == 40
    assert main(argv) == 2  # exists
    assert main(["video", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "x.mp4"), "--model",
                 str(trained_run / "ember"), "-q"]) == 2
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert main(["video", str(text), "-o", str(tmp_path / "y.mp4"), "--model", str(trained_run / "ember"), "-q"]) == 2
    assert not (tmp_path / "y.mp4").exists()


def test_video_command_compiles(clip: Path, trained_run: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "compiled.mp4"
    argv = ["video", str(clip), "-o", str(out), "--model", str(trained_run / "ember"), "--compile", "--batch-size",
            "5", "-q"]
    assert main(argv) == 0
    with av.open(str(out)) as result:
        assert sum(1 for _ in result.decode(video=0)) == 16
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"")  # refused before it is read
    assert main(["video", str(clip), "-o", str(tmp_path / "z.mp4"), "--model", str(onnx), "--compile", "-q"]) == 2
    assert "--compile applies to PyTorch models" in capsys.readouterr().err


def test_a_full_disk_gives_one_line_and_leaves_nothing(clip: Path, trained_run: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    from artstyle import video

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video.os, "replace", full)
    out = tmp_path / "out" / "x.mp4"
    assert main(["video", str(clip), "-o", str(out), "--model", str(trained_run / "ember"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err == (f"artstyle: error: could not write {out} (No space left on device); "
                   "free some space or write elsewhere\n")
    assert list((tmp_path / "out").iterdir()) == []
    monkeypatch.undo()
    (tmp_path / "file").write_text("x")
    assert main(["video", str(clip), "-o", str(tmp_path / "file" / "x.mp4"), "--model", str(trained_run / "ember"),
                 "-q"]) == 1
    assert "file is a file, not a folder" in capsys.readouterr().err


def test_video_gets_the_mode_of_a_plain_new_file(clip: Path, trained_run: Path, tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        stylize_video(clip, tmp_path / "out.mp4", load(trained_run / "ember", engine="torch"))
    finally:
        os.umask(old)
    assert (tmp_path / "out.mp4").stat().st_mode & 0o777 == 0o644
