"""GPU inference at 1024x1024: fp32 eager against bf16 + channels_last, eager and compiled.

Milliseconds per image at batch 1 and batch 8 (median of --rounds, CUDA synchronised), and the
PSNR of each output against exact fp32's (TF32 off; the timed fp32 row keeps PyTorch's default,
TF32 convolutions, like the issue's baseline). Inputs are real photos cropped to the size when
--photos is given, else noise. Besides the library's own path, variants that may become its
defaults on CUDA:

* the first and last 9x9 convolutions widened from 3 to 8 channels with zeros, since tensor-core
  kernels want channel counts that are multiples of 8 (those two took 45% of the compiled time);
* the compiled network without the library's rewrite of those convolutions and of the
  upsampling (``artstyle.models.rewrite``), or with only the first;
* the -fast (half-width) model.

``--variants`` picks them by key (the table in ``main``). Ends with the CUDA kernels that take
the most time in one variant (``--profile``) at the largest batch. Meant for a CUDA GPU;
``--device cpu --size 64 --variants fp32,bf16,bf16-8ch`` checks the script itself anywhere.

    python benchmarks/gpu_inference.py --photos PHOTOS_DIR --json gpu_inference.json
"""

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from artstyle.engines.torch_engine import TorchStylizer as Stylizer
from artstyle.image import list_images, open_image, psnr, resize_short, to_tensor
from artstyle.model_folder import resolve_models
from artstyle.models.johnson import TransformerNet
from artstyle.models.rewrite import rewrite_for_gpu

Variant = Callable[[torch.Tensor], torch.Tensor]


