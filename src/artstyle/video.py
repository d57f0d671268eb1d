"""``artstyle video``: stylize every frame of a video, keeping its frame rate, timing and audio.

Frames are decoded with PyAV, stylized in batches and encoded as H.264 (yuv420p). The audio track
is copied as it is. ``smooth`` reduces flicker: each stylized frame is blended with the previous
output where the input did not change (a per-pixel weight that falls off with the input's own
frame-to-frame difference), so static areas stop shimmering while moving ones stay sharp.
"""

from __future__ import annotations

import logging
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .engines.base import Movement, Stylizer
from .errors import ArtstyleError, UsageError
from .image import temporary_beside, write_error

log = logging.getLogger(__name__)

SMOOTH_SIGMA = 0.04  # input change (in [0, 1] units) at which the blend weight falls to 1/e


@dataclass(frozen=True)
class VideoReport:
    frames: int
    fps: float
    size: tuple[int, int]
    audio: bool
    input_change: float  # mean |frame_t - frame_t-1| of the input, [0, 1] units
    output_change: float  # the same for the output: flicker shows as output >> input


def _require_av() -> Any:
    try:
        import av
    except ImportError:
        raise ArtstyleError("video needs PyAV: pip install 'artstyle[video]'") from None
    return av


def output_size(width: int, height: int, size: int | None) -> tuple[int, int]:
    """Bounded by ``size`` on the longest side, aspect kept, both even (H.264 4:2:0 needs that)."""
    scale = min(1.0, size / max(width, height)) if size else 1.0
    w, h = max(2, round(width * scale)), max(2, round(height * scale))
    return w - w % 2, h - h % 2


class _Smoother:
    """Blends each output with the previous one where the input stayed still."""

    def __init__(self, strength: float) -> None:
        self.strength = strength
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None  # (input, output)

    def __call__(self, frame: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.previous is not None:
            prev_in, prev_out = self.previous
            change = (frame - prev_in).abs().mean(0, keepdim=True)
            weight = self.strength * torch.exp(-change / SMOOTH_SIGMA)
            out = weight * prev_out + (1 - weight) * out
        self.previous = (frame, out)
        return out


def stylize_video(
    source: Path,
    target: Path,
    stylizer: Stylizer,
    movement: Movement = None,
    size: int | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    smooth: float = 0.0,
    batch_size: int = 4,
    progress: Callable[[int], object] | None = None,
) -> VideoReport:
    """Stylize ``source`` into ``target`` (H.264 in the container its suffix names); returns figures."""
    av = _require_av()
    if not 0.0 <= smooth < 1.0:
        raise UsageError(f"--smooth {smooth} is outside 0..1 (0 = off; 0.5 is a good start)")
    try:
        source_container = av.open(str(source))
    except Exception as err:
        raise UsageError(f"{source}: not a video PyAV can read ({err})") from None
    with source_container as src:
        if not src.streams.video:
            raise UsageError(f"{source}: has no video stream")
        in_video = src.streams.video[0]
        in_audio = src.streams.audio[0] if src.streams.audio else None
        rate = in_video.average_rate or in_video.guessed_rate or 25
        width, height = output_size(in_video.codec_context.width, in_video.codec_context.height, size)
        tmp = temporary_beside(target, suffix=target.suffix)  # the container follows the suffix
        try:
            with av.open(str(tmp), "w") as dst:
                out_video = dst.add_stream("libx264", rate=rate)
                out_video.width, out_video.height, out_video.pix_fmt = width, height, "yuv420p"
                out_video.time_base = in_video.time_base
                out_video.options = {"crf": "18", "preset": "medium"}
                out_audio = dst.add_stream_from_template(in_audio) if in_audio is not None else None
                figures = _transcode(src, dst, in_video, in_audio, out_video, out_audio, stylizer, movement,
                                     (width, height), strength, preserve_color, smooth, batch_size, progress)
            os.replace(tmp, target)
        except BaseException as err:
            tmp.unlink(missing_ok=True)
            if isinstance(err, OSError):  # PyAV's write errors are OSErrors too
                raise write_error(target, err) from None
            raise
    frames, change_in, change_out = figures
    if frames == 0:
        raise UsageError(f"{source}: no frames could be decoded")
    return VideoReport(frames, float(rate), (width, height), in_audio is not None, change_in, change_out)


def _transcode(src: Any, dst: Any, in_video: Any, in_audio: Any, out_video: Any, out_audio: Any,
               stylizer: Stylizer, movement: Movement, size: tuple[int, int], strength: float,
               preserve_color: bool, smooth: float, batch_size: int,
               progress: Callable[[int], object] | None) -> tuple[int, float, float]:
    av = _require_av()
    smoother = _Smoother(smooth) if smooth > 0 else None
    pending: list[Any] = []
    count = 0
    change_in: list[float] = []
    change_out: list[float] = []
    last: tuple[torch.Tensor, torch.Tensor] | None = None

    def flush() -> None:
        nonlocal count, last
        if not pending:
            return
        arrays = [f.to_ndarray(format="rgb24", width=size[0], height=size[1]) for f in pending]
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255)
        n = len(batch)
        # the last batch is padded to the same shape, so a compiled network does not compile again
        full = torch.cat([batch, batch[-1:].expand(batch_size - n, -1, -1, -1)]) if n < batch_size else batch
        outs = stylizer.stylize_tensor(full, movement, strength, preserve_color)[:n]
        for frame, x, y in zip(pending, batch, outs, strict=True):
            if smoother is not None:
                y = smoother(x, y)
            if last is not None:
                change_in.append(float((x - last[0]).abs().mean()))
                change_out.append(float((y - last[1]).abs().mean()))
            last = (x, y)
            arr = y.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()
            out_frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            out_frame.pts, out_frame.time_base = frame.pts, frame.time_base
            for packet in out_video.encode(out_frame):
                dst.mux(packet)
            count += 1
        if progress is not None:
            progress(len(pending))
        pending.clear()

    streams = [in_video] + ([in_audio] if in_audio is not None else [])
    for packet in src.demux(*streams):
        if packet.stream is in_video:
            for frame in packet.decode():
                pending.append(frame)
                if len(pending) >= batch_size:
                    flush()
        elif packet.dts is not None:  # audio: copied, not re-encoded
            packet.stream = out_audio
            dst.mux(packet)
    flush()
    for packet in out_video.encode(None):
        dst.mux(packet)
    return count, statistics.fmean(change_in or [0.0]), statistics.fmean(change_out or [0.0])


def frame_count(source: Path) -> int:
    """The container's frame count, or 0 when it does not say (used for the progress bar)."""
    av = _require_av()
    try:
        with av.open(str(source)) as c:
            return int(c.streams.video[0].frames) if c.streams.video else 0
    except Exception:
        return 0
