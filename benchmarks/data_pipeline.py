"""Training's photo loaders on folders of 1k, 10k and 50k photos: peak memory, time to the first
step and steady images/s, each run a whole process.

The folders are made from the shared photos (``../shared/data/photos``): random 640x480 crops,
re-encoded as JPEG under new names in a temporary folder (the 1k and 10k folders link to the first
photos of the 50k one). Every run trains baroque (the shared paintings) with the default network
at 256 px for a few steps; its style target is computed once, before the timed runs, and read from
the cache by them. Memory is the proportional set size (PSS) of the training process (and of any
child processes), sampled every 0.1 s.

    python benchmarks/data_pipeline.py --json benchmarks/data_pipeline.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def make_photo(job: tuple[Path, Path, int]) -> None:
    from PIL import Image

    source, target, seed = job
    rng = random.Random(seed)
    with Image.open(source) as opened:
        im = opened.convert("RGB")
    scale = max(640 / im.width, 480 / im.height) * rng.uniform(1.0, 1.5)
    im = im.resize((max(640, round(im.width * scale)), max(480, round(im.height * scale))))
    left, top = rng.randrange(im.width - 639), rng.randrange(im.height - 479)
    im.crop((left, top, left + 640, top + 480)).save(target, quality=90)


def make_folders(base: Path, sizes: list[int]) -> dict[int, Path]:
    """``{n: folder of n photos}``; made once, reused by later runs."""
    sources = sorted(p for p in (SHARED / "photos").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    full = base / f"photos_{max(sizes)}"
    full.mkdir(parents=True, exist_ok=True)
    jobs = [(sources[i % len(sources)], full / f"{i:06d}.jpg", i) for i in range(max(sizes))
            if not (full / f"{i:06d}.jpg").exists()]
    if jobs:
        print(f"making {len(jobs)} photos in {full} ...", flush=True)
        with ProcessPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(make_photo, jobs, chunksize=256))
    folders = {max(sizes): full}
    for n in sizes:
        if n == max(sizes):
            continue
        folder = base / f"photos_{n}"
        folder.mkdir(exist_ok=True)
        for i in range(n):
            link = folder / f"{i:06d}.jpg"
            if not link.exists():
                link.symlink_to(full / f"{i:06d}.jpg")
        folders[n] = folder
    return folders


def child(args: argparse.Namespace) -> None:
    """One training run; prints when each step ended (time.time())."""
    import torch

    from artstyle.config import DataConfig, RunConfig, TrainConfig
    from artstyle.training.loop import TrainRequest, train

    torch.set_num_threads(args.threads)
    ends: list[float] = []

    class Progress:
        def __init__(self, desc: str = "", **_: object) -> None:
            self.training = desc == "baroque"

        def update(self, n: int = 1) -> None:
            if self.training:
                ends.append(time.time())

        def set_postfix_str(self, s: str) -> None:
            pass

        def close(self) -> None:
            pass

    config = RunConfig(data=DataConfig(image_size=256, photo_loader=args.loader, preview_photos=0, max_photos=10**6),
                       train=TrainConfig(steps=args.steps, batch_size=args.batch_size, precision="auto",
                                         checkpoint_every=10**6, preview_every=10**6))
    request = TrainRequest(paintings=SHARED / "paintings", photos=Path(args.photos), out=Path(args.out),
                           config=config, movements=("baroque",), cache_dir=Path(args.cache), overwrite=True,
                           workers=args.workers)
    train(request, progress=Progress)
    print(json.dumps({"step_ends": ends}))


def pss_of_tree(pid: int) -> int:
    """Proportional set size (bytes) of ``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def run(folder: Path, loader: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", "--photos", str(folder), "--loader", loader, "--steps",
           str(args.steps), "--batch-size", str(args.batch_size), "--workers", str(args.workers), "--out",
           str(work / "run"), "--cache", str(work / "cache"), "--threads", str(args.threads)]
    start = time.time()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, pss_of_tree(process.pid))
        time.sleep(0.1)
    out = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"run failed ({loader}, {folder}): exit {process.returncode}")
    ends = json.loads(out.strip().splitlines()[-1])["step_ends"]
    steady = (len(ends) - 3) * args.batch_size / (ends[-1] - ends[2]) if len(ends) > 3 else float("nan")
    return {"photos": len(os.listdir(folder)), "loader": loader, "peak_memory_gib": round(peak / 2**30, 3),
            "first_step_s": round(ends[0] - start, 1), "steady_images_per_s": round(steady, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--photos", help=argparse.SUPPRESS)
    parser.add_argument("--loader", default="stream", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="1000,10000,50000", help="photos per folder, comma-separated")
    parser.add_argument("--memory-up-to", type=int, default=10000,
                        help="largest folder also run with the in-memory loader (it decodes every photo first)")
    parser.add_argument("--steps", type=int, default=12, help="training steps per run")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="photo-decoding threads of the stream loader")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="PyTorch threads of the training process")
    parser.add_argument("--base", default=str(Path(tempfile.gettempdir()) / "artstyle-bench-photos"),
                        help="where the photo folders are made (and kept for later runs)")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    folders = make_folders(Path(args.base), sizes)
    with tempfile.TemporaryDirectory(prefix="artstyle-bench-") as tmp:
        work = Path(tmp)
        warm = argparse.Namespace(**{**vars(args), "steps": 1})
        run(folders[min(sizes)], "memory", warm, work)  # computes and caches the style target
        rows = []
        for n in sizes:
            for loader in (["memory"] if n <= args.memory_up_to else []) + ["stream"]:
                row = run(folders[n], loader, args, work)
                rows.append(row)
                print(row, flush=True)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    report = {"cpu": cpu, "cores": os.cpu_count(), "steps": args.steps, "batch_size": args.batch_size,
              "workers": args.workers, "threads": args.threads, "rows": rows}
    print("| photos | loader | peak memory GiB | first step s | steady images/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['photos']} | {r['loader']} | {r['peak_memory_gib']} | {r['first_step_s']} | "
              f"{r['steady_images_per_s']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
