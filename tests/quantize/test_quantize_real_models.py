"""The default INT8 calibration on real detectors nobody here trained, on real photos that ship in
PyPI wheels (scripts/_real_photos.py: calibration and check photos share no source photo):
NudeNet's YOLOv8n export (``nudenet`` wheel: 18 classes, dynamic input, ``/model.22`` head). The whole
packaging path on real detectors (NudeNet, and CenterFace for a DLA-1 module) is in tests/packager/."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edgeinfer.model import load_model
from edgeinfer.quantize import decode_nodes, make_qdq_onnx
from edgeinfer.quantize.metrics import box_agreement
from edgeinfer.quantize.qdq import stem_convs
from edgeinfer.quantize.ranges import DEFAULT_METHOD, compute_ranges
from edgeinfer.runtime.postprocess import postprocess
from edgeinfer.runtime.preprocess import preprocess_batch

nudenet = pytest.importorskip("nudenet")
pytest.importorskip("skimage")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import _real_photos as photos  # noqa: E402

IMGSZ = 256
MIN_REFERENCE_BOXES = 20  # the check must see real detections, not agree on nothing


@pytest.fixture(scope="module")
def nude(tmp_path_factory):
    model = load_model(str(Path(nudenet.__file__).parent / "320n.onnx"), imgsz=IMGSZ,
                       workdir=tmp_path_factory.mktemp("nudenet"))
    calib = preprocess_batch(photos.calibration_frames(24, seed=0), model.info.preprocess, model.info.imgsz)[0]
    check = preprocess_batch(photos.check_frames(24, seed=1), model.info.preprocess, model.info.imgsz)[0]
    return model, calib, check


def _boxes(onnx_path, info, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = []
    for i in range(len(x)):
        outputs = sess.run(None, {info.input.name: x[i:i + 1]})
        dets = postprocess(outputs, layout=info.output_layout, transforms=None, names=info.names, conf=0.25, iou=0.45)
        out.extend((d.xyxy, d.confidence, d.class_id) for d in dets)
    return out


def _recall(onnx_path, fp32_path, info, x) -> tuple[float, int]:
    ref = _boxes(fp32_path, info, x)
    agreement = box_agreement(_boxes(onnx_path, info, x), ref)
    assert agreement["reference_boxes"] >= MIN_REFERENCE_BOXES, agreement
    return agreement["recall"], agreement["reference_boxes"]


def test_yolov8_head_and_stem_are_found_on_the_real_export(nude):
    import onnx

    model, _, _ = nude
    graph = onnx.load(str(model.onnx_path))
    decode, boundary = decode_nodes(graph)
    assert "/model.22/dfl/conv/Conv" in decode and any(n.startswith("/model.22/Sigmoid") for n in decode)
    assert sorted(boundary) == sorted(f"/model.22/{b}.{i}/{b}.{i}.2/Conv" for b in ("cv2", "cv3") for i in range(3))
    assert stem_convs(graph) == ["/model.0/conv/Conv"]


@pytest.mark.slow
def test_default_method_beats_or_equals_onnx_runtime_calibrator(nude, tmp_path):
    """Same images, same Conv-only symmetric per-channel Q/DQ, same float nodes: our default ranges
    against ONNX Runtime's own calibrator (MinMax, its default) inside quantize_static."""
    import onnx
    import onnxruntime.quantization as q

    model, calib, check = nude
    ours = make_qdq_onnx(model.onnx_path, tmp_path / "ours.onnx",
                         ranges=compute_ranges(model.onnx_path, calib, method=DEFAULT_METHOD))
    graph = onnx.load(str(model.onnx_path))

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.items = iter({model.info.input.name: calib[i:i + 1]} for i in range(len(calib)))

        def get_next(self):
            return next(self.items, None)

    theirs = tmp_path / "ort.onnx"
    q.quantize_static(str(model.onnx_path), str(theirs), Reader(), quant_format=q.QuantFormat.QDQ,
                      op_types_to_quantize=["Conv"], per_channel=True, activation_type=q.QuantType.QInt8,
                      weight_type=q.QuantType.QInt8, nodes_to_exclude=sorted(set(decode_nodes(graph)[0]) | set(
                          stem_convs(graph))),
                      extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                                     "OpTypesToExcludeOutputQuantization": ["Conv"]})
    ours_recall, n = _recall(ours.path, model.onnx_path, model.info, check)
    ort_recall, _ = _recall(theirs, model.onnx_path, model.info, check)
    assert ours_recall >= ort_recall, (ours_recall, ort_recall, n)
    assert np.isfinite(ours_recall)
