"""torchrun with two CPU processes on the gloo backend: DDP training completes and saves a model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from artstyle.checkpoint import load_checkpoint, load_model

pytestmark = pytest.mark.slow


def test_torchrun_two_processes(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    paintings, photos = dataset
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ARTSTYLE_CACHE": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "artstyle", "train", str(paintings), "--photos", str(photos), "--out", str(out),
               "--movements", "ember", "--steps", "3", "--batch-size", "1", "--image-size", "32",
               "--style-size", "48", "--channels", "8", "--residual-blocks", "1", "--precision", "fp32",
               "--checkpoint-every", "2", "-q"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    config = json.loads((out / "ember" / "config.json").read_text())
    assert config["trained"]["processes"] == 2 and config["trained"]["steps"] == 3
    model, _ = load_model(out / "ember")
    assert model(torch.rand(1, 3, 24, 24)).shape == (1, 3, 24, 24)
    state = load_checkpoint(out / "ember" / "checkpoint.pt")
    assert len(state["generators"]) == 2  # each process's sampler, for an exact resume
    assert not any(k.startswith("module.") for k in state["model"])  # the unwrapped network

    # resuming needs the same number of processes
    single = [sys.executable, "-m", "artstyle", *command[command.index("train"):], "--resume", "--steps", "4"]
    result = subprocess.run(single, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 2 and "same number of processes" in result.stderr
