"""The OpenVINO engine: a one-movement model compiled for this CPU, run without starting PyTorch.

It paints whole images with the model's own movement at full strength; the choice in
:func:`artstyle.engines.load` hands everything else (tiles, blends, strength, colour keeping) to
PyTorch. The first use of a model exports it to ONNX once, into the cache; the first use of each
input shape saves the export reshaped to it as an IR file (for photos, with the conversion from and
to 8-bit pixels inside), and OpenVINO's own compile cache then spares recompiling it in every
process. The networks run through OpenVINO's C API (:mod:`.openvino_c`): a process that paints a
photo whose IR is saved imports neither numpy nor the openvino Python package.

Precision: bf16 where the CPU has AMX; elsewhere (AVX-512 BF16 without AMX, as on AMD's recent EPYCs,
and AVX2 laptops and desktops) int8 convolutions, from a copy of the export quantised once with ONNX Runtime's
static quantisation, calibrated on the bundled sample photo (several views of it). The first four
convolutions (the encoder's three and the first residual one; in a half-resolution network the
encoder's two and the first residual block's two) stay in floating point: the first
sees the photo before any normalisation, and quantising its output costs about 10 dB of PSNR; on
dark photos with a light in them (deep water lit from above) the networks amplify the rounding of
the next ones, each kept float gaining about 3 dB (such a photo: 31 dB against fp32 with two
float, 38 with four). They are 17% of the full network's arithmetic and a quarter of the
``-fast`` one's: on an AVX2 CPU the full network took 1% longer with them float, the ``-fast`` one
3%.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .. import __version__
from ..config import INFERENCE_PRECISIONS, default_cache_dir
from ..errors import ArtstyleError, ModelError, UsageError
from ..image import atomic_write, open_image, resize_for_painting, resize_max, to_array
from ..model_folder import CONFIG_FILE, MODEL_FILE, ModelFolder
from . import openvino_c
from .base import Movement, StylizerBase, is_plain

if TYPE_CHECKING:
    import numpy as np
    import torch

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # part of the cache key with artstyle's version: bump when the exported graph changes
INT8_VERSION = 3  # part of the int8 copy's cache key: bump when the calibration or the quantisation changes
FLOAT_CONVOLUTIONS = 4  # the int8 copy keeps its first convolutions in floating point (see above)
COMPILED_SHAPES = 4  # compiled networks kept in memory per model, one per input shape
PIXELS_VERSION = 1  # part of the names of IR files that take and give pixels: bump when their conversions change
COMPILE_CACHE_ENTRIES = 32  # compiled networks kept on disk (one per model and shape); older ones are deleted
PIXELS, ARRAYS = "pixels", "arrays"  # what a compiled network takes and gives: see _network_for
OPENVINO_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # artstyle's names -> OpenVINO's
# oneDNN's instruction-set caps (ONEDNN_MAX_CPU_ISA, which OpenVINO's CPU plugin obeys) under which bf16 is native
BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512",
             "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "ALL", "DEFAULT")
AMX_ISAS = ("AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "ALL", "DEFAULT")


def import_openvino() -> Any:
    """The openvino module, imported without its model converter.

    openvino's ``__init__`` imports ``openvino.tools.ovc`` (the converter, and with it telemetry)
    inside a ``try: ... except ImportError``: about 60 ms of every ``artstyle stylize`` that painting
    never uses. A ``None`` entry in ``sys.modules`` makes that import fail at once; it is removed
    right after, so a later ``import openvino.tools.ovc`` works as usual. Remove this when openvino
    imports its converter lazily.
    """
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    skipped = sys.modules.setdefault("openvino.tools.ovc", None) is None  # type: ignore[arg-type]
    try:
        import openvino
    finally:
        if skipped and sys.modules.get("openvino.tools.ovc", 0) is None:
            del sys.modules["openvino.tools.ovc"]
    return openvino


def openvino_available() -> bool:
    """Whether the engine can run here: OpenVINO, and onnx for the one-time export (artstyle[fast])."""
    return all(importlib.util.find_spec(m) is not None for m in ("openvino", "onnx"))


def gpu_may_exist() -> bool:
    """Whether PyTorch might find a GPU here (an NVIDIA or AMD driver, Apple silicon), judged without
    importing PyTorch."""
    return (Path("/proc/driver/nvidia/version").exists() or Path("/dev/kfd").exists()
            or (sys.platform == "darwin" and platform.machine() == "arm64"))


@functools.cache
def _cpu_flags() -> str | None:
    """The text of /proc/cpuinfo, read once per process; None where there is none (not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def _allowed_by_cap(isas: tuple[str, ...]) -> bool:
    """Whether ONEDNN_MAX_CPU_ISA, if set, allows one of ``isas``."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return not cap or cap in isas


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX-512 BF16), judged without PyTorch; a cap
    set with ONEDNN_MAX_CPU_ISA below those counts as no."""
    if not _allowed_by_cap(BF16_ISAS):
        return False
    flags = _cpu_flags()
    if flags is None:  # not Linux: ask OpenVINO
        try:
            return "BF16" in import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        except Exception:  # no openvino (its engine then says so), or a plugin that cannot tell
            return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX (bf16 matrix tiles), read from /proc/cpuinfo; a cap set with
    ONEDNN_MAX_CPU_ISA below AMX counts as no, and so does a system without /proc/cpuinfo."""
    return _allowed_by_cap(AMX_ISAS) and " amx_bf16" in (_cpu_flags() or "")


def resolve_precision(precision: str) -> str:
    """``auto``: bf16 where the CPU has AMX, else int8 (bf16 or fp32 without onnxruntime, which the
    one-time quantisation needs).

    With AMX, int8 is no quicker than bf16 and further from fp32. With AVX-512 BF16 but no AMX
    (a Zen 5 EPYC), int8 through VNNI was 1.2 to 1.5 times quicker than bf16 (benchmarks/README.md),
    and on AVX2 alone several times quicker than fp32.
    """
    if precision not in INFERENCE_PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of: {', '.join(INFERENCE_PRECISIONS)}")
    if precision != "auto":
        return precision
    if cpu_has_amx():
        return "bf16"
    if importlib.util.find_spec("onnxruntime") is not None:
        return "int8"
    return "bf16" if cpu_has_bf16() else "fp32"


def cached_onnx(folder: Path, cache_dir: Path | None = None) -> Path:
    """The ONNX export of a model folder: from the cache, or made now and cached."""
    digest = hashlib.sha256(f"artstyle-{__version__}-onnx-{EXPORT_VERSION}".encode())
    for name in (MODEL_FILE, CONFIG_FILE):
        digest.update((folder / name).read_bytes())
    path = (cache_dir or default_cache_dir()) / "onnx" / f"{digest.hexdigest()[:32]}.onnx"
    if not path.is_file():
        from ..export import onnx_bytes

        log.info("exporting %s to ONNX for OpenVINO (once; cached in %s)", folder, path.parent)
        data = onnx_bytes(folder)
        atomic_write(path, lambda f: f.write(data))
    return path


def cached_int8_onnx(folder: Path, cache_dir: Path | None = None) -> Path:
    """The int8 copy of a model folder's ONNX export: from the cache, or quantised now and cached."""
    source = cached_onnx(folder, cache_dir)
    path = source.with_name(f"{source.stem}-int8-{INT8_VERSION}.onnx")
    if not path.is_file():
        log.info("quantising %s to int8 for this CPU (once; cached in %s)", folder, path.parent)
        try:
            data = quantized_onnx(source)
        except ArtstyleError:
            raise
        except Exception as err:  # onnxruntime's quantiser can fail in many ways; painting need not
            raise ArtstyleError(f"could not quantise {folder} to int8 ({type(err).__name__}: {err}); "
                                "use --precision fp32") from None
        atomic_write(path, lambda f: f.write(data))
    return path


def calibration_views() -> list[np.ndarray]:
    """What int8 calibration runs the network on: the bundled sample photo (a real photo: sky, trees,
    stone) at three sizes, its four quarters at full resolution, mirrored, grey, dark and pale."""
    from ..demo import sample_photo_path

    photo = open_image(sample_photo_path())
    views = [resize_max(photo, side) for side in (256, 512, 768)]
    large = resize_max(photo, 1024)
    w, h = large.size
    views += [large.crop((x, y, x + w // 2, y + h // 2)) for x in (0, w // 2) for y in (0, h // 2)]
    middle = views[1]
    views += [middle.transpose(Image.Transpose.FLIP_LEFT_RIGHT), middle.convert("L").convert("RGB"),
              Image.eval(middle, lambda v: v * 2 // 5), Image.eval(middle, lambda v: 255 - (255 - v) * 2 // 5)]
    return [to_array(view) for view in views]


def quantized_onnx(source: Path) -> bytes:
    """``source`` (an fp32 export) with its convolutions but the first four in int8 (weights per channel,
    activations per tensor, min-max calibration), as QDQ ONNX that OpenVINO runs in int8."""
    try:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError:
        raise ArtstyleError("int8 needs onnxruntime for its one-time calibration: pip install 'artstyle[fast]', "
                            "or use --precision fp32") from None

    class Views(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.views = iter(calibration_views())

        def get_next(self) -> dict[str, np.ndarray] | None:
            view = next(self.views, None)
            return None if view is None else {"image": view}

    convolutions = [n.name for n in onnx.load(str(source)).graph.node if n.op_type == "Conv"]
    quiet = logging.Filter("artstyle")  # ONNX Runtime's quantiser gives advice on the root logger: not for users
    logging.getLogger().addFilter(quiet)
    try:
        with tempfile.TemporaryDirectory(prefix="artstyle-int8-") as tmp:
            out = Path(tmp) / "int8.onnx"
            quantize_static(str(source), str(out), Views(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv"], nodes_to_exclude=convolutions[:FLOAT_CONVOLUTIONS])
            return out.read_bytes()
    finally:
        logging.getLogger().removeFilter(quiet)


class OpenVinoStylizer(StylizerBase):
    """A one-movement model folder compiled by OpenVINO for this CPU.

    Each input shape's network is saved once as an OpenVINO IR file in the cache and compiled from
    its path, so a later process finds it in OpenVINO's compile cache without reading the export;
    networks run through OpenVINO's C API (:mod:`.openvino_c`), so painting a photo whose IR is
    saved imports neither numpy nor the openvino Python package. Pictures go in and come out as
    8-bit RGB, converted inside the network.

    Args:
        model: the model folder (not a joint model, not an ``.onnx`` file).
        precision: ``auto``: bf16 on CPUs with AMX, int8 convolutions elsewhere (see
            the module's docstring); or int8, fp32, bf16, fp16.
        cache_dir: where the export and the compiled networks are kept (default: the cache).
    """

    engine = "openvino"

    def __init__(self, model: ModelFolder, precision: str = "auto", cache_dir: Path | None = None) -> None:
        super().__init__(model)
        precision = resolve_precision(precision)
        if model.is_onnx or model.path is None:
            raise UsageError(f"the OpenVINO engine takes a model folder (it makes its own export), not "
                             f"{model.path.name if model.path else model.name}; give the folder, or use "
                             "--engine torch to run the .onnx file with ONNX Runtime")
        if model.conditional:
            raise UsageError(f"{model.path} is a joint model: the OpenVINO engine runs one-movement models; "
                             "use --engine torch")
        if importlib.util.find_spec("openvino") is None:
            raise ArtstyleError("the OpenVINO engine needs openvino: pip install 'artstyle[fast]'")
        self.precision = precision
        cache_dir = cache_dir or default_cache_dir()
        self._compile_cache = cache_dir / "openvino"
        try:
            self._compile_cache.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ArtstyleError(f"its cache folder {cache_dir} cannot be written ({err.strerror or err}); "
                                "set ARTSTYLE_CACHE to a folder you may write to") from None
        # int8: the layers left in floating point run in bf16 where it is native, else in fp32
        rest = precision if precision != "int8" else "bf16" if cpu_has_bf16() else "fp32"
        self._properties = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION[rest]}
        self._export = cached_int8_onnx(model.path, cache_dir) if precision == "int8" else cached_onnx(model.path,
                                                                                                     cache_dir)
        self._shaped = cache_dir / "openvino-ir"  # the export reshaped to each input shape, as OpenVINO IR
        self._core: Any = None  # openvino's Python Core: only for making IR files, and where the C API cannot run
        self._source: Any = None  # the export, read only when a shape has no IR yet
        self._compiled: OrderedDict[tuple[str, tuple[int, ...]], Any] = OrderedDict()  # (kind, shape) -> network
        self._lock = threading.Lock()

    def check(self, movement: Movement = None, strength: float = 1.0, preserve_color: bool = False,
              tile: int | None = None) -> None:
        super().check(movement, strength, preserve_color, tile)
        if not is_plain(movement, strength, preserve_color, tile):
            raise UsageError("--engine openvino paints whole images at full strength: drop --movement, "
                             "--strength, --preserve-color and --tile, or use --engine torch")

    def _network_for(self, kind: str, shape: tuple[int, ...]) -> Any:
        """The network compiled for one kind of input (``PIXELS``: (N, H, W, 3) 8-bit RGB, or
        ``ARRAYS``: (N, 3, H, W) float32 in [0, 1]) and one shape: OpenVINO runs a static shape
        faster than a dynamic one, and sooner on the first image."""
        with self._lock:
            key = (kind, shape)
            if key not in self._compiled:
                self._compiled[key] = self._compile(kind, shape)
                if len(self._compiled) > COMPILED_SHAPES:
                    self._compiled.popitem(last=False)
                _prune(self._compile_cache, COMPILE_CACHE_ENTRIES)
                _prune(self._shaped, 2 * COMPILE_CACHE_ENTRIES)  # an .xml and a .bin for each
            self._compiled.move_to_end(key)
            return self._compiled[key]

    def _compile(self, kind: str, shape: tuple[int, ...]) -> Any:
        """The network for (kind, shape), compiled from its IR file; a file that will not compile
        (damaged on disk) is made again from the export, once. ``ModelError`` if it still fails."""
        try:
            return self._compile_ir(kind, shape)
        except RuntimeError:  # OpenVINO's errors, its C API's included
            for stale in self._ir_files(kind, shape):
                stale.unlink(missing_ok=True)
            try:
                return self._compile_ir(kind, shape)
            except RuntimeError as err:
                lines = [line.strip() for line in str(err).splitlines() if line.strip()]
                raise ModelError(f"OpenVINO cannot compile {self.model.name} in {self.precision} for this CPU "
                                 f"({lines[-1] if lines else type(err).__name__}); use --precision fp32, or "
                                 "--engine torch") from None

    def _compile_ir(self, kind: str, shape: tuple[int, ...]) -> Any:
        element = "u8" if kind == PIXELS else "f32"
        ir = self._shaped_ir(kind, shape)
        if isinstance(ir, Path) and openvino_c.available():
            return openvino_c.CompiledNetwork(ir, self._properties, self._compile_cache, (element, shape),
                                              (element, shape))
        network = str(ir) if isinstance(ir, Path) else ir  # not saved (a full disk): from memory
        return _PythonNetwork(self._python_core().compile_model(network, "CPU", self._properties), element, shape)

    def _python_core(self) -> Any:
        if self._core is None:
            self._core = import_openvino().Core()
            self._core.set_property({"CACHE_DIR": str(self._compile_cache)})
        return self._core

    def _ir_files(self, kind: str, shape: tuple[int, ...]) -> tuple[Path, Path]:
        """The .xml and .bin of (kind, shape)'s IR file in the cache."""
        pixels = f"-pixels{PIXELS_VERSION}" if kind == PIXELS else ""
        xml = self._shaped / f"{self._export.stem}{pixels}-{'x'.join(map(str, shape))}.xml"
        return xml, xml.with_suffix(".bin")

    def _shaped_ir(self, kind: str, shape: tuple[int, ...]) -> Any:
        """The export reshaped to ``shape`` (and for ``PIXELS`` given its pixel conversions), as an
        IR file (.xml + .bin) in the cache: made now if missing. Where it cannot be written, the
        network itself (an openvino Model) instead of its path."""
        ir, weights = self._ir_files(kind, shape)
        if ir.exists() and weights.exists():
            for used in (ir, weights):  # the cache's pruning keeps the most recently used
                try:  # the access time only: OpenVINO's compile cache is keyed by the file's modification time
                    os.utime(used, ns=(time.time_ns(), used.stat().st_mtime_ns))
                except OSError:
                    pass  # a read-only cache is still read
            return ir
        if self._source is None:
            try:
                self._source = self._python_core().read_model(str(self._export))
            except Exception as err:
                raise ModelError(f"{self._export}: OpenVINO cannot read this cached export ({err}); "
                                 "delete it") from None
        network = self._source.clone()
        if kind == PIXELS:
            n, h, w, _ = shape
            network.reshape({"image": [n, 3, h, w]})
            network = with_pixel_conversions(network)
        else:
            network.reshape({"image": list(shape)})
        try:
            self._shaped.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(suffix=".xml", prefix=f".{ir.stem}.", dir=self._shaped)
            os.close(fd)
        except OSError as err:
            log.debug("not saving %s: %s", ir, err)
            return network
        temporary = Path(name)
        try:
            import_openvino().save_model(network, str(temporary), compress_to_fp16=False)
            # the weights first: an .xml is only ever beside its own .bin
            os.replace(temporary.with_suffix(".bin"), weights)
            os.replace(temporary, ir)
        except (OSError, RuntimeError) as err:  # OpenVINO reports a failed write as a RuntimeError
            log.debug("not saving %s: %s", ir, err)
            return network
        finally:
            temporary.unlink(missing_ok=True)
            temporary.with_suffix(".bin").unlink(missing_ok=True)
        return ir

    def stylize_array(self, images: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 in [0, 1] -> the same shape, stylized."""
        import numpy as np

        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got shape {images.shape}")
        source = np.require(images, np.float32, ["C_CONTIGUOUS", "WRITEABLE"])
        painted = np.empty_like(source)
        self._network_for(ARRAYS, tuple(source.shape)).run(source, painted)
        self._used.add(self.engine)
        return painted

    def stylize_tensor(self, images: torch.Tensor, movement: Movement = None, strength: float = 1.0,
                       preserve_color: bool = False, tile: int | None = None) -> torch.Tensor:
        import torch

        self.check(movement, strength, preserve_color, tile)
        out = self.stylize_array(images.detach().cpu().float().numpy())
        return torch.from_numpy(out).to(images.device)

    def __call__(self, image: Image.Image, size: int | None = None, movement: Movement = None,
                 strength: float = 1.0, preserve_color: bool = False, tile: int | None = None) -> Image.Image:
        self.check(movement, strength, preserve_color, tile)
        picture = resize_for_painting(image if image.mode == "RGB" else image.convert("RGB"), size)  # no copy
        w, h = picture.size
        painted = bytearray(w * h * 3)
        self._network_for(PIXELS, (1, h, w, 3)).run(bytearray(picture.tobytes()), painted)
        self._used.add(self.engine)
        return Image.frombytes("RGB", (w, h), painted)


def with_pixel_conversions(network: Any) -> Any:
    """``network`` (float32 (N, 3, H, W) in [0, 1], in and out) taking and giving 8-bit RGB pixels
    (N, H, W, 3), converted inside it as :func:`~artstyle.image.to_array` and
    :func:`~artstyle.image.from_array` convert them (divided by 255; times 255, clipped to [0, 255],
    rounded half to even)."""
    openvino = import_openvino()
    from openvino import opset13 as ops
    from openvino.preprocess import PrePostProcessor

    def to_pixels(output: Any) -> Any:
        scaled = ops.multiply(output, ops.constant(255.0, openvino.Type.f32))
        return ops.round(ops.clamp(scaled, 0.0, 255.0), "half_to_even").output(0)

    steps = PrePostProcessor(network)
    steps.input().tensor().set_element_type(openvino.Type.u8).set_layout(openvino.Layout("NHWC"))
    steps.input().model().set_layout(openvino.Layout("NCHW"))
    steps.input().preprocess().convert_element_type(openvino.Type.f32).scale(255.0)
    steps.output().model().set_layout(openvino.Layout("NCHW"))
    steps.output().postprocess().custom(to_pixels)
    steps.output().postprocess().convert_element_type(openvino.Type.u8)
    steps.output().tensor().set_layout(openvino.Layout("NHWC"))
    return steps.build()


class _PythonNetwork:
    """A network compiled by the openvino Python package, run as an :class:`~.openvino_c.CompiledNetwork`
    is: where the C library cannot be loaded, or a shape's IR could not be saved."""

    def __init__(self, compiled: Any, element: str, shape: tuple[int, ...]) -> None:
        self._compiled, self._element, self._shape = compiled, element, shape
        self._lock = threading.Lock()  # a compiled network's default infer request serves one call at a time

    def run(self, source: Any, target: Any) -> None:
        import numpy as np

        dtype = np.uint8 if self._element == "u8" else np.float32
        with self._lock:
            result = self._compiled({"image": np.frombuffer(source, dtype).reshape(self._shape)})
            np.frombuffer(target, dtype).reshape(self._shape)[...] = result[self._compiled.output("stylized")]


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used files in ``folder`` (OpenVINO's compile cache)."""
    try:
        files = sorted((p for p in folder.iterdir() if p.is_file()),
                       key=lambda p: max(p.stat().st_atime, p.stat().st_mtime), reverse=True)
        for stale in files[keep:]:
            stale.unlink(missing_ok=True)
    except OSError as err:  # a cache that cannot be tidied is no reason to fail
        log.debug("could not prune %s: %s", folder, err)
