"""Training checkpoints and published models.

* A checkpoint (``checkpoint.pt``) holds only tensors and plain containers, so
  ``torch.load(path, weights_only=True)`` reads it; it is written atomically.
* A published model is a folder: ``model.safetensors`` (weights stored as float16, loaded as
  float32) + ``config.json`` (the architecture, the movement(s) in order and how it was trained).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..catalog import CONFIG_FILE, MODEL_FILE, read_model_config
from ..config import ModelConfig, from_dict
from ..errors import ModelError
from ..image import atomic_write
from ..models import build_model

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


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP or torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_model(folder: str | Path, model: nn.Module, config: dict[str, Any]) -> None:
    """Publish ``model`` (unwrapped) as ``folder/model.safetensors`` + ``folder/config.json``."""
    from safetensors.torch import save

    folder = Path(folder)
    state = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in unwrap(model).state_dict().items()}
    data = save(state, metadata={"format": "pt"})
    atomic_write(folder / MODEL_FILE, lambda f: f.write(data))
    write_json(folder / CONFIG_FILE, config)


def load_model(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a published model in float32, eval mode, on the CPU; returns (model, config)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_model_config(folder)
    model = build_model(from_dict(ModelConfig, config["model"]))
    try:
        state = load_file(str(folder / MODEL_FILE))
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except Exception as err:
        raise ModelError(f"{folder / MODEL_FILE}: weights do not load into the configured "
                         f"network ({err})") from None
    return model.eval(), config
