"""Actual placement from inspector JSON vs the static plan."""
from __future__ import annotations

from edgeinfer.engine.placement_check import classify_layer, compare_placement, layer_nodes, node_devices

ORDER = ["/c1", "/s1", "/m1", "/c2", "/r", "/out"]


def test_classification():
    assert classify_layer({"Name": "{ForeignNode[/c1.../c2]}", "LayerType": "DLA"}, dla_core=0) == "dla"
    assert classify_layer({"Name": "{ForeignNode[/c1.../c2]}", "LayerType": "Myelin"}, dla_core=0) == "gpu"
    assert classify_layer({"Name": "{ForeignNode[/c1.../c2]}", "LayerType": "kgen"}, dla_core=None) == "gpu"
    assert classify_layer({"Name": "Reformatting CopyNode for Input Tensor 0 to /r", "LayerType": "Reformat"},
                          dla_core=0) == "reformat"
    assert classify_layer("/c1 + /s1", dla_core=0) == "gpu"  # LAYER_NAMES_ONLY gives plain strings


def test_nodes_from_metadata_fused_names_and_ranges():
    assert layer_nodes({"Name": "x", "Metadata": "[ONNX Layer: /c1]\x1f[ONNX Layer: /s1]"}, ORDER) == ["/c1", "/s1"]
    assert layer_nodes({"Name": "/c2 + /r"}, ORDER) == ["/c2", "/r"]
    assert layer_nodes({"Name": "{ForeignNode[/s1.../c2]}"}, ORDER) == ["/s1", "/m1", "/c2"]


def test_differences_listed_against_the_plan():
    info = {"Layers": [{"Name": "{ForeignNode[/c1.../m1]}", "LayerType": "DLA"},
                       {"Name": "Reformatting CopyNode for Output Tensor 0 to {ForeignNode[/c1.../m1]}", "LayerType": "Reformat"},
                       {"Name": "/c2 + /r", "LayerType": "CaskConvolution"}, {"Name": "/out", "LayerType": "Softmax"}]}
    actual = node_devices(info, node_order=ORDER, dla_core=0)
    assert actual == {"/c1": "dla", "/s1": "dla", "/m1": "dla", "/c2": "gpu", "/r": "gpu", "/out": "gpu"}
    plan = {"nodes": [{"name": n, "device": "dla"} for n in ["/c1", "/s1", "/m1", "/c2"]] +
                     [{"name": "/r", "device": "gpu"}, {"name": "/out", "device": "gpu"}, {"name": "/const", "device": "gpu"}]}
    result = compare_placement(plan, actual)
    assert result["differences"] == [{"node": "/c2", "planned": "dla", "actual": "gpu"}]
    assert result["planned"] == {"dla": 4, "gpu": 3} and result["actual"] == {"dla": 3, "gpu": 3}
    assert result["not_reported"] == ["/const"]


def test_plan_devices_in_capitals_and_folded_nodes():
    plan = {"nodes": [{"name": "/c1", "device": "DLA"}, {"name": "/k", "device": "folded"}, {"name": "/out", "device": "GPU"}]}
    result = compare_placement(plan, {"/c1": "gpu", "/out": "gpu"})
    assert result["differences"] == [{"node": "/c1", "planned": "dla", "actual": "gpu"}]
    assert result["not_reported"] == [] and result["planned"] == {"dla": 1, "gpu": 1}


# Inspector JSON as TensorRT prints it (DETAILED verbosity): TensorRT developer guide, "Engine Inspector".
_CONV_INT8 = {"Name": "node_of_gpu_0/res4_0_branch2a_1 + node_of_gpu_0/res4_0_branch2a_bn_1", "LayerType": "CaskConvolution",
              "Outputs": [{"Name": "gpu_0/res4_0_branch2a_bn_2", "Location": "Device", "Dimensions": [16, 256, 28, 28],
                           "Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format."}]}
_CONV_FP16 = {"Name": "/model.22/cv3.0/cv3.0.2/Conv", "LayerType": "CaskConvolution",
              "Outputs": [{"Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}]}
_HEAD_FP32 = {"Name": "/model.22/Sigmoid", "LayerType": "PointWiseV2", "Outputs": [{"Format/Datatype": "Row major linear FP32"}]}
_REFORMAT = {"Name": "Reformatting CopyNode for Input Tensor 0 to /model.0/conv/Conv", "LayerType": "Reformat",
             "Outputs": [{"Format/Datatype": "Row major linear FP16 format"}]}


def test_per_layer_precision_and_int8_share_from_the_inspector():
    from edgeinfer.engine.placement_check import int8_share, summarize_layers

    layers = summarize_layers({"Layers": [_CONV_INT8, _CONV_FP16, _HEAD_FP32, _REFORMAT]}, dla_core=None)
    assert [(x["precision"], x["device"]) for x in layers] == [("int8", "gpu"), ("fp16", "gpu"), ("fp32", "gpu"),
                                                               ("fp16", "reformat")]
    assert int8_share(layers) == {"int8": 1, "compute": 2, "unknown": 0, "share": 0.5}
    # LAYER_NAMES_ONLY verbosity gives bare names: nothing is known, nothing is claimed
    bare = summarize_layers({"Layers": ["/model.0/conv/Conv"]}, dla_core=None)
    assert bare[0]["precision"] == "unknown" and int8_share(bare)["share"] == 0.0
