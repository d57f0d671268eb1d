"""Shared fixtures: generated datasets and one tiny model trained with the real VGG-19 weights."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from artstyle.config import DataConfig, ModelConfig, RunConfig, TrainConfig, loss_preset
from artstyle.training.loop import TrainRequest, train
from artstyle.training.synthetic import write_dataset


def tiny_config(steps: int = 6, **train_overrides: object) -> RunConfig:
    """A network and images small enough that a training step takes a fraction of a second."""
    return RunConfig(
        model=ModelConfig(channels=8, residual_blocks=1),
        loss=loss_preset("default"),
        data=DataConfig(image_size=48, style_size=64, min_paintings=2, preview_photos=2, style_samples=1024),
        train=TrainConfig(steps=steps, batch_size=2, lr=5e-3, seed=0, precision="fp32",
                          checkpoint_every=2, preview_every=3, log_every=1,
                          **train_overrides),  # type: ignore[arg-type]
    )


def interrupted_on_call(function: Callable[..., Any], call: int) -> Callable[..., Any]:
    """``function``, but raising KeyboardInterrupt (Ctrl-C) on its ``call``-th call instead of running."""
    calls = 0

    def interrupting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            raise KeyboardInterrupt
        return function(*args, **kwargs)

    return interrupting


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(paintings root with movements 'ember' and 'lagoon', photos folder), generated at 96 px."""
    root = tmp_path_factory.mktemp("data")
    return write_dataset(root, {"ember": "ember", "lagoon": "lagoon"}, paintings=4, photos=8, size=96)


@pytest.fixture(scope="session")
def trained_run(dataset: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with two tiny trained movement models: run/ember and run/lagoon."""
    paintings, photos = dataset
    out = tmp_path_factory.mktemp("run")
    request = TrainRequest(paintings=paintings, photos=photos, out=out, config=tiny_config(steps=4),
                           device=torch.device("cpu"), cache_dir=tmp_path_factory.mktemp("cache"))
    train(request)
    return out


@pytest.fixture(scope="session", autouse=True)
def _isolated_session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fixtures wider than one test (a server made once per module) get a cache of their own too:
    they are made before the per-test cache below is set."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARTSTYLE_CACHE", str(tmp_path_factory.mktemp("session-cache")))
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the user's real cache from tests."""
    monkeypatch.setenv("ARTSTYLE_CACHE", str(tmp_path / "artstyle-cache"))
