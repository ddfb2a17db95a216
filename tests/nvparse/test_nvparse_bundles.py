"""The nvparse tier over the bundles the suite makes: the demo model's FP16 and INT8 bundles and a generic
PyPI model (PaddleOCR's detector from rapidocr-onnxruntime), packaged by the real CLI with --verify, then
checked again by `inspect --verify`."""
from __future__ import annotations

import os

import pytest
from nvparse_helpers import NEEDS_PARSER, inspect_verify_json, manifest_verification, run_edgeinfer

from edgeinfer.bundle import open_bundle
from edgeinfer.demo import demo_model_path, make_dataset
from edgeinfer.engine.nvparse import recipe_pins

pytestmark = NEEDS_PARSER


def _package(out, model, *args):
    r = run_edgeinfer("package", model, *args, "-o", out, "--verify")
    assert r.returncode == 0, r.stderr
    assert "verify: TensorRT-RTX" in r.stdout and "built for" not in r.stdout + r.stderr
    return r


def _assert_verified(bundle, *, kinds_strong):
    code, summary, stderr = inspect_verify_json(bundle)
    assert code == 0, stderr
    report = summary["verification"]
    assert report["ok"] and report["problems"] == [] and report["parser"].startswith("TensorRT-RTX ")
    assert {d["key"] for d in report["not_checked"]} >= {"no-dla", "no-implicit-int8"}
    for check in report["checks"]:
        assert check["parsed"] and check["built"] and check["num_layers"] > 0 and check["engine_bytes"] > 0
    strong = {k for c in report["checks"] if c["typing"] == "strong" for k in c["kinds"]}
    assert strong == set(kinds_strong)
    recorded = manifest_verification(bundle)
    assert recorded["ok"] and "nothing was built or run on a Jetson" in recorded["what"]
    return report


@pytest.mark.slow  # packages with --verify, then inspect --verify: ~25 s unloaded
def test_demo_fp16_bundle(tmp_path):
    out = tmp_path / "fp16.bundle"
    _package(out, demo_model_path("onnx"), "--device", "orin-nano-8gb", "--precision", "fp16")
    report = _assert_verified(out, kinds_strong={"fp16_onnx"})
    assert {k for c in report["checks"] for k in c["kinds"]} == {"onnx", "fp16_onnx"}


@pytest.mark.slow  # one INT8 packaging run of the demo model (calibration + accuracy gate): ~1-2 min
def test_demo_int8_bundle_qdq_parses_builds_and_every_pin_exists(tmp_path):
    calib = make_dataset(tmp_path / "shapes", n_train=1, n_val=12, n_test=1, imgsz=320, seed=3) / "images" / "val"
    out = tmp_path / "int8.bundle"
    _package(out, demo_model_path("onnx"), "--device", "orin-nx-16gb", "--precision", "int8", "--calib", calib)
    _assert_verified(out, kinds_strong={"qdq_onnx"})
    # The check is not vacuous: the DLA plan pins layers to the GPU through --layerDeviceTypes, and the
    # accuracy gate's float-kept layers are named; every one exists in the parsed networks.
    from edgeinfer.engine.parser_oracle import load_oracle

    bundle = open_bundle(out)
    entry = bundle.device("orin-nx-16gb")
    pins = {n for r in entry.recipes.values() for n in recipe_pins(r)}
    assert entry.placement["decision"] == "dla" and len(pins) >= 10
    oracle = load_oracle("tensorrt_rtx_bindings")
    onnx_layers = set(oracle.check(bundle.artifact_path(entry.name, "onnx"), strongly_typed=False, build=False).layer_names)
    qdq_layers = set(oracle.check(bundle.artifact_path(entry.name, "qdq_onnx"), strongly_typed=True, build=False).layer_names)
    assert pins <= onnx_layers
    assert set(entry.accuracy.get("excluded_layers") or []) <= onnx_layers & qdq_layers


@pytest.mark.slow  # packages with --verify, then inspect --verify: ~25 s unloaded
def test_generic_pypi_model_fp16_bundle(tmp_path):
    rapidocr = pytest.importorskip("rapidocr_onnxruntime")
    det = os.path.join(os.path.dirname(rapidocr.__file__), "models", "ch_PP-OCRv4_det_infer.onnx")
    out = tmp_path / "ocr.bundle"
    _package(out, det, "--device", "orin-nano-8gb", "--precision", "fp16", "--imgsz", "320")
    _assert_verified(out, kinds_strong={"fp16_onnx"})
