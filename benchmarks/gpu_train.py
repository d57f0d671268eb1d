"""Training throughput: a naive loop against ``artstyle train``, end to end, same network and loss.

* naive: the reference recipe (pytorch/examples fast_neural_style): fp32, eager, batch 4, 256 px,
  every photo decoded with PIL at every step by a DataLoader without workers;
* artstyle: ``artstyle.training.loop.train`` as ``artstyle train`` runs it: photos decoded once and kept in
  memory, crops sent to the device as uint8 from pinned memory, bf16 autocast (``--precision
  auto``), Gram targets computed once (cached), no wait for the GPU between steps; at batch 4,
  and at larger batches, one of them also compiled (the compile time falls in its setup seconds).

The naive loop and the large batches run twice, the second time in reverse order; the table gives
the median of each loop's runs and its ratio to the naive loop's median.

Both use the Johnson network, the Oxford VGG-19 and artstyle's losses. Images per second over the
steps after the first --warmup (data loading included: that is where the naive loop loses), and
the seconds each loop needs before its first step (loading, decoding, targets; a short artstyle
run first fills the style-target cache, so every measured run finds its target there, as on any
second run).
Meant for a CUDA GPU; ``--device cpu --steps 6 --warmup 2 --size 64`` checks the script anywhere.

    python benchmarks/gpu_train.py --paintings PAINTINGS_DIR --photos PHOTOS_DIR --movement baroque
"""

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from artstyle.config import DataConfig, RunConfig, TrainConfig
from artstyle.image import list_images, open_image, resize_short, to_tensor
from artstyle.models import build_model
from artstyle.training.loop import TrainRequest, train
from artstyle.training.losses import gram_matrix, perceptual_losses
from artstyle.training.vgg import load_vgg19


class PhotoFolder(Dataset[torch.Tensor]):
    """Decode, resize and centre-crop a photo on every access, as the reference recipe does."""

    def __init__(self, folder: Path, size: int) -> None:
        self.paths, self.size = list_images(folder), size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = resize_short(open_image(self.paths[i]), self.size)
        left, top = (image.width - self.size) // 2, (image.height - self.size) // 2
        return to_tensor(image.crop((left, top, left + self.size, top + self.size)))[0]


class Clock:
    """A progress bar that only notes when each step ended."""

    def __init__(self, **_: object) -> None:
        self.ends: list[float] = []

    def update(self, n: int = 1) -> None:
        self.ends.append(time.perf_counter())

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def rates(start: float, ends: list[float], batch: int, warmup: int) -> tuple[float, float]:
    """(images per second after the warm-up steps, seconds before the first step ended)."""
    return batch * (len(ends) - warmup) / (ends[-1] - ends[warmup - 1]), ends[0] - start


