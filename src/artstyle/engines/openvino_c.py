"""OpenVINO's C API through ctypes: a saved IR file compiled for the CPU and run on the caller's
buffers, without numpy or the openvino Python package.

Those two imports are about 90 ms of the 0.6 s that ``artstyle stylize`` takes for one photo on an
AVX2 CPU (benchmarks/README.md); painting a photo needs neither once its network is saved as IR,
so the OpenVINO engine runs every network through this module and keeps the Python package for
making the IR files (read the export, reshape, add the pixel conversions, save), once per shape.

The library is the ``libopenvino_c`` that the openvino wheel ships beside its Python package, found
without importing it. Only the ``_props`` functions are called where the C API also has variadic
ones: ctypes cannot pass C varargs portably. Reference: OpenVINO's ``openvino/c/*.h``.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import importlib.util
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

ELEMENT_TYPES = {"f32": 4, "u8": 16}  # ov_element_type_e
KEPT = 4  # the networks compiled last live to the process's exit, which then skips freeing them (about 16 ms)
LIBRARY_NAMES = {"linux": "libopenvino_c.so*", "darwin": "libopenvino_c*.dylib", "win32": "openvino_c.dll"}


class OpenVinoError(RuntimeError):
    """A call into OpenVINO's C API that failed, with OpenVINO's own message."""


class _Shape(ctypes.Structure):
    _fields_ = [("rank", ctypes.c_int64), ("dims", ctypes.POINTER(ctypes.c_int64))]


class _Property(ctypes.Structure):  # ov_property_t; its value is a const void*, here always a string
    _fields_ = [("key", ctypes.c_char_p), ("value", ctypes.c_char_p)]


_HANDLE = ctypes.POINTER(ctypes.c_void_p)
_SIGNATURES: dict[str, list[Any]] = {  # every function called, with its arguments (all return a status but the frees)
    "ov_core_create": [_HANDLE],
    "ov_core_set_properties": [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_Property)],
    "ov_core_compile_model_from_file_props": [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                              ctypes.POINTER(_Property), _HANDLE],
    "ov_compiled_model_create_infer_request": [ctypes.c_void_p, _HANDLE],
    "ov_tensor_create_from_host_ptr": [ctypes.c_int, _Shape, ctypes.c_void_p, _HANDLE],
    "ov_infer_request_set_input_tensor": [ctypes.c_void_p, ctypes.c_void_p],
    "ov_infer_request_set_output_tensor": [ctypes.c_void_p, ctypes.c_void_p],
    "ov_infer_request_infer": [ctypes.c_void_p],
    "ov_tensor_free": [ctypes.c_void_p],
    "ov_infer_request_free": [ctypes.c_void_p],
    "ov_compiled_model_free": [ctypes.c_void_p],
}


@functools.cache
def library() -> ctypes.CDLL | None:
    """OpenVINO's C library from the installed openvino wheel, or None where there is none to load
    (no wheel, or one older than the ``_props`` functions: its Python package then runs networks)."""
    spec = importlib.util.find_spec("openvino")
    pattern = LIBRARY_NAMES.get(sys.platform)
    if spec is None or not spec.submodule_search_locations or pattern is None:
        return None
    found = sorted((Path(spec.submodule_search_locations[0]) / "libs").glob(pattern))
    try:
        lib = ctypes.CDLL(str(found[0]))
        for name, arguments in _SIGNATURES.items():
            function = getattr(lib, name)
            function.argtypes = arguments
            function.restype = None if name.endswith("_free") else ctypes.c_int
        lib.ov_get_last_err_msg.restype = ctypes.c_char_p
    except (IndexError, OSError, AttributeError):
        return None
    return lib


def available() -> bool:
    """Whether networks can run through the C API here."""
    return library() is not None


def _call(name: str, *arguments: Any) -> None:
    lib = library()
    assert lib is not None, "check available() first"
    if getattr(lib, name)(*arguments) != 0:  # ov_status_e: 0 is OK
        message = (lib.ov_get_last_err_msg() or b"").decode(errors="replace").strip()
        raise OpenVinoError(f"{name}: {message or 'failed'}")


def _properties(values: dict[str, str]) -> Any:
    """An ov_property_t array (the strings it points to are kept alive by it)."""
    return (_Property * max(1, len(values)))(*(_Property(k.encode(), v.encode()) for k, v in values.items()))


_exiting = threading.Event()  # set at the interpreter's exit: networks alive then are not freed
atexit.register(_exiting.set)
_kept: deque[CompiledNetwork] = deque(maxlen=KEPT)
_cores: dict[str, ctypes.c_void_p] = {}
_cores_lock = threading.Lock()


def _core(cache_dir: Path) -> ctypes.c_void_p:
    """The process's OpenVINO core for one compile cache folder (cores load the CPU plugin: one each)."""
    with _cores_lock:
        if str(cache_dir) not in _cores:
            core = ctypes.c_void_p()
            _call("ov_core_create", ctypes.byref(core))
            _call("ov_core_set_properties", core, None, 1, _properties({"CACHE_DIR": str(cache_dir)}))
            _cores[str(cache_dir)] = core
        return _cores[str(cache_dir)]


