"""A real YOLOv8n nobody here trained (NudeNet's export from the ``nudenet`` wheel: 18 classes, dynamic
input, ``/model.22`` head), made INT8 by edgeinfer's own Q/DQ step from real photos (calibration photos
from ``scripts/_real_photos.py``), checked by NVIDIA's parser: the FP32 and Q/DQ ONNX parse weakly and
strongly typed and build ahead of time, and every layer a DLA placement plan pins to the GPU exists."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nvparse_helpers import NEEDS_PARSER

from edgeinfer.model import load_model
from edgeinfer.placement import plan_placement
from edgeinfer.profiles import get_profile
from edgeinfer.quantize import make_qdq_onnx
from edgeinfer.quantize.ranges import DEFAULT_METHOD, compute_ranges
from edgeinfer.runtime.preprocess import preprocess_batch

pytestmark = [*NEEDS_PARSER, pytest.mark.slow]
nudenet = pytest.importorskip("nudenet")
pytest.importorskip("skimage")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import _real_photos as photos  # noqa: E402


def test_real_yolov8n_int8_parses_builds_and_every_dla_pin_exists(tmp_path):
    from edgeinfer.engine.parser_oracle import load_oracle

    model = load_model(str(Path(nudenet.__file__).parent / "320n.onnx"), imgsz=256, workdir=tmp_path / "m")
    calib = preprocess_batch(photos.calibration_frames(16, seed=0), model.info.preprocess, model.info.imgsz)[0]
    qdq = make_qdq_onnx(model.onnx_path, tmp_path / "nudenet.qdq.onnx",
                        ranges=compute_ranges(model.onnx_path, calib, method=DEFAULT_METHOD))
    assert len(qdq.quantized) >= 50  # a real INT8 graph, not a float one with a few Q/DQ pairs

    oracle = load_oracle("tensorrt_rtx_bindings")
    fp32 = oracle.check(model.onnx_path, strongly_typed=False, build=True)
    assert fp32.parsed and fp32.built, fp32.errors
    for strong in (False, True):
        res = oracle.check(qdq.path, strongly_typed=strong, build=True)
        assert res.parsed and res.built, (strong, res.errors)

    profile = get_profile("orin-nx-16gb")
    plan = plan_placement(model.onnx_path, profile=profile, trt_version="10.3", dla="0", precision="int8")
    pins = {n.name for n in plan.nodes if n.device == "GPU"}
    assert plan.decision == "dla" and len(pins) >= 5
    assert pins <= set(fp32.layer_names), sorted(pins - set(fp32.layer_names))[:5]