def naive(args: argparse.Namespace, device: torch.device, config: RunConfig) -> tuple[float, float]:
    start = time.perf_counter()
    ends = []
    vgg = load_vgg19().to(device)
    style_image = to_tensor(resize_short(open_image(list_images(args.paintings / args.movement)[0]),
                                         args.size)).to(device)
    with torch.no_grad():
        grams = {k: gram_matrix(v) for k, v in vgg(style_image, config.loss.style_layers).items()}
    model = build_model(config.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(PhotoFolder(args.photos, args.size), batch_size=4, shuffle=True, num_workers=0,
                        drop_last=True)
    step = 0
    while step < args.steps:
        for batch in loader:
            batch = batch.to(device)
            output = model(batch, None)
            features = vgg(output, [*config.loss.style_layers, config.loss.content_layer])
            with torch.no_grad():
                content = vgg(batch, [config.loss.content_layer])
            losses = perceptual_losses(output, features, content, grams, config.loss)
            optimizer.zero_grad()
            losses["total"].backward()
            optimizer.step()
            losses["total"].item()  # the recipe logs its losses every step
            ends.append(time.perf_counter())
            step += 1
            if step == args.steps:
                break
    return rates(start, ends, 4, args.warmup)


def ours(args: argparse.Namespace, device: torch.device, config: RunConfig, cache: Path, batch: int,
         compile: bool = False) -> tuple[float, float]:
    config = replace(config, train=replace(config.train, batch_size=batch))
    with tempfile.TemporaryDirectory() as out:
        request = TrainRequest(paintings=args.paintings, photos=args.photos, out=Path(out), config=config,
                               movements=(args.movement,), device=device, overwrite=True, cache_dir=cache,
                               compile=compile)
        clocks: list[Clock] = []

        def progress(**kwargs: object) -> Clock:
            clocks.append(Clock())
            return clocks[-1]

        start = time.perf_counter()
        train(request, progress)  # type: ignore[arg-type]
        return rates(start, clocks[-1].ends, batch, args.warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paintings", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--movement", default="baroque")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20, help="steps left out of the rate")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--large-batch", type=int, default=16)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not 0 < args.warmup < args.steps:
        parser.error(f"--warmup must be between 0 and --steps ({args.steps}), exclusive")
    device = torch.device(args.device)
    config = RunConfig(data=DataConfig(image_size=args.size, preview_photos=1),
                       train=TrainConfig(steps=args.steps, checkpoint_every=10 ** 9, preview_every=10 ** 9))
    cache = Path(tempfile.mkdtemp())
    with tempfile.TemporaryDirectory() as out:  # fills the style-target cache for every run below
        train(TrainRequest(paintings=args.paintings, photos=args.photos, out=Path(out), device=device,
                           config=replace(config, train=replace(config.train, steps=1)), movements=(args.movement,),
                           cache_dir=cache))
    large = args.large_batch
    loops = {"naive (fp32, batch 4, PIL decode per step)": lambda: naive(args, device, config),
             "artstyle train, batch 4": lambda: ours(args, device, config, cache, 4),
             f"artstyle train, batch {large}": lambda: ours(args, device, config, cache, large),
             f"artstyle train, batch {2 * large}": lambda: ours(args, device, config, cache, 2 * large),
             f"artstyle train, batch {large}, compiled": lambda: ours(args, device, config, cache, large,
                                                                      compile=True)}
    # The ratios are the target: the naive loop and the large batches run again in reverse order,
    # so that neither side always runs first (warmer caches, clocks) or last; medians are reported.
    names = list(loops)
    order = names + [name for name in reversed(names[:4]) if name != "artstyle train, batch 4"]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    runs: dict[str, list[tuple[float, float]]] = {}
    for name in order:
        try:
            rate, setup = loops[name]()
        except Exception as err:  # one failing loop must not lose the others' figures
            print(f"{name} failed: {type(err).__name__}: {err}")
            continue
        print(f"{name}: {rate:.1f} images/s, setup {setup:.1f} s", flush=True)
        runs.setdefault(name, []).append((rate, setup))
        if args.json:  # after every loop: a run stopped at its time limit keeps what it measured
            with open(args.json, "w") as f:
                json.dump({"device": device_name, "torch": torch.__version__, "order": order,
                           "rows": table(runs, names[0])}, f, indent=2)
    print(f"{args.size} px crops, {args.steps} steps ({args.warmup} warm-up), {device_name}, "
          f"torch {torch.__version__}; artstyle: precision auto; median of the runs, in the order {order}")
    for row in table(runs, names[0]):
        print(f"{row['loop']:<46}{row['images_per_s']:>9} img/s {row['speedup']:>6}x  setup {row['setup_s']} s"
              f"  runs {row['runs']}")


def table(runs: dict[str, list[tuple[float, float]]], baseline: str) -> list[dict[str, object]]:
    """One row per loop: the median images/s of its runs, and its ratio to the baseline's median."""
    medians = {name: statistics.median(rate for rate, _ in results) for name, results in runs.items()}
    return [{"loop": name, "images_per_s": round(medians[name], 1),
             "runs": [round(rate, 1) for rate, _ in results],
             "setup_s": round(statistics.median(setup for _, setup in results), 1),
             "speedup": round(medians[name] / medians.get(baseline, medians[name]), 2)}
            for name, results in runs.items()]

if __name__ == "__main__":
    main()