def _tensor(element: str, shape: tuple[int, ...], buffer: Any) -> ctypes.c_void_p:
    size = 1
    for d in shape:
        size *= d
    view = memoryview(buffer).cast("B")
    if view.readonly or not view.c_contiguous or view.nbytes != size * (4 if element == "f32" else 1):
        raise ValueError(f"expected a writable contiguous buffer of {size} {element}, got {view.nbytes} bytes")
    dims = (ctypes.c_int64 * len(shape))(*shape)
    tensor = ctypes.c_void_p()
    _call("ov_tensor_create_from_host_ptr", ELEMENT_TYPES[element], _Shape(len(shape), dims),
          ctypes.addressof(ctypes.c_char.from_buffer(view)), ctypes.byref(tensor))
    return tensor


class CompiledNetwork:
    """An IR file compiled for the CPU, with one input and one output of fixed shapes.

    Args:
        xml: the IR's ``.xml`` (its ``.bin`` beside it).
        properties: compile properties, e.g. ``{"INFERENCE_PRECISION_HINT": "bf16"}``.
        cache_dir: OpenVINO's compile cache (a later process loads the compiled network from it).
        inputs, outputs: (element type, shape) of the network's input and output: ``f32`` or ``u8``.
    """

    def __init__(self, xml: Path, properties: dict[str, str], cache_dir: Path,
                 inputs: tuple[str, tuple[int, ...]], outputs: tuple[str, tuple[int, ...]]) -> None:
        self.inputs, self.outputs = inputs, outputs
        # kept on the instance: at the interpreter's exit this module's names may be gone before __del__
        self._lib, self._exiting = library(), _exiting
        self._compiled = ctypes.c_void_p()
        self._request = ctypes.c_void_p()
        _call("ov_core_compile_model_from_file_props", _core(cache_dir), str(xml).encode(), b"CPU",
              len(properties), _properties(properties), ctypes.byref(self._compiled))
        _call("ov_compiled_model_create_infer_request", self._compiled, ctypes.byref(self._request))
        self._lock = threading.Lock()  # one request: one call at a time
        _kept.append(self)

    def run(self, source: Any, target: Any) -> None:
        """Run the network on ``source``, writing its output into ``target``: writable contiguous
        buffers (a bytearray, a numpy array) of the input's and the output's shapes. The GIL is
        released meanwhile."""
        with self._lock:
            tensors: list[ctypes.c_void_p] = []
            try:
                tensors.append(_tensor(*self.inputs, source))
                tensors.append(_tensor(*self.outputs, target))
                _call("ov_infer_request_set_input_tensor", self._request, tensors[0])
                _call("ov_infer_request_set_output_tensor", self._request, tensors[1])
                _call("ov_infer_request_infer", self._request)
            finally:
                for tensor in tensors:
                    self._lib.ov_tensor_free(tensor)  # type: ignore[union-attr]

    def __del__(self) -> None:
        if self._lib is not None and not self._exiting.is_set():
            if self._request:
                self._lib.ov_infer_request_free(self._request)
            if self._compiled:
                self._lib.ov_compiled_model_free(self._compiled)
