"""The committed demo ONNX: real ONNX Runtime on fresh synthetic scenes finds the labelled shapes.

The decode + NMS here is deliberately tiny and local, so this test checks the weights, not the
runtime package's post-processing.
"""
from __future__ import annotations

import ast

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeinfer.demo import demo_model_path, load_video_truth, make_video, render_scene
from edgeinfer.errors import ConfigError

CONF, IOU_NMS = 0.25, 0.45


@pytest.fixture(scope="module")
def session():
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # shared 2-core CI machine
    return ort.InferenceSession(str(demo_model_path("onnx")), opts, providers=["CPUExecutionProvider"])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box ``a`` (4,) against boxes ``b`` (N, 4)."""
    tl, br = np.maximum(a[:2], b[:, :2]), np.minimum(a[2:], b[:, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=1)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _detect(session, rgb_chw: np.ndarray):
    """(boxes xyxy in input pixels, class ids, scores) after confidence filter and class-wise NMS."""
    pred = session.run(None, {"images": rgb_chw[None]})[0][0].T  # (anchors, 4 + classes)
    scores_all = pred[:, 4:]
    cls, score = scores_all.argmax(axis=1), scores_all.max(axis=1)
    keep = score > CONF
    cxcywh, cls, score = pred[keep, :4], cls[keep], score[keep]
    boxes = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], axis=1)
    order, kept = list(np.argsort(-score)), []
    while order:
        i = order.pop(0)
        kept.append(i)
        order = [j for j in order if cls[j] != cls[i] or _iou(boxes[i], boxes[j:j + 1])[0] <= IOU_NMS]
    return boxes[kept], cls[kept], score[kept]


def _to_input(bgr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32) / 255.0


def _match(truth_boxes, truth_cls, det_boxes, det_cls):
    """Greedy one-to-one matching at IoU > 0.5 with the same class; returns the matched count."""
    used, matched = set(), 0
    for box, c in zip(truth_boxes, truth_cls):
        if len(det_boxes) == 0:
            break
        ious = _iou(np.asarray(box, dtype=np.float32), det_boxes)
        ious[[j for j in range(len(det_cls)) if det_cls[j] != c or j in used]] = 0
        j = int(ious.argmax())
        if ious[j] > 0.5:
            used.add(j)
            matched += 1
    return matched


def test_onnx_io_and_metadata_carry_names_and_imgsz():
    model = onnx.load(str(demo_model_path("onnx")))
    meta = {p.key: p.value for p in model.metadata_props}
    assert ast.literal_eval(meta["names"]) == {0: "rect", 1: "circle", 2: "triangle"}
    assert ast.literal_eval(meta["imgsz"]) == [320, 320]
    assert int(meta["stride"]) == 32 and meta["task"] == "detect"
    dims = lambda vi: [d.dim_value for d in vi.type.tensor_type.shape.dim]  # noqa: E731
    assert model.graph.input[0].name == "images" and dims(model.graph.input[0]) == [1, 3, 320, 320]
    assert dims(model.graph.output[0]) == [1, 7, 2100]


def test_detections_match_labels_on_fresh_synthetic_scenes(session):
    # Seed 4242 is not the training seed, so these scenes were never seen in training.
    n_truth = n_det = hits = 0
    for i in range(10):
        img, labels = render_scene([4242, 2, i], imgsz=320)
        boxes, cls, _ = _detect(session, _to_input(img))
        hits += _match([b[1:] for b in labels], [b[0] for b in labels], boxes, cls)
        n_truth, n_det = n_truth + len(labels), n_det + len(boxes)
    assert n_truth >= 20
    assert hits / n_truth >= 0.8, f"recall {hits}/{n_truth}"
    assert hits / max(n_det, 1) >= 0.8, f"precision {hits}/{n_det}"


def test_detections_follow_the_demo_video_truth(session, tmp_path):
    video = make_video(tmp_path / "demo.mp4", frames=12, size=(640, 480), seed=5)
    truth = load_video_truth(video)
    import cv2

    cap = cv2.VideoCapture(str(video))
    n_truth = hits = 0
    for idx in range(truth["frames"]):
        ok, frame = cap.read()
        assert ok
        if idx % 3:
            continue
        # Letterbox 640x480 -> 320x240 centred in 320x320 (pad 114), as Ultralytics does.
        canvas = np.full((320, 320, 3), 114, np.uint8)
        canvas[40:280] = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_LINEAR)
        boxes, cls, _ = _detect(session, _to_input(canvas))
        boxes = (boxes - np.array([0, 40, 0, 40], np.float32)) * 2.0
        wanted = [b for b in truth["boxes"][idx] if b["visible"] >= 0.7]
        hits += _match([b["xyxy"] for b in wanted], [b["class_id"] for b in wanted], boxes, cls)
        n_truth += len(wanted)
    cap.release()
    assert n_truth >= 10
    assert hits / n_truth >= 0.75, f"recall {hits}/{n_truth}"


def test_demo_model_paths():
    assert demo_model_path("pt").name == "shapes-yolo11n.pt" and demo_model_path("pt").stat().st_size > 1e6
    assert demo_model_path("onnx").name == "shapes-yolo11n-320.onnx"
    with pytest.raises(ConfigError):
        demo_model_path("engine")
