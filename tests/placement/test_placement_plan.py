"""Plan-level behaviour: subgraphs, transitions, FLOPs share, auto/forced decisions, errors."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeinfer.errors import ModelError, PlacementError
from edgeinfer.placement import AUTO_MIN_FLOPS_SHARE, PlacementPlan, plan_placement
from edgeinfer.profiles import get_profile

F = TensorProto.FLOAT
ORIN = get_profile("orin-nx-16gb")


def _chain(path, ops, *, shape=(1, 8, 32, 32), batch_dim=None):
    """x -> op0 -> op1 -> ... -> y; "conv" is a 3x3 conv, "bigconv" a 33x33 (GPU-only) conv."""
    nodes, inits, prev = [], [], "x"
    for i, op in enumerate(ops):
        out = "y" if i == len(ops) - 1 else f"t{i}"
        if op in ("conv", "bigconv"):
            k = 3 if op == "conv" else 33
            inits.append(numpy_helper.from_array(np.zeros((8, 8, k, k), np.float32), name=f"w{i}"))
            nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [out], name=f"{op}{i}", kernel_shape=[k, k],
                                          pads=[k // 2] * 4))
        else:
            nodes.append(helper.make_node(op, [prev], [out], name=f"{op}{i}"))
        prev = out
    in_shape = list(shape) if batch_dim is None else [batch_dim, *shape[1:]]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, in_shape)],
                              [helper.make_tensor_value_info("y", F, None)], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _conv_flops(k, hw=32, c=8):
    return 2 * (c * hw * hw) * c * k * k


def test_all_dla_chain_auto_picks_dla(tmp_path):
    plan = plan_placement(_chain(tmp_path / "m.onnx", ["conv", "Relu", "conv", "Sigmoid"]), profile=ORIN,
                          trt_version="10.3")
    assert plan.decision == "dla" and plan.dla_core == 0
    assert plan.dla_subgraphs == 1 and plan.transitions == 0 and plan.dla_flops_share == 1.0
    assert plan.total_flops == 2 * _conv_flops(3)
    assert {n.device for n in plan.nodes} == {"DLA"}
    assert "auto chose DLA core 0" in plan.reason


def test_gpu_node_splits_subgraphs_and_counts_transitions(tmp_path):
    path = _chain(tmp_path / "m.onnx", ["conv", "Relu", "Exp", "Relu", "conv", "Exp", "conv"])
    plan = plan_placement(path, profile=ORIN, trt_version="10.3", dla=0)
    assert plan.dla_subgraphs == 3  # [conv Relu] Exp [Relu conv] Exp [conv]
    assert plan.transitions == 4
    assert plan.decision == "dla" and plan.dla_core == 0 and "forced" in plan.reason
    assert [n.device for n in plan.nodes] == ["DLA", "DLA", "GPU", "DLA", "DLA", "GPU", "DLA"]
    assert plan.counts() == {"dla": 5, "gpu": 2, "folded": 0}


def test_flops_share_and_auto_rejects_mostly_gpu_compute(tmp_path):
    plan = plan_placement(_chain(tmp_path / "m.onnx", ["conv", "Relu", "bigconv"]), profile=ORIN, trt_version="10.3")
    expected = _conv_flops(3) / (_conv_flops(3) + _conv_flops(33))
    assert plan.dla_flops_share == pytest.approx(expected, abs=1e-4)
    assert plan.dla_flops_share < AUTO_MIN_FLOPS_SHARE
    assert plan.decision == "gpu" and plan.dla_core is None
    assert "auto chose GPU" in plan.reason and "FLOPs" in plan.reason
    assert {n.device for n in plan.nodes} == {"GPU"}
    assert [n.dla_capable for n in plan.nodes] == [True, True, False]


def test_auto_rejects_too_many_subgraphs(tmp_path):
    path = _chain(tmp_path / "m.onnx", ["conv", "Exp"] * 5 + ["conv"])
    plan = plan_placement(path, profile=ORIN, trt_version="10.3")
    assert plan.dla_subgraphs == 6 and plan.dla_flops_share == 1.0
    assert plan.decision == "gpu" and "subgraphs" in plan.reason


def test_no_dla_profile_gets_gpu_only_plan(tmp_path):
    path = _chain(tmp_path / "m.onnx", ["conv", "Relu"])
    plan = plan_placement(path, profile=get_profile("orin-nano-8gb"), trt_version="10.3")
    assert plan.decision == "gpu" and "has no DLA" in plan.reason
    assert {n.device for n in plan.nodes} == {"GPU"}
    with pytest.raises(PlacementError, match="has no DLA"):
        plan_placement(path, profile=get_profile("orin-nano-8gb"), trt_version="10.3", dla=0)


def test_forcing_a_core_the_module_lacks(tmp_path):
    path = _chain(tmp_path / "m.onnx", ["conv"])
    with pytest.raises(PlacementError, match=r"orin-nx-8gb has 1 DLA core"):
        plan_placement(path, profile=get_profile("orin-nx-8gb"), trt_version="10.3", dla=1)
    assert plan_placement(path, profile=ORIN, trt_version="10.3", dla="1").dla_core == 1


def test_dynamic_shapes(tmp_path):
    path = _chain(tmp_path / "m.onnx", ["conv", "Relu"], batch_dim="batch")
    with pytest.raises(PlacementError, match="dynamic input shapes") as err:
        plan_placement(path, profile=ORIN, trt_version="10.3", dla=0)
    assert "--imgsz" in err.value.hint
    plan = plan_placement(path, profile=ORIN, trt_version="10.3", dla="auto")
    assert plan.decision == "gpu" and "dynamic input shapes" in plan.reason


def test_trt_without_dla_and_off_and_fp32(tmp_path):
    path = _chain(tmp_path / "m.onnx", ["conv"])
    assert "TensorRT 10.16 has no DLA" in plan_placement(path, profile=ORIN, trt_version="10.16").reason
    assert plan_placement(path, profile=get_profile("agx-orin-64gb"), trt_version="11.4.1").decision == "dla"
    assert plan_placement(path, profile=ORIN, trt_version="11.4.1").decision == "gpu"
    assert "--dla off" in plan_placement(path, profile=ORIN, trt_version="10.3", dla="off").reason
    with pytest.raises(PlacementError, match="fp32"):
        plan_placement(path, profile=ORIN, trt_version="10.3", dla=0, precision="fp32")
    with pytest.raises(PlacementError, match="unknown --dla"):
        plan_placement(path, profile=ORIN, trt_version="10.3", dla="2")


def test_shape_ops_are_folded_and_not_transitions(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
        helper.make_node("Shape", ["c"], ["s"], name="shape"),
        helper.make_node("Constant", [], ["k"], name="const", value=numpy_helper.from_array(np.array([1, 8, 16, 64], np.int64))),
        helper.make_node("Reshape", ["c", "k"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [1, 8, 32, 32])],
                              [helper.make_tensor_value_info("y", F, None), helper.make_tensor_value_info("s", TensorProto.INT64, None)],
                              initializer=[numpy_helper.from_array(np.zeros((8, 8, 1, 1), np.float32), name="w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    plan = plan_placement(tmp_path / "m.onnx", profile=ORIN, trt_version="10.3")
    devices = {n.name: n.device for n in plan.nodes}
    assert devices == {"conv": "DLA", "shape": "folded", "const": "folded", "reshape": "DLA", "relu": "DLA"}
    assert plan.dla_subgraphs == 1 and plan.transitions == 0


def test_plan_round_trips_through_dict(tmp_path):
    plan = plan_placement(_chain(tmp_path / "m.onnx", ["conv", "Exp", "conv"]), profile=get_profile("xavier-nx"),
                          trt_version="8.5.2")
    data = plan.to_dict()
    assert PlacementPlan.from_dict(data) == plan
    assert plan.decision == "dla" and plan.dla_subgraphs == 2  # 100% of FLOPs in 2 subgraphs
    assert data["summary"]["gpu"] == 1 and data["summary"]["top_reasons"][0]["rule"] == "native-op"


def test_corrupt_onnx_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file at all")
    with pytest.raises(ModelError, match="cannot read ONNX model"):
        plan_placement(bad, profile=ORIN, trt_version="10.3")


def _graph(path, nodes, inits):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [1, 8, 32, 32])],
                              [helper.make_tensor_value_info("y", F, None)],
                              initializer=[numpy_helper.from_array(np.zeros((8, 8, 3, 3), np.float32), name=n) for n in inits])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _conv(name, x, y, w):
    return helper.make_node("Conv", [x, w], [y], name=name, kernel_shape=[3, 3], pads=[1, 1, 1, 1])


def test_path_through_gpu_and_back_splits_a_connected_dla_group(tmp_path):
    # conv0 -> Exp (GPU) -> Add <- Relu <- conv0 ; Add -> conv1: one connected DLA component, but the
    # Add must wait for the GPU Exp, so TensorRT needs two loadables: {conv0, relu} and {add, conv1}.
    nodes = [_conv("conv0", "x", "a", "w0"), helper.make_node("Exp", ["a"], ["e"], name="exp"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"), helper.make_node("Add", ["e", "r"], ["s"], name="add"),
             _conv("conv1", "s", "y", "w1")]
    plan = plan_placement(_graph(tmp_path / "m.onnx", nodes, ["w0", "w1"]), profile=ORIN, trt_version="10.3", dla=0)
    assert {n.name: n.device for n in plan.nodes} == {"conv0": "DLA", "exp": "GPU", "relu": "DLA", "add": "DLA", "conv1": "DLA"}
    assert plan.dla_subgraphs == 2 and plan.transitions == 2


def test_gpu_branch_independent_of_dla_does_not_split(tmp_path):
    # Exp reads the graph input, not a DLA output: {conv0, add, conv1} can be one loadable.
    nodes = [_conv("conv0", "x", "a", "w0"), helper.make_node("Exp", ["x"], ["e"], name="exp"),
             helper.make_node("Add", ["a", "e"], ["s"], name="add"), _conv("conv1", "s", "y", "w1")]
    plan = plan_placement(_graph(tmp_path / "m.onnx", nodes, ["w0", "w1"]), profile=ORIN, trt_version="10.3")
    assert plan.dla_subgraphs == 1 and plan.transitions == 1 and plan.decision == "dla"


def test_dla_island_without_compute_is_pinned_to_gpu(tmp_path):
    plan = plan_placement(_chain(tmp_path / "m.onnx", ["conv", "Exp", "Relu", "Exp", "conv"]), profile=ORIN,
                          trt_version="10.3", dla=0)
    assert [n.device for n in plan.nodes] == ["DLA", "GPU", "GPU", "GPU", "DLA"]
    relu = plan.nodes[2]
    assert relu.dla_capable and relu.rule == "dla-island" and "pinned to the GPU" in relu.reason
    assert plan.dla_subgraphs == 2 and plan.transitions == 2  # the island would have added 2 more
