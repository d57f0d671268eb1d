"""Where models and images are: shipped models by name, model folders, run folders, ``.onnx``
files, the output path of each input, the cache. Light on purpose (no PyTorch), so that commands
that never need PyTorch start fast.
"""

from __future__ import annotations

import importlib.resources
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .config import ModelConfig, from_dict
from .errors import ArtstyleError, ModelError, UsageError
from .image import iter_inputs

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FAST_SUFFIX = "-fast"  # shipped half-width variants: baroque-fast, ...


def default_cache_dir() -> Path:
    """``$ARTSTYLE_CACHE`` or ``~/.cache/artstyle``."""
    env = os.environ.get("ARTSTYLE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "artstyle"


def is_model_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a published model (model.safetensors + config.json)."""
    folder = Path(folder)
    return (folder / MODEL_FILE).is_file() and (folder / CONFIG_FILE).is_file()


def read_model_config(folder: str | Path) -> dict[str, Any]:
    """A model folder's config.json, checked; raises ``ModelError`` saying what is wrong."""
    folder = Path(folder)
    if not folder.exists():
        raise ModelError(f"{folder}: no such model folder")
    if not is_model_folder(folder):
        raise ModelError(
            f"{folder}: not a model folder (needs {MODEL_FILE} and {CONFIG_FILE}); "
            "give a folder written by 'artstyle train', e.g. runs/NAME/<movement>"
        )
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        from_dict(ModelConfig, config["model"])
    except (ValueError, KeyError, TypeError, ArtstyleError) as err:
        raise ModelError(f"{folder / CONFIG_FILE}: not a valid artstyle model config ({err})") from None
    return config


def shipped_models(fast: bool = True) -> dict[str, Path]:
    """The models that come with the package, by name (folders under ``artstyle/pretrained``);
    ``fast=False`` leaves out the half-width ``<movement>-fast`` variants."""
    root = Path(str(importlib.resources.files("artstyle") / "pretrained"))
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir())
            if is_model_folder(p) and (fast or not p.name.endswith(FAST_SUFFIX))}


def expand_model_refs(refs: Iterable[str | Path]) -> list[Path]:
    """Model paths from references: a shipped model's name, a model folder, an exported ``.onnx``
    file, or a run folder holding several model folders."""
    folders: list[Path] = []
    shipped = shipped_models()
    for ref in refs:
        path = Path(ref)
        if not path.exists() and str(ref) in shipped:
            folders.append(shipped[str(ref)])
        elif is_model_folder(path) or (path.is_file() and path.suffix == ".onnx"):
            folders.append(path)
        elif path.is_dir() and (inner := sorted(p for p in path.iterdir() if is_model_folder(p))):
            folders.extend(inner)
        elif not path.exists():
            names = f" or a shipped model ({', '.join(shipped)})" if shipped else ""
            raise ModelError(f"{ref}: no such model folder; give a folder written by 'artstyle train'{names}")
        else:
            raise ModelError(f"{ref}: not a model folder (no model.safetensors + config.json in it "
                             "or in its sub-folders)")
    return folders


def plan_outputs(inputs: Sequence[str | Path], output: str | Path | None, suffix: str = ".png",
                 default_dir: str | Path = "stylized") -> list[tuple[Path, Path]]:
    """Pair each input image with its output path.

    One input file and ``-o FILE`` (with an image suffix): that file. Otherwise ``-o DIR`` (default
    ``stylized/``) receives ``DIR/<input stem>.png`` for each input.
    """
    paths = iter_inputs(inputs)
    single_file = len(paths) == 1 and len(inputs) == 1 and Path(inputs[0]).is_file()
    if output is not None and single_file and Path(output).suffix and not Path(output).is_dir():
        return [(paths[0], Path(output))]
    out_dir = Path(output) if output is not None else Path(default_dir)
    if out_dir.suffix and not out_dir.is_dir() and len(paths) > 1:
        raise UsageError(f"-o {out_dir}: {len(paths)} inputs need an output folder, not a file name")
    pairs = [(p, out_dir / f"{p.stem}{suffix}") for p in paths]
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst in seen:
            raise UsageError(f"{src} and {seen[dst]} would both be written to {dst}; stylize them separately")
        seen[dst] = src
    return pairs
