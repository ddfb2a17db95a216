"""mAP / matching against small cases computed by hand."""
from __future__ import annotations

import numpy as np
import pytest

from edgeinfer.quantize.metrics import average_precision, box_agreement, box_iou, detection_map, match

GT = [(np.array([[0, 0, 10, 10.0]]), np.array([0]))]


def _pred(boxes, scores, cls):
    return (np.array(boxes, float).reshape(-1, 4), np.array(scores, float), np.array(cls))


def test_iou():
    assert box_iou([[0, 0, 10, 10]], [[0, 0, 10, 6.2]])[0, 0] == pytest.approx(0.62)
    assert box_iou([[0, 0, 10, 10]], [[20, 20, 30, 30]])[0, 0] == 0.0


def test_perfect_prediction():
    assert detection_map([_pred([[0, 0, 10, 10]], [0.9], [0])], GT)["map50_95"] == 1.0


def test_iou_062_counts_at_three_of_ten_thresholds():
    r = detection_map([_pred([[0, 0, 10, 6.2]], [0.9], [0])], GT)
    assert r["map50"] == 1.0 and r["map50_95"] == pytest.approx(0.3)  # TP at .50 .55 .60 only


def test_wrong_class_is_no_match():
    assert detection_map([_pred([[0, 0, 10, 10]], [0.9], [1])], GT)["map50"] == 0.0


def test_half_recall_with_a_false_positive():
    gt = [(np.array([[0, 0, 10, 10], [50, 50, 60, 60.0]]), np.array([0, 0]))]
    pred = [_pred([[0, 0, 10, 10], [100, 100, 110, 110]], [0.9, 0.8], [0, 0])]
    # P/R points: (1.0, 0.5), (0.5, 0.5): precision 1 for recall 0..0.50 (51 of 101 points), 0 after
    assert detection_map(pred, gt)["map50"] == pytest.approx(51 / 101)


def test_false_positive_ranked_first_halves_precision():
    pred = [_pred([[100, 100, 110, 110], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])]
    assert detection_map(pred, GT)["map50"] == pytest.approx(0.5)  # envelope 0.5 at every recall point


def test_mean_over_classes_and_images():
    gts = GT + [(np.array([[0, 0, 4, 4.0]]), np.array([1]))]
    preds = [_pred([[0, 0, 10, 10]], [0.9], [0]), _pred([], [], [])]  # class 1 never found
    r = detection_map(preds, gts)
    assert (r["map50"], r["classes"], r["images"]) == (0.5, 2, 2)


def test_each_ground_truth_matched_once():
    tp = match(np.array([[0, 0, 10, 10], [0, 0, 10, 9.5]]), np.array([0, 0]), GT[0][0], GT[0][1], [0.5])
    assert tp[:, 0].tolist() == [True, False]
    ap = average_precision(tp, np.array([0.9, 0.8]), 1)
    assert ap[0] == pytest.approx(1.0)  # the duplicate comes after full recall


def test_box_agreement():
    ref = [_pred([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.9], [0, 1])]
    cand = [_pred([[0, 0, 10, 10.5], [50, 50, 60, 60]], [0.8, 0.7], [0, 1])]
    a = box_agreement(cand, ref)
    assert (a["precision"], a["recall"], a["f1"]) == (0.5, 0.5, 0.5)
    empty = [_pred([], [], [])]
    both_empty = box_agreement(empty, empty)  # nothing found either way is not agreement
    assert both_empty["f1"] is None and both_empty["reference_boxes"] == 0
    assert box_agreement(cand, empty)["f1"] is None  # no reference: nothing measured
    assert box_agreement(empty, ref)["f1"] == 0.0
