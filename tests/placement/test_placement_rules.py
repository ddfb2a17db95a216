"""Table-driven DLA rule tests on one-node ONNX graphs built here with onnx.helper."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeinfer.placement import RULES, plan_placement
from edgeinfer.profiles import get_profile

F = TensorProto.FLOAT


def _model(path, nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F, s) for n, s in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), name=k) for k, v in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def _w(cout, cin, k1, k2=None):
    return np.zeros((cout, cin, k1, k2 or k1), np.float32)


def _conv(kernel=3, stride=1, pad=1):
    return dict(
        nodes=[helper.make_node("Conv", ["x", "w"], ["y"], name="n", kernel_shape=[kernel, kernel],
                                strides=[stride, stride], pads=[pad] * 4)],
        inputs=[("x", [1, 8, 64, 64])], outputs=[("y", None)], inits=[("w", _w(8, 8, kernel))])


def _unary(op, shape=(1, 8, 16, 16), **attrs):
    return dict(nodes=[helper.make_node(op, ["x"], ["y"], name="n", **attrs)], inputs=[("x", list(shape))], outputs=[("y", None)])


def _binary(op):
    return dict(nodes=[helper.make_node(op, ["x", "z"], ["y"], name="n")],
                inputs=[("x", [1, 8, 16, 16]), ("z", [1, 8, 16, 16])], outputs=[("y", None)])


def _concat(axis):
    return dict(nodes=[helper.make_node("Concat", ["a", "b"], ["y"], name="n", axis=axis)],
                inputs=[("a", [1, 8, 16, 16]), ("b", [1, 8, 16, 16])], outputs=[("y", None)])


def _slice(shape, starts, ends, axes, steps=None):
    inits = [("s", np.array(starts, np.int64)), ("e", np.array(ends, np.int64)), ("ax", np.array(axes, np.int64))]
    ins = ["x", "s", "e", "ax"]
    if steps is not None:
        inits.append(("st", np.array(steps, np.int64)))
        ins.append("st")
    return dict(nodes=[helper.make_node("Slice", ins, ["y"], name="n")], inputs=[("x", list(shape))],
                outputs=[("y", None)], inits=inits)


def _resize(scale, mode, ctm="asymmetric", nearest="floor"):
    return dict(
        nodes=[helper.make_node("Resize", ["x", "", "sc"], ["y"], name="n", mode=mode,
                                coordinate_transformation_mode=ctm, nearest_mode=nearest)],
        inputs=[("x", [1, 8, 16, 16])], outputs=[("y", None)],
        inits=[("sc", np.array([1, 1, scale, scale], np.float32))])


def _resize_sizes(out_hw):
    return dict(
        nodes=[helper.make_node("Resize", ["x", "", "", "sz"], ["y"], name="n", mode="nearest",
                                coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
        inputs=[("x", [1, 8, 16, 16])], outputs=[("y", None)],
        inits=[("sz", np.array([1, 8, out_hw, out_hw], np.int64))])


def _matmul(const_b):
    if const_b:
        return dict(nodes=[helper.make_node("MatMul", ["x", "b"], ["y"], name="n")], inputs=[("x", [1, 8, 16, 16])],
                    outputs=[("y", None)], inits=[("b", np.zeros((16, 16), np.float32))])
    return dict(nodes=[helper.make_node("MatMul", ["x", "z"], ["y"], name="n")],
                inputs=[("x", [1, 8, 16, 16]), ("z", [1, 8, 16, 16])], outputs=[("y", None)])


def _gather():
    return dict(nodes=[helper.make_node("Gather", ["x", "i"], ["y"], name="n", axis=1)], inputs=[("x", [1, 8, 16, 16])],
                outputs=[("y", None)], inits=[("i", np.array([0, 2], np.int64))])


def _deconv(pad, stride=2):
    return dict(nodes=[helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="n", kernel_shape=[2, 2],
                                        strides=[stride, stride], pads=[pad] * 4)],
                inputs=[("x", [1, 8, 16, 16])], outputs=[("y", None)], inits=[("w", _w(8, 8, 2))])


CASES = [
    # (id, graph spec, device profile, expected rule id or None = runs on DLA)
    ("conv k3 ok", _conv(3), "orin-nx-16gb", None),
    ("conv k33", _conv(33, pad=16), "orin-nx-16gb", "conv-kernel"),
    ("conv stride 9", _conv(3, stride=9), "orin-nx-16gb", "conv-stride"),
    ("conv pad >= kernel", _conv(3, pad=3), "orin-nx-16gb", "conv-padding"),
    ("deconv pad 0 ok", _deconv(0), "orin-nx-16gb", None),
    ("deconv pad 1", _deconv(1), "orin-nx-16gb", "deconv-pad-groups"),
    ("deconv stride 16 ok (not conv's 8)", _deconv(0, stride=16), "orin-nx-16gb", None),
    ("deconv stride 33", _deconv(0, stride=33), "orin-nx-16gb", "deconv-stride"),
    ("relu", _unary("Relu"), "orin-nx-16gb", None),
    ("exp not native", _unary("Exp"), "orin-nx-16gb", "native-op"),
    ("leaky relu orin ok", _unary("LeakyRelu", alpha=0.1), "orin-nx-16gb", None),
    ("leaky relu xavier", _unary("LeakyRelu", alpha=0.1), "xavier-nx", "leaky-relu-xavier"),
    ("maxpool 2 ok", _unary("MaxPool", kernel_shape=[2, 2], strides=[2, 2]), "orin-nx-16gb", None),
    ("maxpool window 9", _unary("MaxPool", kernel_shape=[9, 9], strides=[1, 1]), "orin-nx-16gb", "pool-window"),
    ("avgpool stride 17", _unary("AveragePool", shape=(1, 8, 64, 64), kernel_shape=[2, 2], strides=[17, 17]),
     "orin-nx-16gb", "pool-window"),
    ("maxpool pad 7 ok", _unary("MaxPool", shape=(1, 8, 64, 64), kernel_shape=[8, 8], strides=[1, 1], pads=[7] * 4),
     "orin-nx-16gb", None),
    ("maxpool pad 8", _unary("MaxPool", shape=(1, 8, 64, 64), kernel_shape=[8, 8], strides=[1, 1], pads=[8] * 4),
     "orin-nx-16gb", "pool-padding"),
    ("avgpool exclusive pad orin ok", _unary("AveragePool", kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4),
     "orin-nx-16gb", None),
    ("avgpool exclusive pad xavier", _unary("AveragePool", kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4),
     "xavier-nx", "avgpool-inclusive-xavier"),
    ("avgpool inclusive pad xavier ok", _unary("AveragePool", kernel_shape=[3, 3], strides=[1, 1], pads=[1] * 4,
                                               count_include_pad=1), "xavier-nx", None),
    ("global avg pool", _unary("GlobalAveragePool"), "orin-nx-16gb", "global-avg-pool"),
    ("add", _binary("Add"), "orin-nx-16gb", None),
    ("div on 10.3", _binary("Div"), "orin-nx-16gb", "div"),
    ("concat axis 1 ok", _concat(1), "orin-nx-16gb", None),
    ("concat axis 2", _concat(2), "orin-nx-16gb", "concat-axis"),
    ("slice 4-D channels ok", _slice((1, 8, 16, 16), [0], [4], [1]), "orin-nx-16gb", None),
    ("slice 3-D", _slice((1, 8, 16), [0], [4], [1]), "orin-nx-16gb", "slice"),
    ("slice step 2", _slice((1, 8, 16, 16), [0], [8], [1], steps=[2]), "orin-nx-16gb", "slice"),
    ("slice batch", _slice((2, 8, 16, 16), [0], [1], [0]), "orin-nx-16gb", "slice"),
    ("gather", _gather(), "orin-nx-16gb", "gather"),
    ("resize nearest x3 ok", _resize(3, "nearest"), "orin-nx-16gb", None),
    ("resize nearest x33", _resize(33, "nearest"), "orin-nx-16gb", "resize"),
    ("resize linear x5", _resize(5, "linear", ctm="half_pixel"), "orin-nx-16gb", "resize"),
    ("resize linear x2 ok", _resize(2, "linear", ctm="half_pixel"), "orin-nx-16gb", None),
    ("resize nearest x1.5", _resize(1.5, "nearest"), "orin-nx-16gb", "resize"),
    ("resize by sizes", _resize_sizes(32), "orin-nx-16gb", "resize-sizes"),
    ("softmax channel ok", _unary("Softmax", axis=1), "orin-nx-16gb", None),
    ("softmax channel xavier", _unary("Softmax", axis=1), "xavier-nx", "softmax-xavier"),
    ("relu xavier ok", _unary("Relu"), "xavier-nx", None),
    ("softmax on 2-D", _unary("Softmax", shape=(1, 16), axis=1), "orin-nx-16gb", "softmax-axis"),
    ("matmul const ok", _matmul(True), "orin-nx-16gb", None),
    ("matmul runtime", _matmul(False), "orin-nx-16gb", "matmul-const"),
    ("dim above 8192", _unary("Relu", shape=(1, 1, 1, 9000)), "orin-nx-16gb", "max-dims"),
]


@pytest.mark.parametrize("spec,device,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_table(tmp_path, spec, device, expected):
    path = _model(tmp_path / "m.onnx", spec["nodes"], spec["inputs"], spec["outputs"], spec.get("inits", ()))
    plan = plan_placement(path, profile=get_profile(device), trt_version="10.3" if device != "xavier-nx" else "8.5.2")
    (node,) = [n for n in plan.nodes if n.name == "n"]
    assert node.rule == expected, node.reason
    assert node.dla_capable == (expected is None)
    if expected is not None:
        assert node.source and "facts" not in node.source  # a public source, not a private notes file
        assert plan.decision == "gpu"  # nothing left for the DLA: auto keeps the GPU


def test_every_rule_cites_a_source():
    ids = [r.rule_id for r in RULES]
    assert len(ids) == len(set(ids))
    for rule in RULES:
        assert rule.source.strip() and rule.ops


def test_reshape_next_to_concat_goes_to_gpu(tmp_path):
    nodes = [helper.make_node("Concat", ["a", "b"], ["c"], name="cat", axis=1),
             helper.make_node("Reshape", ["c", "shape"], ["y"], name="n")]
    path = _model(tmp_path / "m.onnx", nodes, [("a", [1, 8, 4, 4]), ("b", [1, 8, 4, 4])], [("y", None)],
                  [("shape", np.array([1, 16, 16, 1], np.int64))])
    plan = plan_placement(path, profile=get_profile("orin-nx-16gb"), trt_version="10.3")
    assert {n.name: n.rule for n in plan.nodes} == {"cat": None, "n": "reshape-adjacent"}
