"""torchrun with two CPU processes on the gloo backend: DDP training completes and saves a model."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from artstyle.model_folder import ModelFolder
from artstyle.training.checkpoint import load_checkpoint

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
    result = _run(command, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    config = json.loads((out / "ember" / "config.json").read_text())
    assert config["trained"]["processes"] == 2 and config["trained"]["steps"] == 3
    model = ModelFolder.read(out / "ember").load_network()
    assert model(torch.rand(1, 3, 24, 24)).shape == (1, 3, 24, 24)
    state = load_checkpoint(out / "ember" / "checkpoint.pt")
    assert len(state["generators"]) == 2  # each process's sampler, for an exact resume
    assert not any(k.startswith("module.") for k in state["model"])  # the unwrapped network

    # resuming needs the same number of processes
    single = [sys.executable, "-m", "artstyle", *command[command.index("train"):], "--resume", "--steps", "4"]
    result = _run(single, env)
    assert result.returncode == 2 and "same number of processes" in result.stderr


def _run(command: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run in a process group of its own, so a hang cannot leave torchrun's workers behind."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s: {err[-2000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)
