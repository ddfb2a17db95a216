"""Layers the accuracy gate keeps in float stay out of INT8 on the calibration-cache route too."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeinfer.packager.int8 import _without_float_layers


def test_cache_ranges_drop_exactly_the_outputs_of_float_kept_layers(tmp_path):
    w = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="conv_a"),
             helper.make_node("Relu", ["a"], ["b"], name="relu"),
             helper.make_node("Conv", ["b", "w"], ["y"], name="conv_y")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], [w])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    ranges = {"x": 1.0, "a": 2.0, "b": 2.0, "y": 3.0}
    assert _without_float_layers(ranges, path, ["conv_y"]) == {"x": 1.0, "a": 2.0, "b": 2.0}
    assert _without_float_layers(ranges, path, ["conv_a", "relu"]) == {"x": 1.0, "y": 3.0}
    assert _without_float_layers(ranges, path, []) == ranges
