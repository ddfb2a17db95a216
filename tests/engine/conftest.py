"""Fixtures for the build tests: a tiny real ONNX detector-like graph (plus its Q/DQ and FP16
forms), an INT8 calibration cache in TensorRT's format, and real bundles written by BundleWriter."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # trt_contract / trt_standin live beside the tests

from engine_helpers import _graph, _hex_scale  # noqa: E402  (beside this file)


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict:
    """Real ONNX files (checked by onnx.checker) + a TRT-format calibration cache for the fp32 graph."""
    import onnx

    out = tmp_path_factory.mktemp("models")
    files = {}
    for kind in ("fp32", "qdq", "fp16"):
        model = _graph(kind)
        onnx.checker.check_model(model)
        files[kind] = out / f"tiny_{kind}.onnx"
        onnx.save(model, str(files[kind]))
    lines = ["TRT-8502-EntropyCalibration2"] + [f"{name}: {_hex_scale(a)}" for name, a in
                                                  (("images", 1.0), ("c1", 3.1), ("s1", 1.0), ("a1", 2.9), ("c2", 4.2))]
    files["cache"] = out / "tiny.cache"
    files["cache"].write_text("\n".join(lines) + "\n")
    return files