class PadChannels(nn.Module):
    """A convolution whose input gets zero channels up to its (widened) weight's."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = self.conv.in_channels - x.shape[1]
        x = torch.cat([x, x.new_zeros(x.shape[0], extra, *x.shape[2:])], 1)
        return self.conv(x.contiguous(memory_format=torch.channels_last))


class FirstChannels(nn.Sequential):
    def __init__(self, conv: nn.Conv2d, keep: int) -> None:
        super().__init__(conv)
        self.keep = keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)[:, : self.keep]


def widened(conv: nn.Conv2d, in_channels: int, out_channels: int) -> nn.Conv2d:
    wide = nn.Conv2d(in_channels, out_channels, conv.kernel_size[0], conv.stride[0]).to(conv.weight)
    assert conv.bias is not None and wide.bias is not None
    with torch.no_grad():
        wide.weight.zero_()
        wide.bias.zero_()
        wide.weight[: conv.out_channels, : conv.in_channels] = conv.weight
        wide.bias[: conv.out_channels] = conv.bias
    return wide.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def replace_io_convs(stylizer: Stylizer, first: Callable[[nn.Conv2d], nn.Module],
                     last: Callable[[nn.Conv2d], nn.Module]) -> Stylizer:
    """A copy of ``stylizer`` whose first and last (9x9) convolutions are ``first(conv)`` and ``last(conv)``."""
    out = copy.copy(stylizer)
    net = copy.deepcopy(stylizer.network)
    assert isinstance(net, TransformerNet)
    layers = net.encoder[0][0], net.decoder[2]  # type: ignore[index]  # ConvLayers: (pad, conv)
    for layer, make in zip(layers, (first, last), strict=True):
        assert isinstance(layer, nn.Sequential) and isinstance(layer[1], nn.Conv2d)
        layer[1] = make(layer[1])
    out.network = net
    return out


def widen_io(stylizer: Stylizer, channels: int = 8) -> Stylizer:
    """A copy whose first and last 9x9 convolutions take and give ``channels`` (zeros beyond 3)."""
    return replace_io_convs(stylizer, lambda conv: PadChannels(widened(conv, channels, conv.out_channels)),
                            lambda conv: FirstChannels(widened(conv, conv.in_channels, channels), conv.out_channels))


def inputs(photos: Path | None, batch: int, size: int, device: torch.device) -> torch.Tensor:
    if photos is None:
        return torch.rand(batch, 3, size, size, device=device)
    crops = []
    for path in list_images(photos)[:batch]:  # centre crops, as the training benchmark's naive loop reads them
        image = resize_short(open_image(path), size)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        crops.append(to_tensor(image.crop((left, top, left + size, top + size)))[0])
    return torch.stack(crops).to(device)


def timed(fn: Variant, x: torch.Tensor, rounds: int) -> tuple[float, torch.Tensor]:
    with torch.inference_mode():
        out = fn(x)  # warm-up (and compilation, and cuDNN's tuning)
        times = []
        for _ in range(rounds):
            if x.is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = fn(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times), out.float()


def compiled(stylizer: Stylizer, mode: str | None = None, options: dict[str, bool] | None = None) -> Stylizer:
    """A copy whose network is compiled (a static graph per input shape)."""
    out = copy.copy(stylizer)
    out.network = torch.compile(stylizer.network, mode=mode, options=options, dynamic=False)  # type: ignore[assignment, arg-type]
    return out


def profile(fn: Variant, x: torch.Tensor, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as run_profile

    with torch.inference_mode():
        fn(x)
        torch.cuda.synchronize()
        with run_profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                fn(x)
            torch.cuda.synchronize()
    return str(prof.key_averages().table(sort_by="self_device_time_total", row_limit=rows, max_name_column_width=70))


DEFAULT_VARIANTS = "compiled,compiled-plain,compiled-block,fast-compiled,cudagraphs,fp32,tuned,autotune"
SLOW = {"tuned", "autotune"}  # minutes of tuning: after every other variant at every batch size


def write_json(path: str, device: torch.device, size: int, rows: list[dict[str, object]]) -> None:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    with open(path, "w") as f:
        json.dump({"device": gpu, "torch": torch.__version__, "size": size, "rows": rows}, f, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="baroque")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batches", default="8,1", help="batch 8 first: its target is the harder one")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--photos", type=Path, default=None, help="folder of photos to crop the inputs from")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help="comma-separated keys (see the code's table)")
    parser.add_argument("--profile", default="compiled", help="the variant whose CUDA kernels are listed")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    full, fast = resolve_models([args.model, f"{args.model}-fast"])

    def load(model: Any, precision: str, compile: bool = False) -> Stylizer:
        return Stylizer(model, device=device, precision=precision, compile=compile)

    def rewritten(upsampling: bool = True) -> Stylizer:
        """Uncompiled bf16, rewritten as ``compile=True`` rewrites it."""
        network = full.load_network()
        assert isinstance(network, TransformerNet)
        return Stylizer(full, rewrite_for_gpu(network, upsampling), device, "bf16")

    exact = {"full": load(full, "fp32"), "fast": load(fast, "fp32")}
    default = load(full, "bf16")
    fast_bf16 = load(fast, "bf16")
    # key: (label, network, how to build it, batch sizes it runs at (None: all)). Compiled
    # networks normalise with scale_shift_norm (see artstyle.models.layers.instance_norm); the
    # other norms this benchmark once compared (its lease 1 and 2 figures) needed a monkeypatched
    # library, and went with it.
    table: dict[str, tuple[str, str, Callable[[], Variant], set[int] | None]] = {
        "fp32": ("fp32 eager", "full", lambda: exact["full"].stylize_tensor, None),
        "bf16": ("bf16 channels_last", "full", lambda: default.stylize_tensor, None),
        "bf16-8ch": ("bf16 channels_last, 8-channel io", "full", lambda: widen_io(default).stylize_tensor, None),
        "fast-bf16": ("-fast bf16 channels_last", "fast", lambda: fast_bf16.stylize_tensor, None),
        "compiled": ("bf16 channels_last compiled (the library's)", "full",
                     lambda: load(full, "bf16", compile=True).stylize_tensor, None),
        "compiled-plain": ("bf16 channels_last compiled, not rewritten", "full",
                           lambda: compiled(default).stylize_tensor, None),
        "compiled-block": ("bf16 channels_last compiled, 9x9 rewritten only", "full",
                           lambda: compiled(rewritten(upsampling=False)).stylize_tensor, {8}),
        "compiled-8ch": ("bf16 channels_last compiled, 8-ch io", "full",
                         lambda: compiled(widen_io(default)).stylize_tensor, None),
        "fast-compiled": ("-fast bf16 channels_last compiled", "fast",
                          lambda: load(fast, "bf16", compile=True).stylize_tensor, None),
        # CUDA graphs save the launch costs, which matter at batch 1. The tuned variants take
        # minutes to compile, so they run after all the others (SLOW).
        "cudagraphs": ("bf16 channels_last compiled + CUDA graphs", "full",
                       lambda: compiled(rewritten(), "reduce-overhead").stylize_tensor, None),
        "tuned": ("bf16 channels_last compiled, coordinate descent tuning", "full",
                  lambda: compiled(rewritten(), options={"coordinate_descent_tuning": True}).stylize_tensor, None),
        "autotune": ("bf16 channels_last max-autotune", "full",
                     lambda: compiled(rewritten(), "max-autotune-no-cudagraphs").stylize_tensor, {8}),
    }
    unknown = set(args.variants.split(",")) - set(table)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(table)}")
    variants = {key: table[key] for key in args.variants.split(",")}
    built: dict[str, Variant] = {}
    # Every variant compiles the same forward function: past the default 8 graphs dynamo would
    # run the later ones uncompiled, without an error.
    torch._dynamo.config.recompile_limit = 64
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: tune each convolution once
    batches = [int(b) for b in args.batches.split(",")]
    jobs = [(batch, key) for slow in (False, True) for batch in batches for key, (*_, only) in variants.items()
            if (key in SLOW) == slow and (only is None or batch in only)]
    data: dict[int, tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}
    rows = []
    for batch, key in jobs:
        name, net, build, _ = variants[key]
        if batch not in data:
            x = inputs(args.photos, batch, args.size, device)
            torch.backends.cudnn.allow_tf32 = False
            with torch.inference_mode():
                data[batch] = x, {n: stylizer.stylize_tensor(x).float() for n, stylizer in exact.items()}
            torch.backends.cudnn.allow_tf32 = True
        x, references = data[batch]
        try:
            if key not in built:
                built[key] = build()
            seconds, out = timed(built[key], x, args.rounds)
        except Exception as err:  # one failing variant must not lose the others' figures
            print(f"{name} at batch {batch} failed: {type(err).__name__}: {err}")
            continue
        rows.append({"batch": batch, "variant": name, "ms_per_batch": round(1000 * seconds, 3),
                     "ms_per_image": round(1000 * seconds / batch, 3), "images_per_s": round(batch / seconds, 1),
                     "psnr_vs_fp32_db": round(psnr(out, references[net]), 1)})
        print(f"batch {batch}: {name}: {1000 * seconds / batch:.2f} ms/image, "
              f"{rows[-1]['psnr_vs_fp32_db']} dB", flush=True)
        if args.json:  # after every row: a run stopped at its time limit keeps what it measured
            write_json(args.json, device, args.size, rows)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{args.size}x{args.size}, {gpu}, torch {torch.__version__}, median of {args.rounds}, "
          "cudnn.benchmark on; PSNR against exact fp32 (TF32 off) of the same network")
    print(f"{'batch':>5}  {'variant':<56}{'ms/batch':>10}{'ms/img':>9}{'img/s':>9}{'PSNR dB':>9}")
    for r in rows:
        print(f"{r['batch']:>5}  {r['variant']:<56}{r['ms_per_batch']:>10.2f}{r['ms_per_image']:>9.2f}"
              f"{r['images_per_s']:>9.1f}{r['psnr_vs_fp32_db']:>9.1f}")
    if device.type == "cuda" and args.profile in built:
        batch = max(batches)
        print(f"\nCUDA kernels of {variants[args.profile][0]}, batch {batch}, 3 runs:")
        try:
            print(profile(built[args.profile], inputs(args.photos, batch, args.size, device)))
        except Exception as err:
            print(f"profile failed: {type(err).__name__}: {err}")

if __name__ == "__main__":
    main()
