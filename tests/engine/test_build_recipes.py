"""Build recipes and trtexec command lines per TensorRT era."""
from __future__ import annotations

import shlex

import pytest

from edgeinfer.engine import make_build_recipe, make_build_recipes, trtexec_command
from edgeinfer.errors import BuildError

AGX = {"name": "agx-orin-64gb", "compute_capability": "8.7", "dla_cores": 2, "families": ["orin", "agx-orin"]}
NANO = {"name": "jetson-nano", "compute_capability": "5.3", "dla_cores": 0, "families": ["nano"]}
ARTIFACTS = {"onnx": "artifacts/m.onnx", "qdq_onnx": "artifacts/q.onnx", "fp16_onnx": "artifacts/h.onnx",
             "calib_cache": "artifacts/c.cache"}
PLAN = {"dla_core": 0, "gpu_layers": ["/model.23/Concat"]}
SHAPES = {"images": [1, 3, 320, 320]}


def recipe(trt, *, jetpack="6.2", precision="int8", profile=AGX, placement=PLAN, artifacts=ARTIFACTS, **kw):
    return make_build_recipe(profile=profile, jetpack={"jetpack": jetpack, "l4t": "36.4.3", "tensorrt": trt},
                             precision=precision, artifacts=artifacts, placement=placement, input_shapes=SHAPES,
                             workspace_mb=2048, **kw)


def args(r):
    return shlex.split(r["trtexec"])


@pytest.mark.parametrize("trt, workspace, opt_level", [("8.5", "--workspace=2048", False), ("8.6", "--workspace=2048", True),
                                                       ("10.3", "--memPoolSize=workspace:2048M", True)])
def test_int8_dla_recipe_per_weakly_typed_era(trt, workspace, opt_level):
    r = recipe(trt)
    a = args(r)
    assert a[0] == "/usr/src/tensorrt/bin/trtexec"
    assert a[1:3] == ["--onnx=artifacts/m.onnx", f"--saveEngine={r['engine_file']}"]
    assert {"--fp16", "--int8", "--calib=artifacts/c.cache", "--useDLACore=0", "--allowGPUFallback", workspace,
            "--profilingVerbosity=detailed", f"--exportLayerInfo={r['layer_info_file']}",
            f"--timingCacheFile={r['timing_cache_file']}"} <= set(a)
    assert ("--builderOptimizationLevel=3" in a) == opt_level
    # --layerDeviceTypes exists in trtexec from 8.6 (sampleOptions.cpp); 8.5 says the pins are not applied
    assert ("--layerDeviceTypes=/model.23/Concat:GPU" in a) == (trt != "8.5")
    assert any("--layerDeviceTypes" in n and "NOT apply" in n for n in r["notes"]) == (trt == "8.5")
    assert "--stronglyTyped" not in a
    assert r["engine_file"].endswith("_dla0.engine") and f"_trt{trt}_" in r["engine_file"]
    assert r["supported_by_edgeinfer_build"] and r["api_era"] == "named-io"


def test_trt_10_16_dla_request_builds_on_the_gpu_with_the_reason():
    # TensorRT 11.4.1 docs, "Working with DLA" (docs.nvidia.com/deeplearning/tensorrt/11.4.1/inference-library/
    # work-with-dla.html): 10.7 was the last 10.x with DLA; the rule is shared with static placement.
    r = recipe("10.16")
    a = args(r)
    assert not [x for x in a if x.startswith("--useDLACore")]
    assert r["dla_core"] is None and any("no DLA" in n for n in r["notes"])
    assert "--int8" in a and "--calib=artifacts/c.cache" in a


@pytest.mark.parametrize("precision, onnx", [("int8", "artifacts/q.onnx"), ("fp16", "artifacts/h.onnx"),
                                              ("fp32", "artifacts/m.onnx")])
def test_trt11_uses_typed_onnx_and_no_precision_flags(precision, onnx):
    r = recipe("11.1", precision=precision)
    a = args(r)
    assert a[1] == f"--onnx={onnx}"
    assert not {"--fp16", "--int8", "--stronglyTyped"} & set(a)
    assert not [x for x in a if x.startswith("--calib")]
    assert r["network"] == "strongly-typed" and r["api_era"] == "strongly-typed"
    assert r["dla_core"] is None and ("no DLA" in r["notes"][0] or precision == "fp32")  # 11.1 has no DLA at all


def test_trt11_4_dla_only_on_agx_orin_with_jetpack_722():
    assert recipe("11.4.1", jetpack="7.2.2")["dla_core"] == 0
    assert recipe("11.4.1", jetpack="7.2.1")["dla_core"] is None
    orin_nx = dict(AGX, name="orin-nx-16gb", families=["orin", "orin-nx"])
    r = recipe("11.4.1", jetpack="7.2.2", profile=orin_nx)
    assert r["dla_core"] is None and "only on Jetson AGX Orin" in r["notes"][0]


def test_strongly_typed_on_10x_when_asked():
    r = recipe("10.3", placement={}, strongly_typed=True)
    assert r["network"] == "strongly-typed" and "--stronglyTyped" in args(r) and "--int8" not in args(r)
    assert args(r)[1] == "--onnx=artifacts/q.onnx"


def test_int8_without_cache_uses_qdq_on_gpu_and_refuses_without_either():
    no_cache = {k: v for k, v in ARTIFACTS.items() if k != "calib_cache"}
    r = recipe("10.3", placement={}, artifacts=no_cache)
    assert args(r)[1] == "--onnx=artifacts/q.onnx" and "--int8" in args(r) and r["calib_cache"] is None
    r = recipe("10.3", artifacts={"onnx": "artifacts/m.onnx"})
    assert not r["supported_by_edgeinfer_build"] and "lacks" in r["refusal"]


