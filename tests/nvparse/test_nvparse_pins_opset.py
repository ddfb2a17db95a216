"""Pinned layer names must exist in the network NVIDIA's parser makes; opsets above a target TensorRT's
documented parser limit are flagged. Manifests are written by hand around real ONNX files; the parser is real."""
from __future__ import annotations

import shutil

import pytest
from nvparse_helpers import NEEDS_PARSER, tiny_conv_model

from edgeinfer.engine import parser_limits
from edgeinfer.engine.nvparse import recipe_pins, verify_manifest

pytestmark = NEEDS_PARSER


def _manifest(rel: str, *, tensorrt: str = "10.3", trtexec: str = "", gpu_layers=(), placement=None, kept=()):
    recipe = {"tensorrt": tensorrt, "onnx": rel, "network": "default", "gpu_layers": list(gpu_layers),
              "trtexec": trtexec or f"trtexec --onnx={rel}", "input_shapes": {"images": [1, 3, 32, 32]}}
    device = {"jetpack": {"jetpack": "x", "tensorrt": tensorrt}, "artifacts": {"onnx": rel},
              "placement": placement or {"decision": "gpu"}, "accuracy": {"excluded_layers": list(kept)},
              "recipes": {f"jpx-trt{tensorrt}": recipe}}
    return {"devices": {"orin-nx-16gb": device}}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundle")
    (root / "artifacts").mkdir()
    tiny_conv_model(root / "artifacts" / "tiny.onnx")
    return root


def test_every_pin_source_is_checked_against_the_parsed_network(root):
    rel = "artifacts/tiny.onnx"
    manifest = _manifest(
        rel, gpu_layers=["/c2", "/no/such/gpu_layer"],
        trtexec=f"trtexec --onnx={rel} --layerPrecisions=/r1:fp16,/no/such/precision:fp16 --precisionConstraints=obey",
        placement={"decision": "dla", "dla_core": 0, "nodes": [{"name": "/c1", "device": "DLA"},
                                                               {"name": "/no/such/plan_node", "device": "GPU"}]},
        kept=["/c1", "/no/such/float_layer"])
    report = verify_manifest(manifest, root, build=False)
    assert report.parser.startswith("TensorRT-RTX ") and all(c.parsed for c in report.checks)
    missing = {name for m in report.missing_pins for name in m.names}
    assert missing == {"/no/such/gpu_layer", "/no/such/precision", "/no/such/plan_node", "/no/such/float_layer"}
    assert not report.ok and any("/no/such/precision" in p for p in report.problems())
    clean = _manifest(rel, gpu_layers=["/c2"], trtexec=f"trtexec --layerDeviceTypes=/c1:GPU,/r1:GPU --onnx={rel}")
    assert verify_manifest(clean, root, build=False).missing_pins == []


def test_recipe_pins_reads_trtexec_flags_and_manifest_lists():
    recipe = {"gpu_layers": ["/a"], "layer_precisions": {"/b": "fp16"},
              "trtexec": "trtexec '--layerDeviceTypes=/c:GPU,/d:GPU' --layerOutputTypes=/e:fp32 --fp16"}
    assert recipe_pins(recipe) == ["/a", "/b", "/c", "/d", "/e"]


def test_opset_18_is_flagged_for_tensorrt_85_and_86_but_not_10(root, tmp_path):
    shutil.copytree(root, tmp_path / "b")
    tiny_conv_model(tmp_path / "b" / "artifacts" / "r18.onnx", opset=18, reduce_mean=True)
    rel = "artifacts/r18.onnx"
    issues = {}
    for trt in ("8.5.2", "8.6.2", "10.3"):
        report = verify_manifest(_manifest(rel, tensorrt=trt), tmp_path / "b", build=False)
        assert report.checks[0].parsed  # TensorRT-RTX's newer parser takes it: only the table knows better
        issues[trt] = report.opset_issues
    assert [(i.opset, i.max_opset, i.target) for i in issues["8.5.2"]] == [(18, 17, True)]
    assert [(i.opset, i.max_opset) for i in issues["8.6.2"]] == [(18, 17)]
    assert issues["10.3"] == []
    report = verify_manifest(_manifest(rel, tensorrt="8.5.2"), tmp_path / "b", build=False)
    assert report.ok and "opset 18 > 17" in report.warnings()[0]  # a warning, not a refusal


@pytest.mark.parametrize("version, limit", [("8.0.1", 13), ("8.2.1", 13), ("8.4.1", 17), ("8.5.2", 17),
                                            ("8.6.2", 17), ("10.3", 20), ("10.13", 20), ("10.16", 24), ("11.4.1", 24),
                                            ("11.5", 25), ("7.1", None)])
def test_documented_opset_limits(version, limit):
    assert parser_limits.max_opset(version) == limit


def test_the_documented_rtx_differences_hold_for_the_installed_bindings():
    import tensorrt_rtx_bindings as rtx

    keys = {d.key for d in parser_limits.RTX_DIFFERENCES}
    assert {"no-dla", "no-implicit-int8", "no-precision-flags"} <= keys
    assert all(d.source.startswith("https://") for d in parser_limits.RTX_DIFFERENCES)
    # If a future TensorRT-RTX gains these, the list (and what the check proves) must be revisited.
    assert not hasattr(rtx.BuilderFlag, "FP16") and not hasattr(rtx.BuilderFlag, "INT8")
    assert not hasattr(rtx, "IInt8EntropyCalibrator2") and not hasattr(rtx, "IInt8MinMaxCalibrator")
