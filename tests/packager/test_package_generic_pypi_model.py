"""The generic (non-YOLO) path on a real model shipped inside a PyPI package: PaddleOCR's PP-OCRv4
text detector from rapidocr_onnxruntime (opset 12, dynamic H/W, one probability-map output)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from edgeinfer.bundle import open_bundle
from edgeinfer.demo import make_dataset

rapidocr = pytest.importorskip("rapidocr_onnxruntime")
DET_ONNX = os.path.join(os.path.dirname(rapidocr.__file__), "models", "ch_PP-OCRv4_det_infer.onnx")


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("calib"), n_train=12, n_val=1, n_test=1, imgsz=320, seed=5)
    return root / "images" / "train"


@pytest.mark.slow
def test_package_real_generic_model_best_precision(run_cli, tmp_path, calib_dir):
    out = tmp_path / "ocr.bundle"
    r = run_cli("package", DET_ONNX, "--device", "orin-nano-8gb", "--precision", "best", "--calib", calib_dir,
                "--imgsz", "320", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["model"]["output_layout"] == "generic" and summary["model"]["task"] == "generic"
    assert summary["model"]["inputs"][0]["shape"] == [1, 3, 320, 320]  # dynamic H/W fixed by --imgsz
    entry = open_bundle(out).device("orin-nano-8gb")
    # 'best' keeps INT8 only if it holds the agreement threshold, else falls back to FP16 (shapes are
    # not text, so either outcome is legitimate; what must hold is a coherent bundle either way).
    assert entry.precision in ("int8", "fp16")
    assert ("qdq_onnx" in entry.artifacts) == (entry.precision == "int8")

    import edgeinfer

    with edgeinfer.load(out, backend="onnxruntime") as model:
        outputs = model(np.full((240, 320, 3), 128, np.uint8))
    (prob,) = outputs.values()
    assert prob.shape[-2:] == (320, 320) and np.isfinite(prob).all() and 0.0 <= prob.min() <= prob.max() <= 1.0


def test_qdq_on_an_opset_12_model_converts_to_13(tmp_path, calib_dir):
    import onnx

    from edgeinfer.model import load_model
    from edgeinfer.quantize import load_calibration_images, make_qdq_onnx

    model = load_model(DET_ONNX, imgsz=320, workdir=tmp_path)
    data = load_calibration_images(calib_dir, model.info, max_images=4)
    result = make_qdq_onnx(model.onnx_path, tmp_path / "det.qdq.onnx", data=data, method="minmax", info=model.info)
    qdq = onnx.load(str(result.path))
    assert max(o.version for o in qdq.opset_import if o.domain in ("", "ai.onnx")) >= 13
    per_channel = [n for n in qdq.graph.node if n.op_type == "DequantizeLinear"
                   and any(a.name == "axis" for a in n.attribute)]
    assert result.quantized and per_channel
