"""Without TensorRT and TensorRT-RTX: `package` verifies by default only when a parser is importable, and an
explicit --verify fails at once with the install hint (no traceback, nothing written). Runs everywhere: the
parser modules are hidden from the CLI subprocess."""
from __future__ import annotations

from nvparse_helpers import run_edgeinfer, tiny_conv_model

HIDE_PARSERS = "import sys\nsys.modules['tensorrt'] = None\nsys.modules['tensorrt_rtx_bindings'] = None"


def test_explicit_verify_without_a_parser_is_a_clear_error(tmp_path):
    model = tiny_conv_model(tmp_path / "tiny.onnx")
    out = tmp_path / "tiny.bundle"
    r = run_edgeinfer("package", model, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out, "--verify",
                      prelude=HIDE_PARSERS)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: NVIDIA's ONNX parser is needed")
    assert "pip install 'edgeinfer[verify]'" in r.stderr and "--no-verify" in r.stderr
    assert "model:" not in r.stderr  # failed before ingesting anything
    assert not out.exists()

    r = run_edgeinfer("inspect", tmp_path, "--verify", prelude=HIDE_PARSERS)  # not a bundle: that error comes first
    assert r.returncode == 1 and "not a bundle" in r.stderr


def test_default_skips_verification_without_a_parser(tmp_path):
    model = tiny_conv_model(tmp_path / "tiny.onnx")
    out = tmp_path / "tiny.bundle"
    r = run_edgeinfer("package", model, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out,
                      prelude=HIDE_PARSERS)
    assert r.returncode == 0, r.stderr
    assert "verify: skipped" in r.stdout and "pip install 'edgeinfer[verify]'" in r.stdout
    from edgeinfer.bundle import open_bundle

    assert "verification" not in open_bundle(out).manifest
