"""Real training runs: the real VGG-19 weights, tiny networks, images the tests generate."""

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from artstyle.config import LOSS_PRESETS
from artstyle.errors import ArtstyleError, TrainingError, TrainingInterrupted, UsageError
from artstyle.model_folder import ModelFolder
from artstyle.training import loop as train_module
from artstyle.training.checkpoint import load_checkpoint
from artstyle.training.data import Skipped, scan_movements
from artstyle.training.loop import TrainRequest, train
from artstyle.training.targets import contrasted, movement_target
from artstyle.training.vgg import load_vgg19
from conftest import interrupted_on_call, tiny_config

pytestmark = pytest.mark.slow


def _request(dataset: tuple[Path, Path], out: Path, steps: int = 4, loss: dict[str, object] | None = None,
             data: dict[str, object] | None = None, **kwargs: object) -> TrainRequest:
    paintings, photos = dataset
    config = tiny_config(steps)
    config = replace(config, loss=replace(config.loss, **(loss or {})),  # type: ignore[arg-type]
                     data=replace(config.data, **(data or {})))  # type: ignore[arg-type]
    return TrainRequest(paintings=paintings, photos=photos, out=out, config=config,
                        device=torch.device("cpu"), movements=("ember",), **kwargs)  # type: ignore[arg-type]


def test_run_folder_has_every_file(trained_run: Path, dataset: tuple[Path, Path]) -> None:
    dataset_root = dataset[0]
    for movement in ("ember", "lagoon"):
        folder = trained_run / movement
        for name in ("model.safetensors", "config.json", "checkpoint.pt", "losses.csv", "loss.png", "preview.png"):
            assert (folder / name).is_file(), name
        config = json.loads((folder / "config.json").read_text())
        assert config["name"] == movement and config["model"]["movements"] == [movement]
        assert config["model"]["conditional"] is False
        assert config["loss"]["content_layer"] == "relu4_2"
        assert config["vgg_weights_id"] == "oxford-vgg19-keras-q8"
        paintings = config["trained"]["paintings"][movement]
        assert paintings["used"] == 4 and paintings["skipped"] == 0
        assert paintings["folders"] == [str(dataset_root / movement)]
        assert config["trained"]["photos_trained"] == 6
        assert config["trained"]["steps"] == 4 and config["train"]["seed"] == 0
        assert config["artstyle_version"]
        rows = list(csv.DictReader((folder / "losses.csv").open()))
        assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
        assert {"content", "style/relu1_1", "style/relu5_1", "tv", "total", "lr"} <= set(rows[0])
        preview = Image.open(folder / "preview.png")
        assert preview.width > 2 * 256 and preview.height > 2 * 256  # 2 photos (rows) x before/after
        model = ModelFolder.read(folder).load_network()
        assert model(torch.rand(1, 3, 40, 40)).shape == (1, 3, 40, 40)


@pytest.mark.parametrize("preset", ["gram", "sliced"])
def test_style_loss_falls(dataset: tuple[Path, Path], tmp_path: Path, preset: str) -> None:
    request = _request(dataset, tmp_path / "run", steps=30, loss=dict(LOSS_PRESETS[preset]))
    request = replace(request, config=replace(request.config, train=replace(request.config.train, lr=1e-2)))
    train(request)
    rows = list(csv.DictReader((tmp_path / "run" / "ember" / "losses.csv").open()))
    first = sum(float(r["style"]) for r in rows[:3]) / 3
    last = sum(float(r["style"]) for r in rows[-3:]) / 3
    assert last < 0.7 * first


@pytest.mark.parametrize("contrast_with", [(), ("lagoon",)])
def test_contrast_trains_on_the_target_pushed_away_from_the_other_movements(
        dataset: tuple[Path, Path], tmp_path: Path, contrast_with: tuple[str, ...]) -> None:
    cache = tmp_path / "cache"
    request = _request(dataset, tmp_path / "run", steps=2, loss={"contrast": 1.5, "contrast_with": contrast_with},
                       cache_dir=cache)
    train(request)
    config = json.loads((tmp_path / "run" / "ember" / "config.json").read_text())
    # by default every movement folder is recorded; ember itself is skipped when its own target is pushed
    assert config["loss"]["contrast"] == 1.5
    assert config["loss"]["contrast_with"] == (list(contrast_with) or ["ember", "lagoon"])
    found = scan_movements(dataset[0])
    c = request.config
    vgg = load_vgg19(c.loss.vgg_weights, last_layer="relu5_1")
    ember, lagoon = (movement_target(found[m], vgg, c.loss, c.data, c.train.seed, torch.device("cpu"), cache,
                                     Skipped())[0] for m in ("ember", "lagoon"))
    used = config["trained"]["paintings"]["ember"]["style_target_key"]
    assert used == contrasted(ember, [lagoon], 1.5).key != ember.key


