"""jetson tier: the TensorRT backend on real TensorRT (a Jetson with JetPack). Skipped elsewhere.

Run on the device from a checkout: ``python -m pytest tests/runtime/test_runtime_jetson.py -m jetson -v``.
The demo detector's ONNX is built into an FP16 engine here (GPU, and DLA0 where the module has
DLA), then run through ``TensorRTBackend`` + ``Model`` and compared with ONNX Runtime on the
same scenes.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgeinfer._deps import is_available

pytestmark = pytest.mark.jetson


def _build_engine(onnx_path, out_path, *, dla_core=None):
    from edgeinfer.engine import trt_shim

    trt = pytest.importorskip("tensorrt")
    logger = trt_shim.make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(trt_shim.network_flags(trt, strongly_typed=False))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), trt_shim.parser_errors(parser)
    config = builder.create_builder_config()
    trt_shim.set_workspace(trt, config, 1024)
    if trt_shim.has_precision_flags(trt):
        trt_shim.set_precision_flags(trt, config, "fp16")
    if dla_core is not None:
        if int(builder.num_DLA_cores) <= dla_core:
            pytest.skip(f"this module has no DLA core {dla_core}")
        trt_shim.configure_dla(trt, builder, config, dla_core=dla_core)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "; ".join(logger.errors)
    out_path.write_bytes(bytes(plan))
    return out_path


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("dla_core", [None, 0])
@pytest.mark.parametrize("memory,cuda_graph", [("staged", False), ("mapped", False), ("auto", True)])
@pytest.mark.parametrize("cuda_impl", ["cuda-python", "pycuda"])
def test_tensorrt_backend_matches_onnxruntime(tmp_path, dla_core, memory, cuda_graph, cuda_impl):
    if not is_available("cuda.bindings" if cuda_impl == "cuda-python" else "pycuda"):
        pytest.skip(f"{cuda_impl} not installed")
    import edgeinfer
    from edgeinfer.demo import demo_model_path, render_scene
    from edgeinfer.runtime.model import Model
    from edgeinfer.runtime.trt_backend import TensorRTBackend

    onnx_path = demo_model_path("onnx")
    engine = _build_engine(onnx_path, tmp_path / "demo.engine", dla_core=dla_core)
    reference = edgeinfer.load(onnx_path, backend="onnxruntime", device="cpu", warmup=0)
    backend = TensorRTBackend(engine, dla_core=dla_core, memory=memory, cuda_graph=cuda_graph, cuda_impl=cuda_impl)
    if cuda_graph and dla_core is not None:  # DLA + CUDA graph capture fails on Orin (NVIDIA/TensorRT#3524)
        assert not backend.runner.cuda_graph and "CUDA graph off" in backend.reason
    model = Model(backend, reference.info, reason=backend.reason)
    model.warmup(2)
    try:
        for seed in range(4):
            scene, _ = render_scene([9, 9, seed], imgsz=320)
            frame = np.full((480, 640, 3), 90, np.uint8)
            frame[80:400, 160:480] = scene
            ours, ref = model(frame), reference(frame)
            assert abs(len(ours) - len(ref)) <= 1  # FP16 may move one borderline score across conf
            for box, cls in zip(ref.xyxy, ref.class_id):
                ious = [_iou(box, b) for b in ours.xyxy]
                assert ious and max(ious) > 0.9 and ours.class_id[int(np.argmax(ious))] == cls
    finally:
        model.close()
        reference.close()
