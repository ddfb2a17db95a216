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
