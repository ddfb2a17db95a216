"""What goes into the TensorRT calibration cache: no decode head, no float-kept layers, and the
DLA equal-range groups of NvInfer.h (ElementWise inputs, Pooling in/out) unified on the demo plan."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgeinfer.quantize import cache_ranges_for, parse_trt_calibration_cache, write_trt_calibration_cache
from edgeinfer.quantize.cache_ranges import dla_nodes_of


@pytest.fixture(scope="module")
def demo():
    from edgeinfer.demo import demo_model_path
    from edgeinfer.errors import ModelError

    try:
        path = demo_model_path("onnx")
    except ModelError:
        pytest.skip("demo weights not committed in this checkout")
    graph = onnx.load(str(path), load_external_data=False).graph
    rng = np.random.default_rng(0)
    names = [graph.input[0].name] + [o for n in graph.node for o in n.output]
    return path, graph, {name: float(rng.uniform(0.5, 20.0)) for name in names}


def test_cache_leaves_the_yolo_decode_head_out(demo):
    path, graph, ranges = demo
    ranges = dict(ranges, output0=320.0)  # what calibration gives output0: amax ~ imgsz
    plan = cache_ranges_for(ranges, path)
    text = write_trt_calibration_cache(plan.ranges, trt_version="10.3")
    cached = parse_trt_calibration_cache(text).scales
    for head in ("output0", "/model.23/Sigmoid_output_0", "/model.23/dfl/Softmax_output_0",
                 "/model.23/dfl/conv/Conv_output_0", "/model.23/Mul_2_output_0"):
        assert head in ranges and head not in cached
    assert "/model.0/act/Mul_output_0" in cached and "images" in cached
    assert "/model.23/Sigmoid" in plan.head_nodes
    assert plan.to_dict()["planned_int8_share"] > 0.8  # the backbone/neck stay INT8


def test_float_kept_layers_lose_their_scales(demo):
    path, _, ranges = demo
    plan = cache_ranges_for(ranges, path, float_layers=["/model.0/conv/Conv"])
    assert "/model.0/conv/Conv_output_0" not in plan.ranges and "/model.1/conv/Conv_output_0" in plan.ranges


def test_dla_elementwise_and_pooling_ranges_unified_on_the_demo_plan(demo):
    from edgeinfer.placement import plan_placement
    from edgeinfer.profiles import get_profile

    path, graph, ranges = demo
    plan = plan_placement(path, profile=get_profile("orin-nx-16gb"), trt_version="10.3", dla="auto", precision="int8")
    assert plan.decision == "dla"
    on_dla = dla_nodes_of([plan])
    out = cache_ranges_for(ranges, path, dla_nodes=on_dla).ranges
    checked = {"Add": 0, "Mul": 0, "MaxPool": 0}
    for node in graph.node:
        if node.name not in on_dla or node.op_type not in checked:
            continue
        pair = [node.input[0], node.output[0]] if node.op_type == "MaxPool" else [t for t in node.input if t in out]
        if len(pair) == 2:
            assert out[pair[0]] == out[pair[1]], node.name
            assert out[pair[0]] >= max(ranges[pair[0]], ranges[pair[1]])  # the largest, never a clip
            checked[node.op_type] += 1
    assert checked["Add"] >= 5 and checked["Mul"] >= 50 and checked["MaxPool"] == 3
    untouched = cache_ranges_for(ranges, path).ranges  # no DLA: every tensor keeps its own range
    assert any(untouched[n.input[0]] != untouched[n.input[1]] for n in graph.node
               if n.name in on_dla and n.op_type == "Add")


def test_gpu_only_plans_unify_nothing(demo):
    from edgeinfer.placement import plan_placement
    from edgeinfer.profiles import get_profile

    path, _, ranges = demo
    plan = plan_placement(path, profile=get_profile("orin-nano-8gb"), trt_version="10.3", dla="auto", precision="int8")
    assert dla_nodes_of([plan]) == set()
    assert cache_ranges_for(ranges, path, dla_nodes=dla_nodes_of([plan])).unified == []
