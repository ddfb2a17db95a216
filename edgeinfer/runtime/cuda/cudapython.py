"""CUDA layer over cuda-python (``cuda.bindings``): runtime API for memory/streams/events/graphs,
driver API + NVRTC for kernels. Every call returns ``(err, *results)``; every err is checked.

The runtime API uses the device's primary context, shared by all threads (and by TensorRT);
:meth:`CudaPython.activate` only binds it to a new thread once (``cudaSetDevice``), which the
driver-API kernel calls need.

Example:
    >>> from edgeinfer._deps import is_available
    >>> is_available("cuda") in (True, False)
    True
"""
from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Any, Dict, Iterator, Sequence, Tuple

import numpy as np

from ..._deps import require
from ...errors import BackendError
from .base import CudaApi, DeviceBuffer, HostBuffer, check_signature

_CTYPES = {"P": ctypes.c_void_p, "i": ctypes.c_int32, "f": ctypes.c_float}


class CudaPython(CudaApi):
    """cuda-python implementation. ``device``: CUDA device ordinal."""

    name = "cuda-python"

    def __init__(self, *, device: int = 0) -> None:
        self.rt = require("cuda.bindings.runtime", feature="CUDA buffers and streams (cuda-python)")
        self.drv = require("cuda.bindings.driver", feature="CUDA kernels (cuda-python)")
        self.device = int(device)
        self._bound = threading.local()
        self._info: Dict[str, Any] = {}
        with self.activate():
            pass

    # -------------------------------------------------------------- errors and context
    def _ok(self, result: Any, what: str) -> Any:
        """Check ``(err, *rest)`` from any cuda-python call; return rest (None, one value, or a tuple)."""
        if not isinstance(result, tuple):
            result = (result,)
        err, rest = result[0], result[1:]
        if int(err) != 0:
            name = getattr(err, "name", str(err))
            raise BackendError(f"CUDA call {what} failed: {name}",
                               hint="check `nvidia-smi`, free GPU memory, and that the driver matches CUDA")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else rest

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        if not getattr(self._bound, "done", False):
            self._ok(self.rt.cudaSetDevice(self.device), "cudaSetDevice")
            self._ok(self.rt.cudaFree(0), "cudaFree(0) (context init)")
            self._bound.done = True
        yield

    def device_info(self) -> Dict[str, Any]:
        if not self._info:
            prop = self._ok(self.rt.cudaGetDeviceProperties(self.device), "cudaGetDeviceProperties")
            name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
            self._info = {"name": name.rstrip("\x00"), "compute_capability": (int(prop.major), int(prop.minor)),
                          "integrated": bool(prop.integrated)}
        return self._info

    # -------------------------------------------------------------- memory
    def host_empty(self, shape: Sequence[int], dtype: Any, *, mapped: bool = False) -> HostBuffer:
        dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        flags = self.rt.cudaHostAllocMapped if mapped else self.rt.cudaHostAllocDefault
        ptr = int(self._ok(self.rt.cudaHostAlloc(nbytes, flags), "cudaHostAlloc"))
        raw = (ctypes.c_byte * nbytes).from_address(ptr)
        array = np.frombuffer(raw, dtype=np.uint8)[: int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)
        dptr = int(self._ok(self.rt.cudaHostGetDevicePointer(ptr, 0), "cudaHostGetDevicePointer")) if mapped else None
        return HostBuffer(array, device_ptr=dptr, owner=raw,
                          release=lambda: self._ok(self.rt.cudaFreeHost(ptr), "cudaFreeHost"))

    def device_empty(self, nbytes: int) -> DeviceBuffer:
        nbytes = max(int(nbytes), 1)
        ptr = int(self._ok(self.rt.cudaMalloc(nbytes), "cudaMalloc"))
        return DeviceBuffer(ptr, nbytes, owner=None, release=lambda: self._ok(self.rt.cudaFree(ptr), "cudaFree"))

    # -------------------------------------------------------------- streams and events
    def create_stream(self) -> Any:
        return self._ok(self.rt.cudaStreamCreateWithFlags(self.rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")

    def stream_handle(self, stream: Any) -> int:
        utils = require("cuda.bindings.utils")
        getter = getattr(utils, "get_cuda_native_handle", None)
        return int(getter(stream)) if getter is not None else int(stream)

    def synchronize(self, stream: Any) -> None:
        self._ok(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def create_event(self, *, timing: bool = False) -> Any:
        flags = self.rt.cudaEventDefault if timing else self.rt.cudaEventDisableTiming
        return self._ok(self.rt.cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags")

    def record(self, event: Any, stream: Any) -> None:
        self._ok(self.rt.cudaEventRecord(event, stream), "cudaEventRecord")

    def event_synchronize(self, event: Any) -> None:
        self._ok(self.rt.cudaEventSynchronize(event), "cudaEventSynchronize")

    def event_done(self, event: Any) -> bool:
        err = self.rt.cudaEventQuery(event)[0]
        if err == self.rt.cudaError_t.cudaErrorNotReady:
            return False
        self._ok((err,), "cudaEventQuery")
        return True

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self._ok(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def stream_wait_event(self, stream: Any, event: Any) -> None:
        self._ok(self.rt.cudaStreamWaitEvent(stream, event, 0), "cudaStreamWaitEvent")

    # -------------------------------------------------------------- copies
    def copy_htod_async(self, dst_ptr: int, src: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self.rt.cudaMemcpyAsync(dst_ptr, src.ctypes.data, src.nbytes, kind, stream), "cudaMemcpyAsync H2D")

    def copy_htod_2d_async(self, dst_ptr: int, dst_pitch: int, src: np.ndarray, src_pitch: int, width: int,
                           height: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self.rt.cudaMemcpy2DAsync(dst_ptr, dst_pitch, src.ctypes.data, src_pitch, width, height, kind, stream),
                 "cudaMemcpy2DAsync H2D")

    def copy_dtoh_async(self, dst: np.ndarray, src_ptr: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._ok(self.rt.cudaMemcpyAsync(dst.ctypes.data, src_ptr, dst.nbytes, kind, stream), "cudaMemcpyAsync D2H")

    def copy_dtod_async(self, dst_ptr: int, src_ptr: int, nbytes: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        self._ok(self.rt.cudaMemcpyAsync(dst_ptr, src_ptr, nbytes, kind, stream), "cudaMemcpyAsync D2D")

    def copy_htod_pageable(self, dst_ptr: int, src: np.ndarray) -> None:
        src = np.ascontiguousarray(src)
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self.rt.cudaMemcpy(dst_ptr, src.ctypes.data, src.nbytes, kind), "cudaMemcpy H2D (pageable)")

    # -------------------------------------------------------------- kernels
    def compile(self, source: str, name: str, signature: str) -> Any:
        nvrtc = require("cuda.bindings.nvrtc", feature="GPU pre-processing kernels (NVRTC)")
        major, minor = self.device_info()["compute_capability"]
        prog = self._nvrtc(nvrtc, nvrtc.nvrtcCreateProgram(source.encode(), f"{name}.cu".encode(), 0, [], []),
                           "nvrtcCreateProgram")
        opts = [f"--gpu-architecture=sm_{major}{minor}".encode()]
        err = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)[0]
        if int(err) != 0:
            size = self._nvrtc(nvrtc, nvrtc.nvrtcGetProgramLogSize(prog), "nvrtcGetProgramLogSize")
            log = b" " * int(size)
            nvrtc.nvrtcGetProgramLog(prog, log)
            raise BackendError(f"NVRTC could not compile kernel {name}: {log.decode(errors='replace')}",
                               hint="this is an edgeinfer bug if the CUDA toolkit is intact; report it")
        size = self._nvrtc(nvrtc, nvrtc.nvrtcGetCUBINSize(prog), "nvrtcGetCUBINSize")
        cubin = b" " * int(size)
        self._nvrtc(nvrtc, nvrtc.nvrtcGetCUBIN(prog, cubin), "nvrtcGetCUBIN")
        self._nvrtc(nvrtc, nvrtc.nvrtcDestroyProgram(prog), "nvrtcDestroyProgram")
        with self.activate():
            module = self._ok(self.drv.cuModuleLoadData(cubin), "cuModuleLoadData")
            func = self._ok(self.drv.cuModuleGetFunction(module, name.encode()), "cuModuleGetFunction")
        return {"module": module, "func": func, "signature": check_signature(signature)}

    def _nvrtc(self, nvrtc: Any, result: Any, what: str) -> Any:
        if not isinstance(result, tuple):
            result = (result,)
        if int(result[0]) != 0:
            raise BackendError(f"NVRTC call {what} failed: {getattr(result[0], 'name', result[0])}",
                               hint="check that the CUDA NVRTC library matches the driver")
        return result[1] if len(result) > 1 else None

    def launch(self, kernel: Any, grid: Tuple[int, int, int], block: Tuple[int, int, int],
               args: Sequence[Any], stream: Any) -> None:
        key = tuple(args)
        cache = kernel.setdefault("params", {})
        packed = cache.get(key)
        if packed is None:  # per-frame launches repeat the same arguments: pack them once
            holders = [_CTYPES[k](int(a) if k in "Pi" else float(a)) for k, a in zip(kernel["signature"], args)]
            params = (ctypes.c_void_p * len(holders))(*[ctypes.addressof(h) for h in holders])
            if len(cache) >= 32:
                cache.clear()
            packed = cache[key] = (holders, params)
        params = packed[1]
        with self.activate():
            self._ok(self.drv.cuLaunchKernel(kernel["func"], grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                             0, stream, ctypes.addressof(params), 0), "cuLaunchKernel")

    # -------------------------------------------------------------- graphs
    def begin_capture(self, stream: Any) -> None:
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._ok(self.rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")

    def end_capture(self, stream: Any) -> Any:
        graph = self._ok(self.rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
        exec_graph = self._ok(self.rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        return {"graph": graph, "exec": exec_graph}

    def graph_launch(self, graph: Any, stream: Any) -> None:
        self._ok(self.rt.cudaGraphLaunch(graph["exec"], stream), "cudaGraphLaunch")

    def end_capture_on_error(self, stream: Any) -> None:
        # trtexec's endCaptureOnError: an invalidated capture returns an error and no graph; a capture
        # TensorRT itself failed in returns a graph that must not be used. Then clear the error.
        with self.activate():
            result = self.rt.cudaStreamEndCapture(stream)
            if int(result[0]) == 0 and result[1] is not None and int(result[1]) != 0:
                self.rt.cudaGraphDestroy(result[1])
            self.rt.cudaGetLastError()

    def destroy(self, obj: Any) -> None:
        if obj is None:
            return
        rt = self.rt
        if isinstance(obj, dict) and "exec" in obj:
            self._ok(rt.cudaGraphExecDestroy(obj["exec"]), "cudaGraphExecDestroy")
            self._ok(rt.cudaGraphDestroy(obj["graph"]), "cudaGraphDestroy")
        elif isinstance(obj, rt.cudaStream_t):
            self._ok(rt.cudaStreamDestroy(obj), "cudaStreamDestroy")
        elif isinstance(obj, rt.cudaEvent_t):
            self._ok(rt.cudaEventDestroy(obj), "cudaEventDestroy")
