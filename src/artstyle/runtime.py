"""Where and how tensors run: the device (chosen once at the entry point) and the precision."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
from collections.abc import Callable

import torch

from .config import PRECISIONS
from .errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` = CUDA, then Apple MPS, then CPU; an explicit device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here; use --device auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: Apple MPS is not available here; use --device auto or cpu")
    return device


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX-512 BF16 or AMX): there, convolutions run
    several times faster in bf16 than in fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` = bf16 on CUDA GPUs and CPUs that compute it natively, fp32 elsewhere."""
    if precision == "int8":
        raise UsageError("int8 runs on the OpenVINO engine: use --engine openvino (pip install 'artstyle[fast]'), "
                         "or another precision")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return "bf16"
    if device.type == "cpu" and cpu_has_bf16():
        return "bf16"
    return "fp32"


def torch_dtype(precision: str) -> torch.dtype:
    """The tensor type of a resolved precision (fp32, bf16 or fp16)."""
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast_factory(device: torch.device, precision: str) -> Callable[[], contextlib.AbstractContextManager[object]]:
    """A zero-argument function returning the autocast context for ``precision`` (fp32: none)."""
    if precision == "fp32":
        return contextlib.nullcontext
    return functools.partial(torch.autocast, device_type=device.type, dtype=torch_dtype(precision))


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return None


def release_free_memory() -> None:
    """Hand memory that is free inside the process back to the system (glibc's ``malloc_trim``).

    Passes of different sizes over large images leave glibc's heap fragmented, so the resident
    size keeps growing though the memory is free (tiled painting of a 4000x3000 photo: 1.8 GiB
    instead of 1.2). A no-op where it does not apply.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
