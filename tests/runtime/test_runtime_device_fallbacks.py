"""Device-side failures that must not fail a load: CUDA-graph capture that fails, handled like
trtexec (end the capture, clear the error, run without a graph), never attempted for DLA engines
(NVIDIA/TensorRT#3524); a GPU pre-processing kernel that does not compile (CPU pre-processing
with a warning).

The real DeviceRunner / plan_execution run here on a small simulated CUDA device that keeps
stream-capture semantics (work issued while capturing is recorded, not run; an illegal call
invalidates the capture; the stream stays in capture mode until EndCapture; errors are sticky
until cleared). The gpu tier repeats the failing-capture case on a real GPU
(tests/runtime/test_runtime_gpu.py::test_failed_capture_runs_without_a_graph)."""
from __future__ import annotations

import contextlib
import logging

import numpy as np
import pytest

from edgeinfer.errors import BackendError
from edgeinfer.runtime.cuda.base import CudaApi, DeviceBuffer, HostBuffer
from edgeinfer.runtime.device_runner import DeviceRunner, IoTensor, plan_execution

N = 64


class SimCuda(CudaApi):
    """Host memory as device memory, with CUDA's stream-capture rules."""

    name = "sim"

    def __init__(self, *, integrated: bool = False, nvcc_missing: bool = False) -> None:
        self.integrated, self.nvcc_missing = integrated, nvcc_missing
        self.memory = {}
        self.capturing = None  # list of recorded operations while a capture is open
        self.invalidated = False
        self.last_error = None
        self.graphs_launched = 0

    @contextlib.contextmanager
    def activate(self):
        yield

    def device_info(self):
        return {"name": "sim", "compute_capability": (8, 7), "integrated": self.integrated}

    def host_empty(self, shape, dtype, *, mapped=False):
        array = np.zeros(shape, dtype)
        ptr = None
        if mapped:
            ptr = 0x1000 + len(self.memory) * 0x100000
            self.memory[ptr] = array.reshape(-1).view(np.uint8)
        return HostBuffer(array, device_ptr=ptr, owner=None, release=None)

    def device_empty(self, nbytes):
        ptr = 0x1000 + len(self.memory) * 0x100000
        self.memory[ptr] = np.zeros(max(1, nbytes), np.uint8)
        return DeviceBuffer(ptr, nbytes, owner=None, release=None)

    def issue(self, op):
        """Run ``op`` now, or record it while capturing (as CUDA does with stream work)."""
        if self.capturing is not None:
            self.capturing.append(op)
        else:
            op()

    def illegal_call_in_capture(self):
        """What e.g. a synchronous cudaMemcpy does inside a capture: the capture is invalidated."""
        if self.capturing is not None:
            self.invalidated = True
            self.last_error = "cudaErrorStreamCaptureInvalidated"
            return False
        return True

    def create_stream(self): return object()
    def stream_handle(self, stream): return id(stream)
    def synchronize(self, stream): self._usable()
    def create_event(self, *, timing=False): return {"t": 0.0}
    def record(self, event, stream): pass
    def event_synchronize(self, event): self._usable()
    def event_done(self, event): return True
    def elapsed_ms(self, start, end): return 1.0
    def stream_wait_event(self, stream, event): pass
    def copy_dtod_async(self, dst_ptr, src_ptr, nbytes, stream): raise AssertionError("unused")
    def copy_htod_pageable(self, dst_ptr, src): raise AssertionError("unused")
    def compile(self, source, name, signature):
        if self.nvcc_missing:  # what pycuda reports when nvcc is not on PATH (e.g. under systemd)
            raise BackendError(f"pycuda could not compile kernel {name}: nvcc not found",
                               hint="pycuda compiles with nvcc: put /usr/local/cuda/bin on PATH")
        raise AssertionError("the simulated device runs no kernels")
    def launch(self, kernel, grid, block, args, stream): raise AssertionError("unused")
    def destroy(self, obj): pass

    def copy_htod_async(self, dst_ptr, src, stream):
        self._usable()
        self.issue(lambda: self.memory[dst_ptr].__setitem__(slice(0, src.nbytes), src.reshape(-1).view(np.uint8)))

    def copy_dtoh_async(self, dst, src_ptr, stream):
        self._usable()
        self.issue(lambda: dst.reshape(-1).view(np.uint8).__setitem__(slice(None), self.memory[src_ptr][:dst.nbytes]))

    def begin_capture(self, stream):
        self._usable()
        self.capturing, self.invalidated = [], False

    def end_capture(self, stream):
        ops, invalid = self.capturing, self.invalidated
        self.capturing = None  # EndCapture ends capture mode even when it reports an error
        if ops is None or invalid:
            raise BackendError("CUDA call cudaStreamEndCapture failed: cudaErrorStreamCaptureInvalidated")
        return list(ops)

    def end_capture_on_error(self, stream):
        self.capturing, self.invalidated, self.last_error = None, False, None

    def graph_launch(self, graph, stream):
        self._usable()
        self.graphs_launched += 1
        for op in graph:
            op()

    def _usable(self):
        if self.capturing is not None and self.last_error is None:
            return
        if self.last_error is not None:  # a stale error poisons the next call, as in the CUDA runtime
            raise BackendError(f"CUDA call failed: {self.last_error}")


