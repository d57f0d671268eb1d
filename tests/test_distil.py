"""Distillation: a student network learns to paint what a trained (tiny) teacher paints."""

from pathlib import Path

import pytest
import torch

from artstyle.cli import main
from artstyle.config import TrainConfig
from artstyle.errors import TrainingInterrupted, UsageError
from artstyle.model_folder import ModelFolder
from artstyle.training import distil as distil_module
from artstyle.training.checkpoint import load_checkpoint
from artstyle.training.data import Skipped, list_photos, load_resized
from artstyle.training.distil import DistilRequest, distil, distillation_losses
from artstyle.training.vgg import load_vgg19
from conftest import interrupted_on_call

pytestmark = pytest.mark.slow


def _request(teacher: Path, photos: Path, out: Path, steps: int = 4, feature_weight: float = 1.0,
             **kwargs: object) -> DistilRequest:
    return DistilRequest(teacher=teacher, photos=(photos,), out=out, channels=4, residual_blocks=1, image_size=48,
                         preview_photos=2, feature_weight=feature_weight, device=torch.device("cpu"),
                         train=TrainConfig(steps=steps, batch_size=2, lr=1e-2, seed=0, precision="fp32",
                                           checkpoint_every=2, preview_every=3, log_every=1),
                         **kwargs)  # type: ignore[arg-type]


def test_losses_are_zero_for_the_teacher_own_output_and_match_a_hand_computation() -> None:
    vgg = load_vgg19("oxford", last_layer="relu3_1")
    wanted = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    same = distillation_losses(wanted.clone(), wanted, vgg, pixel_weight=10.0, feature_weight=1.0)
    assert same["total"].item() == pytest.approx(0.0, abs=1e-6)
    off = (wanted + 0.1).clamp(0, 1)
    losses = distillation_losses(off, wanted, vgg, pixel_weight=10.0, feature_weight=0.0)
    assert losses["pixel"].item() == pytest.approx(10.0 * (off - wanted).abs().mean().item(), rel=1e-5)
    assert set(losses) == {"pixel", "features", "total"}
    losses = distillation_losses(off, wanted, vgg, pixel_weight=10.0, feature_weight=2.0)
    layers = [k for k in losses if k.startswith("features/")]
    assert layers == ["features/relu1_1", "features/relu2_1", "features/relu3_1"]
    assert losses["total"].item() == pytest.approx(losses["pixel"].item() + sum(losses[k].item() for k in layers),
                                                   rel=1e-5)
    assert all(losses[k].item() > 0 for k in layers)


def _distance_to_teacher(student: ModelFolder, teacher: ModelFolder, photos: Path) -> float:
    images = [p.float() / 255 for p in load_resized(list_photos([photos]), 48, Skipped())]
    a, b = teacher.load_network(), student.load_network()
    with torch.no_grad():
        return sum((a(x[None]) - b(x[None])).abs().mean().item() for x in images) / len(images)


@pytest.mark.parametrize("arch", ["johnson", "halfres"])
def test_the_student_learns_to_paint_like_its_teacher(trained_run: Path, dataset: tuple[Path, Path],
                                                      tmp_path: Path, arch: str) -> None:
    _, photos = dataset
    teacher = ModelFolder.read(trained_run / "ember")
    before = distil(_request(trained_run / "ember", photos, tmp_path / "before", steps=1, feature_weight=0.0,
                             arch=arch))
    after = distil(_request(trained_run / "ember", photos, tmp_path / "after", steps=60, feature_weight=0.0,
                            arch=arch))
    student = ModelFolder.read(after.folder)
    assert student.config.model.arch == arch and type(student.load_network()).__name__ == {
        "johnson": "TransformerNet", "halfres": "HalfResNet"}[arch]
    assert _distance_to_teacher(student, teacher, photos) < 0.7 * _distance_to_teacher(
        ModelFolder.read(before.folder), teacher, photos)
    assert student.name == "ember-fast"
    assert student.config.model.channels == 4 and student.config.model.residual_blocks == 1
    assert student.movements == teacher.movements
    assert student.config.loss == teacher.config.loss  # the look's objective, inherited
    assert student.trained is not None and teacher.trained is not None
    assert student.trained.distilled is not None and student.trained.distilled.teacher == "ember"
    assert student.trained.distilled.teacher_channels == teacher.config.model.channels
    assert student.trained.paintings == teacher.trained.paintings
    for name in ("losses.csv", "loss.png", "preview.png", "checkpoint.pt"):
        assert (after.folder / name).is_file(), name
    history = load_checkpoint(after.folder / "checkpoint.pt")["history"]
    assert history[-1]["total"] < history[0]["total"]


def test_ctrl_c_saves_and_resume_continues_exactly(trained_run: Path, dataset: tuple[Path, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, photos = dataset
    teacher = trained_run / "ember"
    distil(_request(teacher, photos, tmp_path / "straight", steps=5))
    original = distil_module.distillation_losses
    monkeypatch.setattr(distil_module, "distillation_losses", interrupted_on_call(original, 3))
    with pytest.raises(TrainingInterrupted, match="saved at step 2 of 5.*--resume"):
        distil(_request(teacher, photos, tmp_path / "run", steps=5))
    monkeypatch.setattr(distil_module, "distillation_losses", original)
    with pytest.raises(UsageError, match="other settings"):
        distil(_request(teacher, photos, tmp_path / "run", steps=5, feature_weight=0.5, resume=True))
    interrupted = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["seconds"]
    result = distil(_request(teacher, photos, tmp_path / "run", steps=5, resume=True))
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert b["step"] == 5
    # the published time counts both processes' parts
    assert 0 < interrupted < b["seconds"] and result.seconds == pytest.approx(b["seconds"], abs=0.1)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [r["total"] for r in a["history"]] == [r["total"] for r in b["history"]]


def test_a_joint_teacher_gives_a_joint_student(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    from artstyle.training.loop import TrainRequest, train
    from conftest import tiny_config

    paintings, photos = dataset
    train(TrainRequest(paintings=paintings, photos=photos, out=tmp_path / "run", config=tiny_config(steps=2),
                       device=torch.device("cpu"), joint=True))
    result = distil(_request(tmp_path / "run" / "joint", photos, tmp_path / "student", steps=3))
    student = ModelFolder.read(result.folder)
    assert student.conditional and student.movements == ("ember", "lagoon")
    network = student.load_network()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ember, lagoon = (network(x, torch.tensor([1.0, 0.0])), network(x, torch.tensor([0.0, 1.0])))
    assert not torch.equal(ember, lagoon)


def test_cli_distils_and_refuses_what_it_cannot_do(trained_run: Path, dataset: tuple[Path, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _, photos = dataset
    out = tmp_path / "student"
    args = ["distil", str(trained_run / "ember"), "--photos", str(photos), "--out", str(out), "--steps", "2",
            "--channels", "4", "--residual-blocks", "1", "--image-size", "48", "--batch-size", "2", "-q"]
    assert main(args) == 0
    assert ModelFolder.read(out).config.model.channels == 4
    assert main(args) != 0  # an existing student is not replaced silently
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    assert main(["distil", str(tmp_path / "nothing"), "--photos", str(photos), "--out", str(tmp_path / "x"), "-q"]) != 0
    assert "no such model folder" in capsys.readouterr().err
    assert main([*args[:-1], "--out", str(tmp_path / "y"), "--resume", "-q"]) != 0
    assert "no checkpoint" in capsys.readouterr().err