def test_contrast_is_refused_with_the_sliced_loss(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--contrast"):
        _request(dataset, tmp_path / "run", loss={"style_loss": "sliced", "contrast": 1.0})


def test_extending_a_finished_run(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    train(_request(dataset, tmp_path / "run", steps=2))
    path = tmp_path / "run" / "ember" / "checkpoint.pt"
    state = load_checkpoint(path)
    assert state["step"] == 2 and state["seconds"] > 0
    torch.save({**state, "seconds": 1000.0}, path)  # as if the first process had trained for 1000 s
    (result,) = train(_request(dataset, tmp_path / "run", steps=4, resume=True))
    state = load_checkpoint(path)
    assert state["step"] == 4 and [r["step"] for r in state["history"]] == [1, 2, 3, 4]
    # the published training time counts every process's part, not only the last one's
    seconds = ModelFolder.read(result.folder).trained.seconds  # type: ignore[union-attr]
    assert 1000 < seconds < 1000 + 600 and result.seconds == pytest.approx(seconds, abs=0.1)
    with pytest.raises(UsageError, match="already at step 4, past --steps 3"):
        train(_request(dataset, tmp_path / "run", steps=3, resume=True))


def test_init_from_starts_at_another_models_weights(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    (first,) = train(_request(dataset, tmp_path / "first", steps=2))
    request = _request(dataset, tmp_path / "tuned", steps=1)
    # a learning rate too small to move the weights: the tuned model is the first one
    request = replace(request, config=replace(request.config, train=replace(
        request.config.train, lr=1e-12, init_from=str(first.folder))))
    (tuned,) = train(request)
    start = ModelFolder.read(first.folder).load_network().state_dict()
    after = ModelFolder.read(tuned.folder).load_network().state_dict()
    assert all(torch.allclose(start[k], after[k], atol=1e-3) for k in start)
    (fresh,) = train(replace(request, out=tmp_path / "fresh",
                             config=replace(request.config, train=replace(request.config.train, init_from=""))))
    scratch = ModelFolder.read(fresh.folder).load_network().state_dict()
    assert not all(torch.allclose(start[k], scratch[k], atol=1e-3) for k in start)
    assert json.loads((tuned.folder / "config.json").read_text())["train"]["init_from"] == str(first.folder)

    # a resumed run carries on from its checkpoint, and needs the starting model no more
    for path in first.folder.iterdir():
        path.unlink()
    longer = replace(request, resume=True, config=replace(request.config, train=replace(request.config.train, steps=2)))
    (resumed,) = train(longer)
    assert resumed.steps == 2


def test_init_from_refuses_another_network(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    (first,) = train(_request(dataset, tmp_path / "first", steps=1))
    request = _request(dataset, tmp_path / "wide", steps=1)
    config = request.config
    wider = replace(config, model=replace(config.model, channels=config.model.channels * 2),
                    train=replace(config.train, init_from=str(first.folder)))
    channels, blocks = config.model.channels, config.model.residual_blocks
    with pytest.raises(UsageError, match=f"add --channels {channels} --residual-blocks {blocks}"):
        train(replace(request, config=wider))
    assert not (tmp_path / "wide").exists()  # refused before any work
    joint = replace(request, config=replace(config, train=replace(config.train, init_from=str(first.folder))),
                    joint=True, movements=("ember", "lagoon"))
    with pytest.raises(UsageError, match="one-movement network, and this run trains a joint network of 2"):
        train(joint)
    missing = replace(request, config=replace(config, train=replace(config.train, init_from=str(tmp_path / "nope"))))
    with pytest.raises(UsageError, match="--init-from"):
        train(missing)


def test_existing_run_is_not_overwritten_silently(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    train(_request(dataset, tmp_path / "run", steps=2))
    with pytest.raises(UsageError, match="already holds a run; use --resume.*--overwrite"):
        train(_request(dataset, tmp_path / "run", steps=2))
    (result,) = train(_request(dataset, tmp_path / "run", steps=2, overwrite=True))
    assert result.name == "ember" and json.loads((result.folder / "config.json").read_text())["name"] == "ember"


def test_resume_with_other_settings_is_refused(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    train(_request(dataset, tmp_path / "run", steps=2))
    request = _request(dataset, tmp_path / "run", steps=4, resume=True)
    request = replace(request, config=replace(request.config, loss=replace(request.config.loss, style_weight=1.0)))
    with pytest.raises(UsageError, match="style_weight: saved 0.5, now 1.0"):
        train(request)


LOSSES = {"gram": {}, "sliced": LOSS_PRESETS["sliced"],
          "sliced+critic": {**LOSS_PRESETS["sliced"], "adversarial_weight": 0.1}, "streamed photos": {}}


@pytest.mark.parametrize("objective", list(LOSSES))
def test_ctrl_c_saves_a_checkpoint_and_resume_continues_exactly(
        dataset: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, objective: str) -> None:
    loss = LOSSES[objective]
    data = {"photo_loader": "stream"} if objective == "streamed photos" else {}
    workers = {"workers": 1} if data else {}
    train(_request(dataset, tmp_path / "straight", steps=5, loss=loss, data=data, **workers))
    original = train_module.perceptual_losses
    monkeypatch.setattr(train_module, "perceptual_losses", interrupted_on_call(original, 3))
    with pytest.raises(TrainingInterrupted, match="saved at step 2 of 5.*--resume"):
        train(_request(dataset, tmp_path / "run", steps=5, loss=loss, data=data, **workers))
    assert load_checkpoint(tmp_path / "run" / "ember" / "checkpoint.pt")["step"] == 2
    monkeypatch.setattr(train_module, "perceptual_losses", original)
    train(_request(dataset, tmp_path / "run", steps=5, loss=loss, data=data, resume=True))  # workers: the default
    a = load_checkpoint(tmp_path / "straight" / "ember" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "run" / "ember" / "checkpoint.pt")
    assert b["step"] == 5
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [r["total"] for r in a["history"]] == [r["total"] for r in b["history"]]
    if "adversarial_weight" in loss:
        for key in a["critic"]["critic"]:
            assert torch.equal(a["critic"]["critic"][key], b["critic"]["critic"][key]), key
        assert {"adversarial", "critic"} <= set(a["history"][-1])


@pytest.mark.parametrize(("log_every", "checkpoint_every", "good"), [(1, 2, 2), (100, 3, 3)])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(dataset: tuple[Path, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, log_every: int,
                                                          checkpoint_every: int, good: int) -> None:
    """Losses are checked on the device and read at logging and saving: the NaN of step 4 is
    reported with its step however late it is read, and never reaches a checkpoint."""
    original = train_module.perceptual_losses
    calls = {"n": 0}

    def nan_on_fourth(*args, **kwargs):  # type: ignore[no-untyped-def]
        parts = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 4:
            parts["total"] = parts["total"] * float("nan")
        return parts

    monkeypatch.setattr(train_module, "perceptual_losses", nan_on_fourth)
    request = _request(dataset, tmp_path / "run", steps=6)
    request = replace(request, config=replace(request.config, train=replace(
        request.config.train, log_every=log_every, checkpoint_every=checkpoint_every, preview_every=100)))
    with pytest.raises(TrainingError, match=f"loss became nan at step 4.*checkpoint \\(step {good}\\)"):
        train(request)
    state = load_checkpoint(tmp_path / "run" / "ember" / "checkpoint.pt")
    assert state["step"] == good
    assert all(torch.isfinite(p).all() for p in state["model"].values())


def test_nan_before_any_checkpoint_says_none_was_saved(dataset: tuple[Path, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    original = train_module.perceptual_losses

    def nan(*args, **kwargs):  # type: ignore[no-untyped-def]
        parts = original(*args, **kwargs)
        parts["total"] = parts["total"] * float("nan")
        return parts

    monkeypatch.setattr(train_module, "perceptual_losses", nan)
    with pytest.raises(TrainingError, match="at step 1; no checkpoint was saved before it; lower --lr") as err:
        train(_request(dataset, tmp_path / "run", steps=4))
    assert "is kept" not in str(err.value)
    assert not (tmp_path / "run" / "ember" / "checkpoint.pt").exists()


def test_resume_without_a_checkpoint_stops_unless_asked_to_start(dataset: tuple[Path, Path], tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(UsageError, match="nothing to resume: no checkpoint.pt in .*ember; check --out"):
        train(_request(dataset, tmp_path / "run", steps=2, resume=True))
    assert not (tmp_path / "run" / "ember" / "checkpoint.pt").exists()
    (result,) = train(_request(dataset, tmp_path / "run", steps=2, resume=True, start_if_new=True))
    assert result.steps == 2 and "starting from step 0" in caplog.text
    (result,) = train(_request(dataset, tmp_path / "run", steps=3, resume=True, start_if_new=True))
    assert load_checkpoint(result.folder / "checkpoint.pt")["history"][0]["step"] == 1  # resumed, not restarted
    assert result.steps == 3


def test_temporary_files_of_an_interrupted_write_are_removed(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    train(_request(dataset, tmp_path / "run", steps=2))
    folder = tmp_path / "run" / "ember"
    leftover = folder / ".checkpoint.pt.k1ll3d.tmp"  # what a kill -9 during a checkpoint write leaves
    leftover.write_bytes(b"half a checkpoint")
    train(_request(dataset, tmp_path / "run", steps=3, resume=True))
    assert not leftover.exists()
    assert not list(folder.glob(".*"))


def test_an_unwritable_run_folder_fails_before_any_work(dataset: tuple[Path, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "run").write_text("a file where the run folder should be")
    loaded = []
    monkeypatch.setattr(train_module, "build_shared", lambda *a, **k: loaded.append(1))
    with pytest.raises(ArtstyleError, match="run is a file, not a folder"):
        train(_request(dataset, tmp_path / "run" / "sub", steps=2))
    assert not loaded


def test_bad_photos_are_skipped(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    paintings, photos = dataset
    mixed = tmp_path / "photos"
    mixed.mkdir()
    for p in photos.iterdir():
        (mixed / p.name).write_bytes(p.read_bytes())
    (mixed / "zz_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (mixed / "zz_gray.png").write_bytes(b"")
    Image.new("L", (80, 80), 128).save(mixed / "gray.png")
    request = replace(_request((paintings, mixed), tmp_path / "run", steps=2), photos=mixed)
    train(request)
    config = json.loads((tmp_path / "run" / "ember" / "config.json").read_text())
    # 11 files, 2 held out for the preview (seeded, so this split is fixed), 2 unreadable
    assert config["trained"]["photos_trained"] + config["trained"]["photos_skipped"] == 9
    assert config["trained"]["photos_skipped"] >= 1


def test_joint_network_learns_each_movement(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    request = replace(_request(dataset, tmp_path / "run", steps=30), movements=("ember", "lagoon"), joint=True)
    (result,) = train(request)
    assert result.name == "joint" and result.folder == tmp_path / "run" / "joint"
    config = json.loads((result.folder / "config.json").read_text())
    assert config["model"]["movements"] == ["ember", "lagoon"] and config["model"]["conditional"] is True
    assert set(config["trained"]["paintings"]) == {"ember", "lagoon"}
    model = ModelFolder.read(result.folder).load_network()
    x = torch.rand(1, 3, 48, 48)
    ember, lagoon = model(x, torch.tensor([1.0, 0.0])), model(x, torch.tensor([0.0, 1.0]))
    # the palettes are warm (ember) and cool (lagoon): red minus blue tells them apart
    assert (ember[:, 0] - ember[:, 2]).mean() > (lagoon[:, 0] - lagoon[:, 2]).mean()
    preview = Image.open(result.folder / "preview.png")
    assert preview.width > 3 * 256  # photo + one column per movement
    with pytest.raises(UsageError, match="at least two"):
        train(replace(request, movements=("ember",), out=tmp_path / "other"))


def test_compiled_training_matches_eager(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    """``compile=True`` (torch.compile of the losses and their backward pass) takes the same steps.

    About 50 s here, nearly all of it compiling.
    """
    runs = {}
    for compile in (False, True):
        out = tmp_path / str(compile)
        train(_request(dataset, out, steps=2, compile=compile))
        runs[compile] = [float(r["total"]) for r in csv.DictReader((out / "ember" / "losses.csv").open())]
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-4)
    assert runs[True][1] == pytest.approx(runs[False][1], rel=2e-2)
