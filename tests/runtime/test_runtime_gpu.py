"""gpu tier: both CUDA bindings, GPU vs CPU pre-processing, and the TensorRT plumbing with a CUDA
kernel standing in for TensorRT's execution context (binding, stream order, events,
double-buffering, CUDA-graph replay, mapped memory). Skipped without a CUDA GPU."""
from __future__ import annotations

import numpy as np
import pytest

from edgeinfer._deps import is_available
from edgeinfer.errors import BackendError
from edgeinfer.model.info import PreprocessSpec
from edgeinfer.runtime.device_runner import DeviceRunner, IoTensor
from edgeinfer.runtime.preprocess import Preprocessor

pytestmark = pytest.mark.gpu

IMPLS = [pytest.param("cuda-python", marks=pytest.mark.skipif(not is_available("cuda.bindings"), reason="no cuda-python")),
         pytest.param("pycuda", marks=pytest.mark.skipif(not is_available("pycuda"), reason="no pycuda"))]

STANDIN_SOURCE = r"""
extern "C" __global__ void standin(const float* x, float* y, int n, int spin, float a, float b)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i];
    float acc = 0.f;
    for (int k = 0; k < spin; ++k) acc += sinf(v + k) * 1e-30f;  /* slow on purpose: exposes missing ordering */
    y[i] = v * a + b + (acc > 1e30f ? 1.f : 0.f);
}
"""


