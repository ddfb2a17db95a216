"""After an INT8 build: per-layer precision from the inspector JSON, INT8 share vs the bundle's plan,
and `edgeinfer build` refusing an engine whose decode head runs INT8 or whose share collapsed.

The engine comes from the recording stand-in (tests/engine/trt_standin.py), which follows TensorRT's
documented implicit-INT8 rule: a layer runs INT8 only when the cache scales its output tensors."""
from __future__ import annotations

import onnx
import pytest
from engine_helpers import JP62, ORIN_NX, SHAPE
from trt_standin import make_standin

from edgeinfer.bundle import BundleWriter, open_bundle
from edgeinfer.engine import build_engines, make_build_recipes
from edgeinfer.engine.int8_report import int8_report, layer_precision
from edgeinfer.errors import BuildError
from edgeinfer.quantize import cache_ranges_for, write_trt_calibration_cache

DETECTED = {"profile": ORIN_NX, "l4t": "36.4.3", "jetpack": JP62}
GPU_PLAN = {"decision": "gpu", "dla_core": None, "nodes": []}


def _all_ranges(onnx_path):
    graph = onnx.load(str(onnx_path)).graph
    return {"images": 1.0, **{o: 4.0 for n in graph.node for o in n.output}}


def _bundle(path, model_files, cache_text, cache_plan):
    cache = path.parent / f"{path.name}.cache"
    cache.write_text(cache_text)
    with BundleWriter(path, force=True) as writer:
        artifacts = {"onnx": writer.add_artifact(model_files["fp32"]), "calib_cache": writer.add_artifact(cache)}
        writer.set_model(info={"inputs": [{"name": "images", "shape": list(SHAPE), "dtype": "float32"}],
                               "outputs": [{"name": "output0", "shape": [1, 8, 1024], "dtype": "float32"}],
                               "task": "generic"}, name="tiny.onnx", source_sha256="0" * 64)
        recipes = make_build_recipes(profile=ORIN_NX, jetpacks=[JP62], precision="int8", artifacts=artifacts,
                                     placement=GPU_PLAN, input_shapes={"images": SHAPE}, workspace_mb=512)
        writer.add_device("orin-nx-16gb", profile=ORIN_NX, jetpack=JP62, precision="int8", artifacts=artifacts,
                          placement=GPU_PLAN, recipes=recipes, calibration={"cache_plan": cache_plan})
    return path


def _build(path, tmp_path):
    return build_engines(path, device="orin-nx-16gb", detected=DETECTED, trt=make_standin("10.3"),
                         timing_cache=tmp_path / "timing.cache")


def test_stripped_cache_builds_and_reports_the_int8_share(model_files, tmp_path):
    plan = cache_ranges_for(_all_ranges(model_files["fp32"]), model_files["fp32"])
    path = _bundle(tmp_path / "ok.bundle", model_files, write_trt_calibration_cache(plan.ranges), plan.to_dict())
    (record,) = _build(path, tmp_path)
    report = record["int8"]
    assert report["head_int8"] == [] and report["problems"] == []
    assert report["counts"]["int8"] == 4 and report["counts"]["fp16"] == 2  # backbone INT8, Reshape+Softmax FP16
    assert report["int8_share"] == pytest.approx(4 / 6, abs=1e-4) and report["planned_int8_share"] == plan.to_dict()["planned_int8_share"]


def test_head_scales_in_the_cache_fail_the_build(model_files, tmp_path):
    """The old cache kept every tensor, output0 included: the head runs INT8 and the build is refused."""
    ranges = _all_ranges(model_files["fp32"])
    plan = cache_ranges_for(ranges, model_files["fp32"]).to_dict()
    path = _bundle(tmp_path / "head.bundle", model_files, write_trt_calibration_cache(ranges), plan)
    with pytest.raises(BuildError, match="decode-head node.*run in INT8.*/model.23/Softmax"):
        _build(path, tmp_path)
    assert open_bundle(path).device("orin-nx-16gb").engines == []


def test_cache_names_that_match_nothing_fail_the_build(model_files, tmp_path):
    """A cache whose names miss the network leaves TensorRT in FP16 with only warnings: refused here."""
    plan = cache_ranges_for(_all_ranges(model_files["fp32"]), model_files["fp32"])
    renamed = write_trt_calibration_cache({f"renamed/{k}": v for k, v in plan.ranges.items()})
    path = _bundle(tmp_path / "names.bundle", model_files, renamed, plan.to_dict())
    with pytest.raises(BuildError, match=r"only 0% of the layers run in INT8, the bundle planned 67%"):
        _build(path, tmp_path)


def test_layer_precision_reads_tensorrt_format_strings():
    def layer(fmt):
        return {"Name": "l", "Inputs": [], "Outputs": [{"Name": "t", "Format/Datatype": fmt}]}

    assert layer_precision(layer("Four wide channel vectorized row major Int8 format")) == "int8"
    assert layer_precision(layer("Channel major FP16 format where channel % 8 == 0")) == "fp16"
    assert layer_precision(layer("Row major linear FP32")) == "fp32"
    assert layer_precision({"Name": "no detail"}) == "unknown" and layer_precision("a string layer") == "unknown"
    report = int8_report({"Layers": ["x"]}, cache_plan={"head_nodes": [], "planned_int8_share": 0.9}, node_order=["x"])
    assert report["int8_share"] is None and report["problems"] == [] and "not checked" in report["notes"][0]


