"""ONNX Runtime backend with dynamic shapes: a new batch size gets outputs of the new shape."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeinfer.runtime.ort_backend import OnnxRuntimeBackend


def _dynamic_conv(path):
    weight = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, "h", "w"])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return weight


def _reference(x, weight):
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((x.shape[0], weight.shape[0], x.shape[2], x.shape[3]), np.float32)
    for i in range(3):
        for j in range(3):
            patch = padded[:, :, i:i + x.shape[2], j:j + x.shape[3]]
            out += np.einsum("bchw,oc->bohw", patch, weight[:, :, i, j])
    return out


def test_batch_and_size_changes_give_outputs_of_the_new_shape(tmp_path):
    weight = _dynamic_conv(tmp_path / "dyn.onnx")
    backend = OnnxRuntimeBackend(tmp_path / "dyn.onnx", device="cpu", intra_op_threads=1)
    rng = np.random.default_rng(1)
    for shape in [(1, 3, 8, 8), (4, 3, 8, 8), (2, 3, 16, 8), (4, 3, 8, 8), (1, 3, 8, 8)]:
        x = rng.standard_normal(shape).astype(np.float32)
        backend.input_buffer("x", shape=shape)[...] = x
        y = backend.infer()["y"]
        assert y.shape == (shape[0], 4, shape[2], shape[3])
        np.testing.assert_allclose(y, _reference(x, weight), rtol=1e-4, atol=1e-4)
