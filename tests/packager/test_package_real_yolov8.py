"""What a new user gets from `edgeinfer package` with INT8 on a real YOLOv8n nobody here trained:
NudeNet's export (``nudenet`` wheel: 18 classes, dynamic input, ``/model.22`` head), a folder of 96 real
photos that ship in PyPI wheels (``scripts/_real_photos.py``), two Orin targets (one with DLA), every
option at its default. The gate must pass on its own (measured, not waved through), and on 48 check
photos the calibration never saw the INT8 Q/DQ model must keep >= 95 % of FP32's boxes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edgeinfer.bundle import open_bundle
from edgeinfer.quantize import accuracy as acc
from edgeinfer.quantize.metrics import box_agreement
from edgeinfer.runtime.preprocess import preprocess_batch

nudenet = pytest.importorskip("nudenet")
pytest.importorskip("skimage")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import _real_photos as photos  # noqa: E402


def _boxes(onnx_path, info, x):
    outputs = acc._run(Path(onnx_path), x, "check", None)
    return acc._tuples(acc._decode(outputs, info, None, 0.25, 0.45))


@pytest.mark.slow
def test_default_int8_package_of_a_real_yolov8n_passes_its_gate_and_keeps_the_boxes(run_cli, tmp_path):
    calib = photos.write_frames(photos.calibration_frames(96, seed=0), tmp_path / "photos")
    out = tmp_path / "nude.bundle"
    r = run_cli("package", Path(nudenet.__file__).parent / "320n.onnx", "--device", "orin-nx-16gb,orin-nano-8gb",
                "--precision", "int8", "--calib", calib, "--imgsz", "320", "-o", out, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["model"]["output_layout"] == "yolov8"

    bundle = open_bundle(out)
    for device in ("orin-nx-16gb", "orin-nano-8gb"):
        entry = bundle.device(device)
        gate = entry.accuracy
        assert entry.precision == "int8" and gate["measured"] is True and gate["attempts"][-1]["passed"], gate
        assert gate["attempts"][-1]["agreement_map50_95"] >= 0.95 and gate["reference"]["fp32_boxes"] >= 20
    # float-kept layers stay a minority: this is still an INT8 model
    assert len(bundle.device("orin-nx-16gb").accuracy["excluded_layers"]) <= 0.25 * 64

    info = bundle.model_info
    check = preprocess_batch(photos.check_frames(48, seed=1), info.preprocess, info.imgsz)[0]
    ref = _boxes(bundle.artifact_path("orin-nx-16gb", "onnx"), info, check)
    got = _boxes(bundle.artifact_path("orin-nx-16gb", "qdq_onnx"), info, check)
    agreement = box_agreement(got, ref)
    assert agreement["reference_boxes"] >= 40, agreement
    assert agreement["recall"] >= 0.95, agreement
