"""CUDA layer over pycuda, on the device's *primary* context (shared with TensorRT and the CUDA
runtime), pushed and popped around use rather than ``pycuda.autoinit``: autoinit binds a private
context to the importing thread, and other threads then fail with "invalid resource handle".

pycuda has no CUDA-graph API, so graph capture goes to the driver (libcuda) through ctypes with
pycuda's own stream handles.

Example:
    >>> PyCuda.name
    'pycuda'
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from typing import Any, Dict, Iterator, Sequence, Tuple

import numpy as np

from ..._deps import require
from ...errors import BackendError
from .base import CudaApi, DeviceBuffer, HostBuffer, check_signature

_NP_KINDS = {"P": np.uintp, "i": np.int32, "f": np.float32}
_CAPTURE_MODE_THREAD_LOCAL = 1  # CU_STREAM_CAPTURE_MODE_THREAD_LOCAL


class PyCuda(CudaApi):
    """pycuda implementation. ``device``: CUDA device ordinal."""

    name = "pycuda"

    def __init__(self, *, device: int = 0) -> None:
        self.cuda = require("pycuda.driver", feature="CUDA buffers and streams (pycuda)")
        self.cuda.init()
        self.dev = self.cuda.Device(int(device))
        self.ctx = self.dev.retain_primary_context()
        self._depth = threading.local()
        self._libcuda: Any = None
        self._info: Dict[str, Any] = {}

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        """Push the primary context on entry and pop it on exit (re-entrant per thread)."""
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            self.ctx.push()
        self._depth.n = depth + 1
        try:
            yield
        finally:
            self._depth.n -= 1
            if self._depth.n == 0:
                self.cuda.Context.pop()

    def _wrap(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with self.activate():
                return func(*args, **kwargs)
        except self.cuda.Error as exc:
            raise BackendError(f"CUDA call {what} failed: {exc}",
                               hint="check `nvidia-smi`, free GPU memory, and that pycuda was built for this CUDA") from exc

    def device_info(self) -> Dict[str, Any]:
        if not self._info:
            attr = self.cuda.device_attribute
            self._info = {"name": self.dev.name(), "compute_capability": tuple(self.dev.compute_capability()),
                          "integrated": bool(self.dev.get_attribute(attr.INTEGRATED))}
        return self._info

    # -------------------------------------------------------------- memory
    def host_empty(self, shape: Sequence[int], dtype: Any, *, mapped: bool = False) -> HostBuffer:
        flags = self.cuda.host_alloc_flags.DEVICEMAP if mapped else 0
        array = self._wrap("pagelocked_empty", self.cuda.pagelocked_empty, tuple(int(s) for s in shape),
                           np.dtype(dtype), mem_flags=flags)
        alloc = array.base
        dptr = int(self._wrap("get_device_pointer", alloc.get_device_pointer)) if mapped else None
        return HostBuffer(array, device_ptr=dptr, owner=alloc, release=lambda: self._wrap("free", alloc.free))

    def device_empty(self, nbytes: int) -> DeviceBuffer:
        alloc = self._wrap("mem_alloc", self.cuda.mem_alloc, max(int(nbytes), 1))
        return DeviceBuffer(int(alloc), max(int(nbytes), 1), owner=alloc, release=lambda: self._wrap("free", alloc.free))

    # -------------------------------------------------------------- streams and events
    def create_stream(self) -> Any:
        return self._wrap("Stream", self.cuda.Stream, flags=1)  # 1: CU_STREAM_NON_BLOCKING

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def synchronize(self, stream: Any) -> None:
        self._wrap("Stream.synchronize", stream.synchronize)

    def create_event(self, *, timing: bool = False) -> Any:
        flags = 0 if timing else self.cuda.event_flags.DISABLE_TIMING
        return self._wrap("Event", self.cuda.Event, flags)

    def record(self, event: Any, stream: Any) -> None:
        self._wrap("Event.record", event.record, stream)

    def event_synchronize(self, event: Any) -> None:
        self._wrap("Event.synchronize", event.synchronize)

    def event_done(self, event: Any) -> bool:
        return bool(self._wrap("Event.query", event.query))

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._wrap("Event.time_till", start.time_till, end))

    def stream_wait_event(self, stream: Any, event: Any) -> None:
        self._wrap("Stream.wait_for_event", stream.wait_for_event, event)

    # -------------------------------------------------------------- copies
    def copy_htod_async(self, dst_ptr: int, src: np.ndarray, stream: Any) -> None:
        self._wrap("memcpy_htod_async", self.cuda.memcpy_htod_async, int(dst_ptr), src, stream)

    def copy_htod_2d_async(self, dst_ptr: int, dst_pitch: int, src: np.ndarray, src_pitch: int, width: int,
                           height: int, stream: Any) -> None:
        copy = self.cuda.Memcpy2D()
        copy.set_src_host(src)
        copy.set_dst_device(int(dst_ptr))
        copy.src_pitch, copy.dst_pitch = int(src_pitch), int(dst_pitch)
        copy.width_in_bytes, copy.height = int(width), int(height)
        self._wrap("Memcpy2D (H2D)", copy, stream)

    def copy_dtoh_async(self, dst: np.ndarray, src_ptr: int, stream: Any) -> None:
        self._wrap("memcpy_dtoh_async", self.cuda.memcpy_dtoh_async, dst, int(src_ptr), stream)

    def copy_dtod_async(self, dst_ptr: int, src_ptr: int, nbytes: int, stream: Any) -> None:
        self._wrap("memcpy_dtod_async", self.cuda.memcpy_dtod_async, int(dst_ptr), int(src_ptr), int(nbytes), stream)

    def copy_htod_pageable(self, dst_ptr: int, src: np.ndarray) -> None:
        self._wrap("memcpy_htod", self.cuda.memcpy_htod, int(dst_ptr), np.ascontiguousarray(src))

    # -------------------------------------------------------------- kernels
    def compile(self, source: str, name: str, signature: str) -> Any:
        compiler = require("pycuda.compiler", feature="GPU pre-processing kernels (pycuda)")
        major, minor = self.device_info()["compute_capability"]
        with self.activate():
            try:
                module = compiler.SourceModule(source, arch=f"sm_{major}{minor}", no_extern_c=True)
            except Exception as exc:  # pycuda raises CompileError / cuda.Error
                raise BackendError(f"pycuda could not compile kernel {name}: {exc}",
                                   hint="pycuda compiles with nvcc: put /usr/local/cuda/bin on PATH") from exc
            func = module.get_function(name)
            func.prepare(check_signature(signature))
        return {"module": module, "func": func, "signature": signature}

    def launch(self, kernel: Any, grid: Tuple[int, int, int], block: Tuple[int, int, int],
               args: Sequence[Any], stream: Any) -> None:
        key = tuple(args)
        cache = kernel.setdefault("values", {})
        values = cache.get(key)
        if values is None:  # per-frame launches repeat the same arguments: convert them once
            values = [_NP_KINDS[k](a) for k, a in zip(kernel["signature"], args)]
            if len(cache) >= 32:
                cache.clear()
            cache[key] = values
        self._wrap("kernel launch", kernel["func"].prepared_async_call, tuple(grid), tuple(block), stream, *values)

    # -------------------------------------------------------------- graphs (driver API via ctypes)
    def _driver(self) -> Any:
        if self._libcuda is None:
            path = ctypes.util.find_library("cuda") or "libcuda.so.1"
            self._libcuda = ctypes.CDLL(path)
        return self._libcuda

    def _cu(self, what: str, code: int) -> None:
        if code != 0:
            raise BackendError(f"CUDA driver call {what} failed with CUresult {code}",
                               hint="CUDA graphs need a CUDA 11.4+ driver; run without cuda_graph=True")

    def begin_capture(self, stream: Any) -> None:
        with self.activate():
            self._cu("cuStreamBeginCapture", self._driver().cuStreamBeginCapture_v2(
                ctypes.c_void_p(int(stream.handle)), ctypes.c_int(_CAPTURE_MODE_THREAD_LOCAL)))

    def end_capture(self, stream: Any) -> Any:
        lib = self._driver()
        graph, exec_graph = ctypes.c_void_p(), ctypes.c_void_p()
        with self.activate():
            self._cu("cuStreamEndCapture", lib.cuStreamEndCapture(ctypes.c_void_p(int(stream.handle)), ctypes.byref(graph)))
            self._cu("cuGraphInstantiateWithFlags",
                     lib.cuGraphInstantiateWithFlags(ctypes.byref(exec_graph), graph, ctypes.c_ulonglong(0)))
        return {"graph": graph, "exec": exec_graph}

    def end_capture_on_error(self, stream: Any) -> None:
        # trtexec's endCaptureOnError (samples/common/sampleDevice.h): end the capture, drop any graph,
        # then reset the runtime's last error, which TensorRT (a runtime-API user) would trip over next.
        lib, graph = self._driver(), ctypes.c_void_p()
        with self.activate():
            if lib.cuStreamEndCapture(ctypes.c_void_p(int(stream.handle)), ctypes.byref(graph)) == 0 and graph.value:
                lib.cuGraphDestroy(graph)
        path = ctypes.util.find_library("cudart")
        if path:
            try:
                ctypes.CDLL(path).cudaGetLastError()
            except (OSError, AttributeError):
                pass

    def graph_launch(self, graph: Any, stream: Any) -> None:
        with self.activate():
            self._cu("cuGraphLaunch", self._driver().cuGraphLaunch(graph["exec"], ctypes.c_void_p(int(stream.handle))))

    def destroy(self, obj: Any) -> None:
        if isinstance(obj, dict) and "exec" in obj and obj["exec"] is not None:
            lib = self._driver()
            with self.activate():
                self._cu("cuGraphExecDestroy", lib.cuGraphExecDestroy(obj["exec"]))
                self._cu("cuGraphDestroy", lib.cuGraphDestroy(obj["graph"]))
            obj["exec"] = None
        # pycuda streams and events free themselves when garbage-collected (inside their context)
