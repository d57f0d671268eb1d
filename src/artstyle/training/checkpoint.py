"""Training checkpoints: ``checkpoint.pt`` holds only tensors and plain containers, so
``torch.load(path, weights_only=True)`` reads it; it is written atomically. Published models are
:mod:`artstyle.model_folder`'s."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError
from ..image import atomic_write

CHECKPOINT_FILE = "checkpoint.pt"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: no checkpoint to resume from; run without --resume") from None
    except Exception as err:
        raise ModelError(f"{path}: unreadable checkpoint ({err}); delete it and train from scratch") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ModelError(f"{path}: not an artstyle checkpoint")
    return state


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
