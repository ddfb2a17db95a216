"""Helpers for pipeline tests (imported by name: a unique module, not conftest): a tiny ONNX model run by real ONNX Runtime, and real video files.

The model averages the image (3x3 mean conv + global average pool), so each result carries
the mean brightness of *its* frame: tests make frame i a flat grey of level(i) and can check
that every result belongs to the frame it claims, even after multi-instance re-ordering.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgeinfer.runtime.detections import Detections

SIDE = 32


def level(i: int) -> int:
    """Grey level of test frame i (distinct for neighbouring frames, exact under mp4v)."""
    return 20 + (i * 37) % 200


def build_mean_onnx(path: Path, *, batch="N") -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.full((1, 3, 3, 3), 1.0 / 27.0, np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["c"], kernel_shape=[3, 3]),
         helper.make_node("GlobalAveragePool", ["c"], ["g"]),
         helper.make_node("Flatten", ["g"], ["output0"], axis=1)],
        "mean",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 1])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


class OrtMeanModel:
    """Minimal Model protocol over a real onnxruntime session: infer_batch(frames) -> list[Detections]."""

    def __init__(self, path: Path, *, delay: float = 0.0, name: str = "onnxruntime") -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.delay = delay
        self.backend_name = name
        self.path = str(path)
        self.info = None
        self.calls = 0
        self.closed = False

    def infer_batch(self, frames):
        import cv2

        self.calls += 1
        batch = np.stack([cv2.resize(f, (SIDE, SIDE), interpolation=cv2.INTER_AREA) for f in frames])
        x = batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        out = self.session.run(None, {"images": x})[0]
        if self.delay:
            time.sleep(self.delay)
        return [Detections([[0, 0, f.shape[1] - 1, f.shape[0] - 1]], [float(v[0])], [0], {0: "frame"}, f.shape[:2])
                for f, v in zip(frames, out)]

    def close(self) -> None:
        self.closed = True


class FailingModel(OrtMeanModel):
    """A backend that breaks at run time after ``ok_batches`` batches (what a lost GPU/DLA looks like)."""

    def __init__(self, path: Path, *, ok_batches: int, **kw) -> None:
        super().__init__(path, name="tensorrt", **kw)
        self.ok_batches = ok_batches

    def infer_batch(self, frames):
        if self.calls >= self.ok_batches:
            self.calls += 1
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().infer_batch(frames)


def write_levels_video(path: Path, n: int, *, size=(160, 120), fps=30) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((size[1], size[0], 3), level(i), np.uint8))
    writer.release()
    return path


def mean_of(result) -> float:
    return float(result.detections.confidence[0]) * 255.0