def test_jetpack4_nano_gets_a_trtexec_command_but_no_edgeinfer_build():
    r = recipe("8.2", jetpack="4.6.4", precision="fp16", profile=NANO, placement={})
    assert not r["supported_by_edgeinfer_build"] and "JetPack 4" in r["refusal"]
    assert r["api_era"] == "binding"
    a = args(r)
    assert "--fp16" in a and "--workspace=2048" in a and "--memPoolSize=workspace:2048M" not in a
    assert not [x for x in a if x.startswith("--useDLACore")]


def test_dla_requests_that_cannot_hold_fall_back_to_gpu_with_a_note():
    assert recipe("10.3", profile=dict(AGX, dla_cores=0))["dla_core"] is None
    r = recipe("10.3", precision="fp32")
    assert r["dla_core"] is None and "FP16/INT8" in r["notes"][0]
    assert recipe("10.3", dla_core=None)["dla_core"] is None
    assert recipe("10.3", dla_core=1)["dla_core"] == 1


def test_recipe_is_deterministic_and_names_the_build_command():
    assert recipe("10.3") == recipe("10.3")
    assert recipe("10.3")["edgeinfer_build"] == "edgeinfer build BUNDLE --device agx-orin-64gb --dla-core 0"


def test_recipes_per_jetpack_line_and_bad_precision():
    lines = [{"jetpack": "5.1.2", "l4t": "35.4.1", "tensorrt": "8.5"}, {"jetpack": "6.2", "l4t": "36.4.3", "tensorrt": "10.3"}]
    recipes = make_build_recipes(profile=AGX, jetpacks=lines, precision="fp16", artifacts=ARTIFACTS, placement={},
                                 input_shapes=SHAPES, workspace_mb=512)
    assert list(recipes) == ["jp5.1.2-trt8.5", "jp6.2-trt10.3"]
    with pytest.raises(BuildError, match="unknown precision"):
        recipe("10.3", precision="int4")


def test_paths_with_spaces_are_quoted():
    cmd = trtexec_command({"tensorrt": "10.3", "onnx": "my model.onnx", "engine_file": "e.engine", "workspace_mb": 64})
    assert shlex.split(cmd)[1] == "--onnx=my model.onnx"


def test_reads_the_placement_plan_format():
    # PlacementPlan.to_dict(): decision + dla_core (kept for the candidate even when deciding GPU), nodes in caps
    nodes = [{"name": "/c", "device": "DLA"}, {"name": "/head/Concat", "device": "GPU"}, {"name": "/k", "device": "folded"}]
    r = recipe("10.3", placement={"decision": "dla", "dla_core": 1, "nodes": nodes})
    assert r["dla_core"] == 1 and r["gpu_layers"] == ["/head/Concat"]
    r = recipe("10.3", placement={"decision": "gpu", "dla_core": 0, "nodes": nodes})
    assert r["dla_core"] is None and r["gpu_layers"] == [] and "--useDLACore=0" not in args(r)


@pytest.mark.parametrize("trt", ["8.5", "8.6", "10.3", "10.16", "11.1", "11.4.1"])
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_static_model_gets_no_shape_flags(trt, precision):
    # trtexec: "Static model does not take explicit shapes" (samples/common/sampleEngines.cpp 8.5-10.x)
    a = args(recipe(trt, precision=precision, jetpack="7.2.2" if trt.startswith("11") else "6.2"))
    assert not [x for x in a if x.startswith(("--shapes", "--minShapes", "--optShapes", "--maxShapes"))]


def test_dynamic_inputs_get_a_build_profile_at_the_keyed_shape():
    r = recipe("10.3", placement={}, precision="fp16", dynamic_inputs=["images", "not_an_input"])
    a = args(r)
    assert r["dynamic_inputs"] == ["images"]
    assert {"--minShapes=images:1x3x320x320", "--optShapes=images:1x3x320x320", "--maxShapes=images:1x3x320x320"} <= set(a)
    assert not [x for x in a if x.startswith("--shapes")]


FLOAT = ["/model.0/conv/Conv", "/model.22/cv3.2/cv3.2.2/Conv"]


@pytest.mark.parametrize("trt", ["8.5", "8.6", "10.3"])
def test_float_layers_are_pinned_to_fp16_in_weakly_typed_int8(trt):
    r = recipe(trt, float_layers=reversed(FLOAT))
    a = args(r)
    assert r["float_layers"] == FLOAT
    assert f"--layerPrecisions={FLOAT[0]}:fp16,{FLOAT[1]}:fp16" in a and "--precisionConstraints=obey" in a


@pytest.mark.parametrize("trt, precision, kw", [("10.3", "fp16", {}), ("11.1", "int8", {}),
                                                 ("10.3", "int8", {"strongly_typed": True, "placement": {}})])
def test_float_layers_need_no_pin_where_precision_lives_elsewhere(trt, precision, kw):
    # fp16 has no INT8 to avoid; strongly typed networks take precision from the Q/DQ ONNX and
    # trtexec 11 has no --layerPrecisions at all
    r = recipe(trt, precision=precision, float_layers=FLOAT, jetpack="7.2.2" if trt.startswith("11") else "6.2", **kw)
    assert r["float_layers"] == [] and not [x for x in args(r) if x.startswith(("--layerPrecisions", "--precisionC"))]


def test_recipe_says_how_to_record_a_hand_built_engine():
    r = recipe("10.3")
    assert r["import_command"] == f"edgeinfer build BUNDLE --device agx-orin-64gb --import {r['engine_file']}"
    assert r["engine_file"].startswith("engines/")
