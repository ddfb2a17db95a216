"""Every Ultralytics task decoded on the device side agrees with Ultralytics' own ``predict`` on the
same ONNX file (same ONNX Runtime outputs, so any difference is pre/post-processing):
boxes, scores, mask IoU, keypoints, rotated boxes, top-k; YOLO11 (NMS) and YOLO26 (end-to-end) heads."""
from __future__ import annotations

import numpy as np
import pytest
from task_models import export_all

import edgeinfer
from edgeinfer.errors import BackendError

YAMLS = ["yolo11n-seg.yaml", "yolo11n-pose.yaml", "yolo11n-obb.yaml", "yolo11n-cls.yaml",
         "yolo26n-seg.yaml", "yolo26n-pose.yaml", "yolo26n-obb.yaml"]
CONF, IOU = 0.2, 0.45

pytestmark = pytest.mark.slow  # one Ultralytics export of seven models (~1 min on 2 cores), shared by the module


@pytest.fixture(scope="module")
def onnx_of(tmp_path_factory, ultralytics_offline):
    pytest.importorskip("ultralytics")
    return export_all(tmp_path_factory.mktemp("tasks"), YAMLS)


def _frame(seed=0, shape=(240, 320, 3)):
    """A frame with structure (blobs on noise): masks and crops have edges to disagree on."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    for _ in range(6):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        img[max(0, y - 30):y + 30, max(0, x - 40):x + 40] = rng.integers(0, 256, 3)
    return img


def _ultra(path, task, frame, **kw):
    from ultralytics import YOLO

    imgsz = 64 if task == "classify" else 160
    return YOLO(str(path), task=task).predict(frame, imgsz=imgsz, verbose=False, **kw)[0]


def _ours(path, frame, **kw):
    with edgeinfer.load(path, device="cpu", warmup=0, **kw) as model:
        return model, model(frame)


def _mask_iou(a, b):
    inter = np.logical_and(a, b).sum((1, 2))
    union = np.logical_or(a, b).sum((1, 2))
    return inter / np.maximum(union, 1)


@pytest.mark.parametrize("yaml,layout", [("yolo11n-seg.yaml", "yolov8"), ("yolo26n-seg.yaml", "end2end")])
def test_segment_matches_ultralytics(onnx_of, yaml, layout):
    frame = _frame()
    model, ours = _ours(onnx_of[yaml], frame, conf=CONF, iou=IOU)
    assert (model.task, model.layout) == ("segment", layout)
    ref = _ultra(onnx_of[yaml], "segment", frame, conf=CONF, iou=IOU, retina_masks=True)
    assert len(ours) == len(ref.boxes) > 0
    np.testing.assert_allclose(ours.xyxy, ref.boxes.xyxy.numpy(), atol=1e-3)
    np.testing.assert_allclose(ours.confidence, ref.boxes.conf.numpy(), rtol=1e-5)
    iou = _mask_iou(ours.masks(), ref.masks.data.numpy() > 0.5)
    assert iou.min() > 0.85 and iou.mean() > 0.95, iou


def test_segment_uplink_rle_and_polygon_round_trip(onnx_of):
    frame = _frame(1)
    _, seg = _ours(onnx_of["yolo11n-seg.yaml"], frame, conf=CONF, mask_format="both")
    assert len(seg) > 0
    record = seg.to_dict()
    h, w = frame.shape[:2]
    full = seg.masks()
    for det, mask in zip(record["detections"], full):
        counts = det["rle"]["counts"]
        assert det["rle"]["size"] == [h, w] and sum(counts) == h * w
        flat = np.zeros(h * w, bool)
        pos = 0
        for i, c in enumerate(counts):  # runs alternate zeros, ones (COCO)
            flat[pos:pos + c] = i % 2 == 1
            pos += c
        np.testing.assert_array_equal(flat.reshape(w, h).T, mask)
        poly = np.asarray(det["polygon"])
        assert poly.ndim == 2 and poly.shape[1] == 2 and len(poly) >= 3
        x1, y1, x2, y2 = det["xyxy"]
        assert poly[:, 0].min() >= x1 - 1 and poly[:, 0].max() <= x2 + 1 and poly[:, 1].max() <= y2 + 1


@pytest.mark.parametrize("yaml,layout", [("yolo11n-pose.yaml", "yolov8"), ("yolo26n-pose.yaml", "end2end")])
def test_pose_matches_ultralytics(onnx_of, yaml, layout):
    frame = _frame(2)
    model, ours = _ours(onnx_of[yaml], frame, conf=CONF, iou=IOU)
    assert (model.task, model.layout) == ("pose", layout)
    ref = _ultra(onnx_of[yaml], "pose", frame, conf=CONF, iou=IOU)
    assert len(ours) == len(ref.boxes) > 0
    np.testing.assert_allclose(ours.xyxy, ref.boxes.xyxy.numpy(), atol=1e-3)
    np.testing.assert_allclose(ours.keypoints, ref.keypoints.data.numpy(), atol=1e-3)
    assert ours.to_dict()["detections"][0]["keypoints"][0][2] == pytest.approx(float(ours.keypoints[0, 0, 2]), abs=1e-3)


@pytest.mark.parametrize("yaml,layout", [("yolo11n-obb.yaml", "yolov8"), ("yolo26n-obb.yaml", "end2end")])
def test_obb_matches_ultralytics(onnx_of, yaml, layout):
    frame = _frame(3)
    model, ours = _ours(onnx_of[yaml], frame, conf=CONF, iou=IOU)
    assert (model.task, model.layout) == ("obb", layout)
    ref = _ultra(onnx_of[yaml], "obb", frame, conf=CONF, iou=IOU).obb
    assert len(ours) == len(ref) > 0
    np.testing.assert_allclose(ours.xywhr, ref.xywhr.numpy(), atol=1e-3)
    np.testing.assert_allclose(ours.confidence, ref.conf.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.corners(), ref.xyxyxyxy.numpy(), atol=1e-2)


def test_classify_matches_ultralytics(onnx_of):
    frame = _frame(4, (300, 200, 3))  # portrait: the centre crop (not a letterbox) decides what is seen
    model, ours = _ours(onnx_of["yolo11n-cls.yaml"], frame, top_k=5)
    assert model.task == "classify"
    ref = _ultra(onnx_of["yolo11n-cls.yaml"], "classify", frame).probs
    assert ours.top1 == int(ref.top1)
    assert set(ours.top.tolist()) == set(int(i) for i in ref.top5)
    np.testing.assert_allclose(ours.probs, ref.data.numpy(), atol=0.02)


def test_task_override_and_filters(onnx_of):
    frame = _frame()
    path = onnx_of["yolo11n-seg.yaml"]
    with edgeinfer.load(path, device="cpu", warmup=0, task="generic") as model:
        raw = model(frame)
    assert isinstance(raw, dict) and sorted(np.ndim(v) for v in raw.values()) == [2, 3]
    _, every = _ours(path, frame, conf=CONF)
    wanted = int(np.bincount(every.class_id).argmax())
    _, only = _ours(path, frame, conf=CONF, classes=[wanted])
    assert len(only) > 0 and set(only.class_id.tolist()) == {wanted}
    _, strict = _ours(path, frame, conf=CONF, class_conf={wanted: 0.99})
    assert wanted not in strict.class_id.tolist() and len(strict) > 0
    with pytest.raises(BackendError, match="do not fit"):
        with edgeinfer.load(onnx_of["yolo11n-pose.yaml"], device="cpu", warmup=0, task="segment") as model:
            model(frame)


def test_tiny_masks_still_get_a_polygon_with_an_area():
    """A one-pixel mask (or a 1-px line) is a 1- or 2-point contour; its polygon is the pixels' outline instead."""
    from edgeinfer.runtime.task_results import Segments

    dot = np.zeros((3, 3), bool)
    dot[1, 1] = True
    line = np.zeros((2, 5), bool)
    line[0, 1:4] = True
    seg = Segments([[10, 20, 13, 23], [0, 0, 5, 2]], [0.9, 0.8], [0, 0], {0: "a"}, image_shape=(40, 40),
                   mask_crops=[dot, line], mask_origins=[[10, 20], [0, 0]])
    dot_poly, line_poly = seg.polygons()
    assert dot_poly.shape == (4, 2) and line_poly.shape == (4, 2)
    assert dot_poly.min(axis=0).tolist() == [10.5, 20.5] and dot_poly.max(axis=0).tolist() == [11.5, 21.5]
    assert line_poly.min(axis=0).tolist() == [0.5, -0.5] and line_poly.max(axis=0).tolist() == [3.5, 0.5]
