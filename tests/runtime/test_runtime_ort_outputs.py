"""ONNX Runtime backend, dynamic outputs: bound to preallocated arrays from the second call with the same input
shapes (no output tensors allocated per call), and still right when an output's shape depends on the data."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgeinfer.runtime.ort_backend import OnnxRuntimeBackend


def _model(path, nodes, inputs, outputs):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_dynamic_outputs_are_reused_per_input_shape(tmp_path):
    path = _model(tmp_path / "double.onnx", [helper.make_node("Add", ["x", "x"], ["y"])],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])])
    be = OnnxRuntimeBackend(path, device="cpu", intra_op_threads=1)
    seen = {}
    rng = np.random.default_rng(0)
    for n in (2, 5, 2, 5, 2):
        x = rng.standard_normal((n, 3)).astype(np.float32)
        be.input_buffer("x", shape=(n, 3))[...] = x
        y = be.infer()["y"]
        np.testing.assert_array_equal(y, 2 * x)
        seen.setdefault(n, []).append(y)  # kept alive, so a fresh array per call could not reuse an address
    # the first call's outputs become the arrays ORT writes into for that input shape from then on
    assert all(y is seen[2][0] for y in seen[2]) and all(y is seen[5][0] for y in seen[5])
    np.testing.assert_array_equal(seen[2][0], 2 * x)  # and it holds the last call's result


def test_data_dependent_output_shape_falls_back(tmp_path):
    path = _model(tmp_path / "nonzero.onnx", [helper.make_node("NonZero", ["x"], ["idx"])],
                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                  [helper.make_tensor_value_info("idx", TensorProto.INT64, [1, "k"])])
    be = OnnxRuntimeBackend(path, device="cpu", intra_op_threads=1)
    for x in ([0, 1, 0, 2], [3, 1, 0, 2], [0, 0, 0, 2], [1, 1, 1, 1]):
        be.input_buffer("x", shape=(4,))[...] = np.array(x, np.float32)
        np.testing.assert_array_equal(be.infer()["idx"], np.nonzero(np.array(x))[0][None])