class KernelContext:
    """Stands in for TensorRT's IExecutionContext: out = in * 2 + 1 on the bound device pointers."""

    def __init__(self, cuda, n, *, spin=2000, src="in", dst="out"):
        self.cuda, self.n, self.spin, self.src, self.dst = cuda, n, spin, src, dst
        self.kernel = cuda.compile(STANDIN_SOURCE, "standin", "PPiiff")
        self.addresses = {}
        self.stream = None  # the runner's stream object; TensorRT gets only its handle
        self.calls = 0

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream_handle):
        assert stream_handle == self.cuda.stream_handle(self.stream), "enqueued on a foreign stream"
        self.calls += 1
        grid = ((self.n + 255) // 256, 1, 1)
        self.cuda.launch(self.kernel, grid, (256, 1, 1),
                         [self.addresses[self.src], self.addresses[self.dst], self.n, self.spin, 2.0, 1.0], self.stream)
        return True


@pytest.fixture(params=IMPLS)
def cuda(request):
    from edgeinfer.runtime.cuda import get_cuda

    api = get_cuda(request.param)
    assert api.name == request.param
    return api


def _runner(cuda, n, **kwargs):
    io = [IoTensor("in", True, (n,), "float32"), IoTensor("out", False, (n,), "float32")]
    ctx = KernelContext(cuda, n)
    runner = DeviceRunner(cuda, io, ctx, **kwargs)
    ctx.stream = runner.stream
    return runner, ctx


def test_pinned_roundtrip_and_events(cuda):
    rng = np.random.default_rng()
    with cuda.activate():
        host = cuda.host_empty((1 << 20,), np.float32)
        back = cuda.host_empty((1 << 20,), np.float32)
        dev = cuda.device_empty(host.nbytes)
        stream = cuda.create_stream()
        host.array[:] = rng.standard_normal(1 << 20).astype(np.float32)
        back.array[:] = np.nan
        with cuda.timed(stream) as t:
            cuda.copy_htod_async(dev.ptr, host.array, stream)
            cuda.copy_dtoh_async(back.array, dev.ptr, stream)
        assert t["ms"] > 0
        np.testing.assert_array_equal(back.array, host.array)
        for buf in (host, back, dev):
            buf.free()
        cuda.destroy(stream)
    info = cuda.device_info()
    assert info["compute_capability"][0] >= 5 and info["name"]


@pytest.mark.parametrize("memory", ["staged", "mapped"])
def test_standin_runner_binds_orders_and_copies(cuda, memory):
    n = 1 << 16
    runner, ctx = _runner(cuda, n, memory=memory)
    rng = np.random.default_rng()
    for _ in range(3):  # fresh data every call; poisoned output must be fully overwritten
        x = rng.standard_normal(n).astype(np.float32)
        runner.host("in")[:] = x
        runner.host("out")[:] = np.nan
        out = runner.run()
        np.testing.assert_allclose(out["out"], x * 2 + 1, rtol=1e-4, atol=1e-4)
    if memory == "mapped":
        assert ctx.addresses["in"] == runner.device_ptr("in") != 0
    runner.close()


def test_double_buffering_keeps_slots_apart(cuda):
    n = 1 << 16
    runner, ctx = _runner(cuda, n, slots=2)
    rng = np.random.default_rng()
    xs = [rng.standard_normal(n).astype(np.float32) for _ in range(6)]
    runner.host("in", 0)[:] = xs[0]
    runner.submit(0)
    for i in range(1, len(xs)):  # fill the other slot while this one runs, then swap
        slot, prev = i % 2, (i - 1) % 2
        runner.host("in", slot)[:] = xs[i]
        runner.host("out", slot)[:] = np.nan
        runner.submit(slot)
        np.testing.assert_allclose(runner.wait(prev)["out"], xs[i - 1] * 2 + 1, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(runner.wait((len(xs) - 1) % 2)["out"], xs[-1] * 2 + 1, rtol=1e-4, atol=1e-4)
    assert runner.ready(0) and runner.ready(1)
    runner.close()


def test_cuda_graph_replays_with_new_inputs(cuda):
    n = 1 << 16
    runner, ctx = _runner(cuda, n, cuda_graph=True)
    rng = np.random.default_rng()
    for _ in range(4):
        x = rng.standard_normal(n).astype(np.float32)
        runner.host("in")[:] = x
        runner.host("out")[:] = np.nan
        np.testing.assert_allclose(runner.run()["out"], x * 2 + 1, rtol=1e-4, atol=1e-4)
    # the first call enqueues once for TensorRT-style lazy set-up, then captures; replays skip Python launches
    assert ctx.calls == 2
    runner.close()


class CaptureBreakingContext(KernelContext):
    """An engine with work that is illegal under stream capture: it synchronizes its stream before
    the kernel (legal outside a capture, invalidates one). Like TensorRT, it reports the failure by
    returning False from execute_async_v3."""

    def execute_async_v3(self, stream_handle):
        try:
            self.cuda.synchronize(self.stream)
        except BackendError:
            self.calls += 1
            return False
        return super().execute_async_v3(stream_handle)


def test_failed_capture_runs_without_a_graph(cuda):
    # trtexec's handling (samples/common/sampleInference.cpp): end the capture, clear the error,
    # warn, run uncaptured. On a real GPU: the stream must really leave capture mode and stay usable.
    n = 1 << 16
    io = [IoTensor("in", True, (n,), "float32"), IoTensor("out", False, (n,), "float32")]
    ctx = CaptureBreakingContext(cuda, n)
    runner = DeviceRunner(cuda, io, ctx, cuda_graph=True)
    ctx.stream = runner.stream
    rng = np.random.default_rng()
    for _ in range(3):
        x = rng.standard_normal(n).astype(np.float32)
        runner.host("in")[:] = x
        runner.host("out")[:] = np.nan
        np.testing.assert_allclose(runner.run()["out"], x * 2 + 1, rtol=1e-4, atol=1e-4)
    assert not runner.cuda_graph and runner.graph_failure
    runner.close()


def test_gpu_preprocess_kernel_that_does_not_compile_falls_back_to_cpu(cuda, monkeypatch, caplog):
    # the real compiler (NVRTC / nvcc through pycuda) rejects the kernel: load() must not fail
    from edgeinfer.runtime import gpu_preprocess

    monkeypatch.setattr(gpu_preprocess, "KERNEL_SOURCE", gpu_preprocess.KERNEL_SOURCE.replace("rintf(", "no_such_fn("))
    assert gpu_preprocess.make_gpu_preprocessor(PreprocessSpec(), (64, 64), cuda=cuda) is None
    assert any("pre-processing on the CPU" in r.getMessage() for r in caplog.records)
    with pytest.raises(BackendError, match="compile"):
        gpu_preprocess.make_gpu_preprocessor(PreprocessSpec(), (64, 64), cuda=cuda, required=True)


SHAPES = [((1080, 1920), (640, 640), False), ((480, 640), (320, 320), False), ((100, 75), (320, 320), False),
          ((1080, 1920), (640, 640), True), ((333, 517), (640, 480), False), ((640, 640), (640, 640), False),
          # exact vertical factors: only the sampled rows are uploaded (k = 6 and 4: two rows in k; 3: one)
          ((2160, 3840), (640, 640), False), ((1440, 2560), (640, 640), False), ((1080, 1440), (480, 640), False)]


@pytest.mark.parametrize("src_hw,dst_hw,dynamic,zero_copy", [s + (False,) for s in SHAPES] +
                         [((1080, 1920), (640, 640), False, True), ((333, 517), (640, 480), False, True)])
def test_gpu_preprocess_matches_cpu(cuda, src_hw, dst_hw, dynamic, zero_copy):
    from edgeinfer.runtime.gpu_preprocess import GpuPreprocessor

    spec = PreprocessSpec()
    frame = np.random.default_rng().integers(0, 256, (*src_hw, 3), dtype=np.uint8)
    cpu = Preprocessor(spec, dst_hw, dynamic=dynamic)
    gpu = GpuPreprocessor(spec, dst_hw, cuda=cuda, dynamic=dynamic, zero_copy=zero_copy)
    geo = cpu.geometry(src_hw)
    expected = np.empty((3, *geo.dst_hw), np.float32)
    t_cpu = cpu(frame, out=expected)
    with cuda.activate():
        stream = cuda.create_stream()
        out_host = cuda.host_empty((3, *geo.dst_hw), np.float32)
        out_dev = cuda.device_empty(out_host.nbytes)
        out_host.array[:] = np.nan
        t_gpu = gpu(frame, dst_ptr=out_dev.ptr, stream=stream)
        cuda.copy_dtoh_async(out_host.array, out_dev.ptr, stream)
        cuda.synchronize(stream)
        got = out_host.array.copy()
        out_host.free()
        out_dev.free()
        gpu.close()
    assert t_gpu == t_cpu
    assert not np.isnan(got).any()
    assert np.abs(got - expected).max() <= 1.0 / 255 + 1e-6


@pytest.mark.parametrize("slot", ["pinned", "mapped"])
def test_gpu_preprocess_from_a_capture_slot_reads_the_slot_itself(cuda, slot):
    """A frame decoded into a pinned (or mapped) capture slot goes to the kernel from that slot: no staging copy
    (the preprocessor's own staging slot is never written), and the same pixels as the CPU path."""
    from edgeinfer.runtime.cuda.base import is_pinned, mapped_device_ptr
    from edgeinfer.runtime.gpu_preprocess import GpuPreprocessor

    spec = PreprocessSpec()
    src = np.random.default_rng(7).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    expected = np.empty((3, 640, 640), np.float32)
    cpu = Preprocessor(spec, (640, 640))
    cpu(src, out=expected)
    gpu = GpuPreprocessor(spec, (640, 640), cuda=cuda)
    with cuda.activate():
        capture = cuda.host_empty(src.shape, np.uint8, mapped=slot == "mapped")
        capture.array[...] = src  # what cap.read(image=slot) leaves there
        assert is_pinned(capture.array) and (mapped_device_ptr(capture.array) is not None) == (slot == "mapped")
        assert not is_pinned(src) and mapped_device_ptr(src) is None
        staging = gpu.frame_slot(1080, 1920)
        staging[...] = 0
        stream = cuda.create_stream()
        out_host = cuda.host_empty((3, 640, 640), np.float32)
        out_dev = cuda.device_empty(out_host.nbytes)
        gpu(capture.array, dst_ptr=out_dev.ptr, stream=stream)
        cuda.copy_dtoh_async(out_host.array, out_dev.ptr, stream)
        cuda.synchronize(stream)
        got = out_host.array.copy()
        assert not staging.any()  # the frame never went through the staging slot
        for buf in (out_host, out_dev, capture):
            buf.free()
        gpu.close()
    assert not is_pinned(capture.array)  # freed memory is forgotten
    assert np.abs(got - expected).max() <= 1.0 / 255 + 1e-6


def test_gpu_preprocess_feeds_runner_without_h2d(cuda):
    """GPU pre-processing writes the runner's device input; the runner then skips that H2D copy."""
    from edgeinfer.runtime.gpu_preprocess import GpuPreprocessor

    n = 3 * 64 * 64
    runner, ctx = _runner(cuda, n)
    gpu = GpuPreprocessor(PreprocessSpec(), (64, 64), cuda=cuda)
    frame = np.random.default_rng().integers(0, 256, (48, 64, 3), dtype=np.uint8)
    runner.host("in")[:] = np.nan  # would poison the result if the H2D copy still ran
    with cuda.activate():
        gpu(frame, dst_ptr=runner.device_ptr("in"), stream=runner.stream)
    runner.submit(0, skip_h2d=("in",))
    out = runner.wait(0)["out"].reshape(3, 64, 64)
    expected = np.empty((3, 64, 64), np.float32)
    Preprocessor(PreprocessSpec(), (64, 64))(frame, out=expected)
    assert np.abs(out - (expected * 2 + 1)).max() <= 2.0 / 255 + 1e-5
    gpu.close()
    runner.close()


@pytest.mark.parametrize("gpu_preprocess,cuda_graph", [(True, False), (False, False), (True, True)])
def test_model_over_tensorrt_backend_with_standin(cuda, gpu_preprocess, cuda_graph):
    """edgeinfer's Model + TensorRTBackend end to end, TensorRT's execution replaced by the kernel."""
    from edgeinfer.model.info import ModelInfo, TensorSpec
    from edgeinfer.runtime.model import Model
    from edgeinfer.runtime.trt_backend import TensorRTBackend

    shape = (1, 3, 64, 96)
    io = [IoTensor("images", True, shape, "float32"), IoTensor("output0", False, shape, "float32")]
    ctx = KernelContext(cuda, int(np.prod(shape)), src="images", dst="output0")
    backend = TensorRTBackend.from_context(cuda, io, ctx, cuda_graph=cuda_graph, reason="gpu-tier stand-in")
    ctx.stream = backend.runner.stream
    info = ModelInfo(inputs=[TensorSpec("images", list(shape))], outputs=[TensorSpec("output0", list(shape))])
    model = Model(backend, info, reason=backend.reason, gpu_preprocess=gpu_preprocess)
    assert (model._gpu_pre is not None) == gpu_preprocess
    rng = np.random.default_rng()
    for hw in [(480, 640), (720, 1280), (480, 640)]:
        frame = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        out = model(frame)["output0"]
        expected = np.empty((3, 64, 96), np.float32)
        Preprocessor(PreprocessSpec(), (64, 96))(frame, out=expected)
        assert np.abs(out - (expected * 2 + 1)).max() <= 2.0 / 255 + 1e-5
    model.close()
    assert backend.runner is None


def test_staging_slot_is_not_refilled_before_the_gpu_read_it(cuda):
    """Frames from ordinary memory go through one pinned staging slot per size; with two frames queued on a busy
    stream (the pipeline submits frame N+1 before N has run) the second must wait for the first's upload."""
    from edgeinfer.runtime.gpu_preprocess import GpuPreprocessor

    spec, hw = PreprocessSpec(), (96, 128)
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(2)]
    gpu = GpuPreprocessor(spec, hw, cuda=cuda)
    n = 1 << 20
    runner, ctx = _runner(cuda, n)
    ctx.spin = 20000  # a long run ahead of both uploads on the same stream
    outs = []
    with cuda.activate():
        bufs = [(cuda.host_empty((3, *hw), np.float32), cuda.device_empty(3 * hw[0] * hw[1] * 4)) for _ in frames]
        runner.submit(0)  # the busy engine
        for frame, (host, dev) in zip(frames, bufs):
            gpu(frame, dst_ptr=dev.ptr, stream=runner.stream)
            cuda.copy_dtoh_async(host.array, dev.ptr, runner.stream)
        runner.wait(0)
        cuda.synchronize(runner.stream)
        outs = [host.array.copy() for host, _ in bufs]
        for host, dev in bufs:
            host.free()
            dev.free()
    gpu.close()
    runner.close()
    for frame, got in zip(frames, outs):
        expected = np.empty((3, *hw), np.float32)
        Preprocessor(spec, hw)(frame, out=expected)
        assert np.abs(got - expected).max() <= 1.0 / 255 + 1e-6


class AheadCountingContext(KernelContext):
    """Counts enqueues made while another slot of the same runner was still pending (submitted ahead)."""

    runner = None
    ahead = 0

    def execute_async_v3(self, stream_handle):
        self.ahead += any(s.pending for s in self.runner._slots)
        return super().execute_async_v3(stream_handle)


@pytest.mark.parametrize("gpu_preprocess", [True, False])
def test_pipeline_queues_the_next_frame_on_the_stream_and_keeps_every_frame_apart(cuda, gpu_preprocess, tmp_path):
    """The whole pipeline over the TensorRT backend (CUDA kernel for TensorRT): frame N+1 is submitted before N is
    collected, and with several frames in flight per stream each result is still its own frame's."""
    import cv2

    from edgeinfer.demo.video import make_video
    from edgeinfer.model.info import ModelInfo, TensorSpec
    from edgeinfer.pipeline.pipeline import Pipeline
    from edgeinfer.runtime.model import Model
    from edgeinfer.runtime.trt_backend import TensorRTBackend

    video = make_video(tmp_path / "v.mp4", frames=40, size=(640, 480), seed=5)  # 480 -> 96 rows: k = 5
    cap, frames = cv2.VideoCapture(str(video)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    shape = (1, 3, 96, 128)
    io = [IoTensor("images", True, shape, "float32"), IoTensor("output0", False, shape, "float32")]
    ctx = AheadCountingContext(cuda, int(np.prod(shape)), spin=20000, src="images", dst="output0")
    backend = TensorRTBackend.from_context(cuda, io, ctx, slots=5, reason="gpu-tier stand-in")
    ctx.stream, ctx.runner = backend.runner.stream, backend.runner
    info = ModelInfo(inputs=[TensorSpec("images", list(shape))], outputs=[TensorSpec("output0", list(shape))])
    model = Model(backend, info, reason=backend.reason, gpu_preprocess=gpu_preprocess)
    assert model.asynchronous and len(model.stage_slots) == 4
    with Pipeline(model, sources=[str(video)], telemetry=None) as p:
        results = list(p)
    model.close()
    assert [r.frame_index for r in results] == list(range(len(frames))) and len(frames) == 40
    assert ctx.ahead >= 10, ctx.ahead  # runs queued behind a pending one
    cpu = Preprocessor(PreprocessSpec(), shape[2:])
    for r in results:
        expected = np.empty(shape[1:], np.float32)
        cpu(frames[r.frame_index], out=expected)
        got = np.asarray(r.detections["output0"]).reshape(shape[1:])
        assert np.abs(got - (expected * 2 + 1)).max() <= 2.0 / 255 + 1e-5, r.frame_index
