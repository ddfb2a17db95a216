"""Decoding of every output layout, NMS against a slow reference, mapping to the frame."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeinfer.errors import BackendError, ConfigError
from edgeinfer.runtime.postprocess import MAX_WH, Postprocessor, decode_yolo, nms, postprocess
from edgeinfer.runtime.preprocess import letterbox_geometry


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(boxes, scores, thr, classes=None):
    """The textbook greedy loop, one box at a time."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(not (classes is None or classes[i] == classes[k]) or _iou(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
    return keep


def _random_boxes(rng, n, extent=100.0):
    xy = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(1, extent / 2, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 120), thr=st.sampled_from([0.1, 0.3, 0.45, 0.7, 0.9]),
       ncls=st.integers(1, 4))
def test_nms_matches_reference(seed, n, thr, ncls):
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, n)
    scores = rng.permutation(n).astype(np.float32) / max(n, 1) + 0.01  # distinct: greedy order is unambiguous
    classes = rng.integers(0, ncls, n)
    got = nms(boxes, scores, thr, class_id=classes).tolist()
    assert got == reference_nms(boxes.astype(np.float64), scores, thr, classes)
    assert nms(boxes, scores, thr).tolist() == reference_nms(boxes.astype(np.float64), scores, thr)


def test_nms_max_det_and_chains():
    # a chain A > B > C where A suppresses B but not C: greedy keeps A and C
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.3).tolist() == [0, 2]
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.3, max_det=1).tolist() == [0]


def _v8_output(boxes_xywh, cls, score, nc, n_anchors=50, batch=1, rng=None):
    rng = rng or np.random.default_rng(0)
    out = np.zeros((batch, 4 + nc, n_anchors), np.float32)
    out[:, :4] = rng.uniform(0, 50, (batch, 4, n_anchors))
    out[:, 4:] = rng.uniform(0, 0.1, (batch, nc, n_anchors))  # background below conf
    for b in range(batch):
        for k, (bx, c, s) in enumerate(zip(boxes_xywh, cls, score)):
            out[b, :4, k] = bx
            out[b, 4 + c, k] = s
    return out


def test_decode_yolov8_and_map_back():
    t = letterbox_geometry((480, 640), (320, 320))  # scale 0.5, pad_top 40
    out = _v8_output([(160, 160, 40, 20), (161, 160, 40, 20), (80, 100, 10, 10)], [1, 1, 2], [0.9, 0.85, 0.6], nc=3)
    det = postprocess([out], layout="yolov8", transforms=[t], names={0: "a", 1: "b", 2: "c"})[0]
    assert det.class_id.tolist() == [1, 2]
    np.testing.assert_allclose(det.xyxy[0], [(140) * 2, (150 - 40) * 2, 180 * 2, (170 - 40) * 2], atol=1e-3)
    assert det.image_shape == (480, 640)


def test_decode_yolov8_transposed_export():
    out = _v8_output([(20, 20, 10, 10)], [0], [0.8], nc=2)
    a = postprocess([out], layout="yolov8", transforms=None, names={0: "a", 1: "b"})[0]
    b = postprocess([out.transpose(0, 2, 1).copy()], layout="yolov8", transforms=None, names={0: "a", 1: "b"})[0]
    np.testing.assert_array_equal(a.xyxy, b.xyxy)


def test_decode_yolov5_uses_objectness_times_class():
    out = np.zeros((2, 10, 5 + 2), np.float32)
    out[:, :, :4] = 5
    out[0, 0] = [20, 20, 10, 10, 0.9, 0.1, 0.8]  # score 0.72 class 1
    out[0, 1] = [60, 60, 10, 10, 0.3, 0.9, 0.0]  # score 0.27 class 0
    out[0, 2] = [20, 20, 10, 10, 0.2, 0.0, 1.0]  # objectness 0.2 < conf: dropped
    dets = postprocess([out], layout="yolov5", transforms=None, names={0: "a", 1: "b"})
    assert len(dets) == 2 and len(dets[1]) == 0
    np.testing.assert_allclose(dets[0].confidence, [0.72, 0.27], rtol=1e-5)
    assert dets[0].class_id.tolist() == [1, 0]


def test_decode_end2end_six_columns():
    out = np.zeros((1, 5, 6), np.float32)
    out[0, 0] = [1, 2, 30, 40, 0.5, 2]
    out[0, 1] = [5, 5, 20, 20, 0.95, 0]
    out[0, 2] = [5, 5, 20, 20, 0.1, 1]
    det = Postprocessor(layout="end2end", names={}, max_det=1)([out], None)[0]
    assert det.xyxy.tolist() == [[5, 5, 20, 20]] and det.class_id.tolist() == [0]


def test_decode_efficient_nms_four_outputs():
    num = np.array([[2], [1]], np.int32)
    boxes = np.zeros((2, 4, 4), np.float32)
    boxes[0, :2] = [[1, 1, 5, 5], [2, 2, 6, 6]]
    boxes[1, 0] = [3, 3, 9, 9]
    scores = np.array([[0.9, 0.3, 0.8, 0.8], [0.7, 0.9, 0, 0]], np.float32)  # beyond num_dets: ignored
    classes = np.array([[1, 0, 1, 1], [2, 0, 0, 0]], np.int32)
    dets = postprocess([num, boxes, scores, classes], layout="end2end", transforms=None, names={})
    assert [len(d) for d in dets] == [2, 1]
    assert dets[1].class_id.tolist() == [2] and dets[1].xyxy.tolist() == [[3, 3, 9, 9]]


def test_confidence_filter_before_nms_and_max_nms():
    rng = np.random.default_rng(1)
    out = _v8_output([], [], [], nc=2, n_anchors=5000, rng=rng)
    out[0, 4, :] = rng.uniform(0.3, 1.0, 5000)
    boxes, scores, _ = decode_yolo(out, layout="yolov8", conf=0.25, max_nms=100)[0]
    assert len(scores) == 100 and scores.min() >= np.sort(out[0, 4])[-100]


def test_class_offset_exceeds_any_input():
    assert MAX_WH >= 7680


@pytest.mark.parametrize("kwargs,match", [
    (dict(layout="mystery"), "no detection decoder"),
    (dict(layout="yolov8", conf=1.5), "outside 0..1"),
    (dict(layout="yolov8", max_det=0), "must be >= 1"),
])
def test_bad_postprocessor_args(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Postprocessor(**kwargs)


def test_wrong_output_rank_is_a_backend_error():
    with pytest.raises(BackendError, match="3 dimensions"):
        postprocess([np.zeros((7, 10), np.float32)], layout="yolov8", transforms=None, names={})
