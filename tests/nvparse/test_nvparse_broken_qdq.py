"""A Q/DQ ONNX with INT32 bias DequantizeLinear nodes (ONNX Runtime's quantize_static default, QuantizeBias on)
must be refused by NVIDIA's parser, and `edgeinfer package` must then refuse to write the bundle unless
--allow-parser-errors is passed. The INT8 step is the real one; only ORT's QuantizeBias option is flipped back
to its default, which is what edgeinfer did before QuantizeBias=False."""
from __future__ import annotations

import json

import pytest
from nvparse_helpers import NEEDS_PARSER, ort_qdq_with_int32_bias, run_edgeinfer, tiny_conv_model

from edgeinfer.bundle import open_bundle
from edgeinfer.demo import make_dataset

pytestmark = NEEDS_PARSER

# Runs in the CLI subprocess before edgeinfer: quantize_static as ORT ships it (QuantizeBias defaults to True).
ORT_DEFAULT_BIAS = """
import onnxruntime.quantization as q
_orig = q.quantize_static
def _with_bias(*a, **k):
    k["extra_options"] = dict(k.get("extra_options") or {}, QuantizeBias=True)
    return _orig(*a, **k)
q.quantize_static = _with_bias
# edgeinfer's own Q/DQ lint refuses this first (tests/quantize); switched off here so that the artifact
# reaches NVIDIA's parser, the second line of defence this test is about.
import edgeinfer.quantize.qdq as _qdq
_qdq.lint_qdq = lambda model: None
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_conv_model(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("calib"), n_train=1, n_val=8, n_test=1, imgsz=64, seed=2)
    return root / "images" / "val"


def test_parser_refuses_int32_bias_dequantize_weak_and_strong(tiny, tmp_path):
    from edgeinfer.engine.parser_oracle import load_oracle

    qdq = ort_qdq_with_int32_bias(tiny, tmp_path / "tiny.qdq.onnx")
    oracle = load_oracle("tensorrt_rtx_bindings")
    for strong in (False, True):
        res = oracle.check(qdq, strongly_typed=strong, build=True)
        assert not res.parsed and res.built is None
        assert res.errors[0].node == "b1_DequantizeLinear" and res.errors[0].op == "DequantizeLinear"
        assert "Int32" in res.errors[0].message and "CUDA" not in res.errors[0].message
    fixed = oracle.check(tiny, strongly_typed=False, build=True)  # the float model itself is fine
    assert fixed.parsed and fixed.built and {"/c1", "/r1", "/c2"} <= set(fixed.layer_names)


def test_dynamic_inputs_build_with_a_probe_profile(tmp_path):
    from edgeinfer.engine.parser_oracle import load_oracle

    dynamic = tiny_conv_model(tmp_path / "dyn.onnx", dynamic=True)
    oracle = load_oracle("tensorrt_rtx_bindings")
    for shapes in ({}, {"images": [2, 3, 64, 64]}):  # none recorded: batch 1 and 320; or the recorded shape
        res = oracle.check(dynamic, strongly_typed=False, build=True, shapes=shapes)
        assert res.parsed and res.built, res.errors


@pytest.mark.slow  # packages with --verify, then inspect --verify: ~25 s unloaded
def test_package_refuses_the_bundle_then_writes_it_with_the_override(tiny, calib, tmp_path):
    out = tmp_path / "tiny.bundle"
    args = ("package", tiny, "--device", "orin-nano-8gb", "--precision", "int8", "--calib", calib, "-o", out)
    r = run_edgeinfer(*args, prelude=ORT_DEFAULT_BIAS)
    assert r.returncode == 1, r.stderr
    error = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    # b1 belongs to the stem Conv, which edgeinfer keeps in float; the next Conv's bias is the one refused
    assert len(error) == 1 and "b2_DequantizeLinear" in error[0] and "QuantizeBias" in error[0], r.stderr
    assert "--allow-parser-errors" in error[0] and "Traceback" not in r.stderr
    assert not out.exists() and not list(tmp_path.glob(".tiny.bundle*"))  # nothing half-written

    r = run_edgeinfer(*args, "--allow-parser-errors", "--json", prelude=ORT_DEFAULT_BIAS)
    assert r.returncode == 0, r.stderr
    recorded = open_bundle(out).manifest["verification"]
    assert recorded["ok"] is False and recorded["written_despite_errors"] is True
    assert recorded["checked_by"].startswith("TensorRT-RTX ") and any("b2_DequantizeLinear" in p for p in recorded["problems"])
    assert json.loads(r.stdout)["verification"]["ok"] is False

    r = run_edgeinfer("inspect", out, "--verify")  # the same check on the existing bundle: exit 1, node named
    assert r.returncode == 1 and "REJECTED: b2_DequantizeLinear" in r.stdout, r.stdout + r.stderr

    r = run_edgeinfer(*args, "--force", "--no-verify", prelude=ORT_DEFAULT_BIAS)  # unchecked: nothing recorded
    assert r.returncode == 0 and "verify:" not in r.stdout, r.stdout + r.stderr
    assert "verification" not in open_bundle(out).manifest


def test_int8_package_with_quantize_bias_off_verifies(tiny, calib, tmp_path):
    """The same INT8 step as edgeinfer ships it: the Q/DQ ONNX parses weakly and strongly typed and builds."""
    out = tmp_path / "ok.bundle"
    r = run_edgeinfer("package", tiny, "--device", "orin-nano-8gb", "--precision", "int8", "--calib", calib, "-o", out)
    assert r.returncode == 0, r.stderr
    recorded = open_bundle(out).manifest["verification"]
    assert recorded["ok"] is True and recorded["problems"] == []
    qdq = [a for a in recorded["artifacts"] if a["kinds"] == ["qdq_onnx"]]
    assert sorted(a["typing"] for a in qdq) == ["strong", "weak"] and all(a["parsed"] and a["built"] for a in qdq)