class AffineContext:
    """out = 2 * in + 1 on the bound addresses; ``capturable=False`` plays an engine with work that
    is illegal under stream capture (execute_async_v3 then returns False, as TensorRT does)."""

    def __init__(self, cuda, *, n=N, capturable=True):
        self.cuda, self.n, self.capturable, self.addresses, self.calls = cuda, n, capturable, {}, 0

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream_handle):
        self.calls += 1
        if not self.capturable and not self.cuda.illegal_call_in_capture():
            return False
        src, dst = self.cuda.memory[self.addresses["in"]], self.cuda.memory[self.addresses["out"]]
        n = self.n * 4
        self.cuda.issue(lambda: dst[:n].view(np.float32).__setitem__(slice(None), src[:n].view(np.float32) * 2 + 1))
        return True


IO = [IoTensor("in", True, (N,), "float32"), IoTensor("out", False, (N,), "float32")]


@pytest.mark.parametrize("memory", ["staged", "mapped"])
def test_failed_capture_ends_clears_and_runs_without_a_graph(memory, caplog):
    cuda = SimCuda()
    ctx = AffineContext(cuda, capturable=False)
    runner = DeviceRunner(cuda, IO, ctx, memory=memory, cuda_graph=True)
    rng = np.random.default_rng(0)
    with caplog.at_level(logging.WARNING, logger="edgeinfer.runtime.device_runner"):
        for _ in range(3):
            x = rng.standard_normal(N).astype(np.float32)
            runner.host("in")[:] = x
            np.testing.assert_allclose(runner.run()["out"], x * 2 + 1)
    assert not runner.cuda_graph and "execution failed" in runner.graph_failure
    assert cuda.capturing is None and cuda.last_error is None and cuda.graphs_launched == 0
    assert sum("running without CUDA graphs" in r.getMessage() for r in caplog.records) == 1  # tried once only


def test_capturable_engine_replays_its_graph():
    cuda = SimCuda()
    ctx = AffineContext(cuda)
    runner = DeviceRunner(cuda, IO, ctx, memory="staged", cuda_graph=True)
    for value in (1.0, 2.0, 3.0):
        runner.host("in")[:] = value
        np.testing.assert_allclose(runner.run()["out"], value * 2 + 1)
    assert runner.cuda_graph and runner.graph_failure is None
    assert ctx.calls == 2 and cuda.graphs_launched == 3  # warm-up + capture, then replays


def test_memory_auto_on_a_jetson_loads_when_the_graph_cannot_be_captured():
    cuda = SimCuda(integrated=True)  # Jetson: auto measures staged and mapped, with the graph asked for
    mode, graph, why = plan_execution(cuda, IO, AffineContext(cuda, capturable=False), memory="auto",
                                      cuda_graph=True, dla_core=None)
    assert mode in ("staged", "mapped") and graph is False
    assert "measured on this Jetson" in why and "CUDA graph off (capture failed" in why


def test_dla_engines_are_never_captured():
    cuda = SimCuda(integrated=True)
    ctx = AffineContext(cuda)
    mode, graph, why = plan_execution(cuda, IO, ctx, memory="staged", cuda_graph=True, dla_core=0)
    assert graph is False and "DLA" in why and ctx.calls == 0  # decided before any enqueue
    _, graph, _ = plan_execution(cuda, IO, ctx, memory="staged", cuda_graph=True, dla_core=None)
    assert graph is True


def _generic_model(cuda, **kwargs):
    from edgeinfer.model.info import ModelInfo, TensorSpec
    from edgeinfer.runtime.model import Model
    from edgeinfer.runtime.trt_backend import TensorRTBackend

    io = [IoTensor("in", True, (1, 3, 8, 8), "float32"), IoTensor("out", False, (1, 3, 8, 8), "float32")]
    ctx = AffineContext(cuda, n=3 * 8 * 8)
    backend = TensorRTBackend.from_context(cuda, io, ctx, memory="staged")
    info = ModelInfo(inputs=[TensorSpec("in", [1, 3, 8, 8], "float32")], outputs=[TensorSpec("out", [1, 3, 8, 8], "float32")])
    return Model(backend, info, reason="simulated device", **kwargs)


def test_gpu_preprocess_that_cannot_compile_falls_back_to_cpu(caplog):
    cuda = SimCuda(nvcc_missing=True)
    with caplog.at_level(logging.WARNING, logger="edgeinfer.runtime.gpu_preprocess"):
        model = _generic_model(cuda)  # gpu_preprocess unset: default on for a static TensorRT input
    assert model._gpu_pre is None
    assert any("pre-processing on the CPU" in r.getMessage() and "/usr/local/cuda/bin" in r.getMessage()
               for r in caplog.records)
    frame = np.full((8, 8, 3), 255, np.uint8)
    out = model(frame)["out"]
    np.testing.assert_allclose(out, 3.0)  # CPU letterbox: 255/255 = 1 -> 2 * 1 + 1
    model.close()


def test_gpu_preprocess_explicitly_requested_still_fails_loudly():
    with pytest.raises(BackendError, match="nvcc not found"):
        _generic_model(SimCuda(nvcc_missing=True), gpu_preprocess=True)
