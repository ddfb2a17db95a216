"""Detection metrics, vectorised numpy: IoU, matching, COCO-style mAP50 / mAP50-95, box agreement.

* Matching (per image, per IoU threshold): same class, IoU ≥ t; the highest-IoU pairs are taken
  first and each prediction and each ground-truth box is used once (Ultralytics' ``match_predictions``).
* AP (per class, COCO): predictions of all images sorted by score; precision made monotone
  (the envelope from the right) and sampled at 101 recall points 0, 0.01, …, 1; a recall point
  beyond the reached recall counts 0. mAP = mean over classes that have ground truth;
  mAP50-95 = mean over IoU thresholds 0.50:0.05:0.95.

Example:
    >>> import numpy as np
    >>> gt = [(np.array([[0, 0, 10, 10.]]), np.array([0]))]
    >>> pred = [(np.array([[0, 0, 10, 10.]]), np.array([0.9]), np.array([0]))]
    >>> detection_map(pred, gt)
    {'map50': 1.0, 'map50_95': 1.0, 'classes': 1, 'images': 1}
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,4) × (M,4) xyxy → (N,M) IoU."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match(pred_xyxy: np.ndarray, pred_cls: np.ndarray, gt_xyxy: np.ndarray, gt_cls: np.ndarray,
          thresholds: Sequence[float] = IOU_THRESHOLDS) -> np.ndarray:
    """(Npred, T) bool: is each prediction a true positive at each IoU threshold."""
    thresholds = np.asarray(thresholds, np.float64)
    tp = np.zeros((len(pred_xyxy), len(thresholds)), bool)
    if len(pred_xyxy) == 0 or len(gt_xyxy) == 0:
        return tp
    iou = box_iou(pred_xyxy, gt_xyxy) * (np.asarray(pred_cls)[:, None] == np.asarray(gt_cls)[None, :])
    for t, thr in enumerate(thresholds):
        p, g = np.nonzero(iou >= thr - 1e-9)
        if len(p) == 0:
            continue
        order = np.argsort(-iou[p, g], kind="stable")
        p, g = p[order], g[order]
        _, first_p = np.unique(p, return_index=True)  # best pair of each prediction
        p, g = p[first_p], g[first_p]
        order = np.argsort(-iou[p, g], kind="stable")
        p, g = p[order], g[order]
        _, first_g = np.unique(g, return_index=True)  # then each ground truth once
        tp[p[first_g], t] = True
    return tp


def average_precision(tp: np.ndarray, scores: np.ndarray, n_gt: int) -> np.ndarray:
    """101-point interpolated AP per IoU threshold for one class: tp (N,T), scores (N,) → (T,)."""
    if n_gt == 0:
        return np.full(tp.shape[1], np.nan)
    if len(scores) == 0:
        return np.zeros(tp.shape[1])
    order = np.argsort(-np.asarray(scores), kind="stable")
    tpc = np.cumsum(tp[order], axis=0)
    fpc = np.cumsum(~tp[order], axis=0)
    recall = tpc / n_gt
    precision = tpc / np.maximum(tpc + fpc, 1e-12)
    envelope = np.flip(np.maximum.accumulate(np.flip(precision, axis=0), axis=0), axis=0)
    ap = np.zeros(tp.shape[1])
    for t in range(tp.shape[1]):
        idx = np.searchsorted(recall[:, t], _RECALL_POINTS, side="left")
        sampled = np.where(idx < len(recall), envelope[np.minimum(idx, len(recall) - 1), t], 0.0)
        ap[t] = sampled.mean()
    return ap


def detection_map(preds: Sequence[tuple], gts: Sequence[tuple]) -> dict:
    """mAP over images. preds: [(xyxy, score, cls)] per image; gts: [(xyxy, cls)] per image."""
    tps, scores, classes = [], [], []
    gt_classes = []
    for (p_xyxy, p_score, p_cls), (g_xyxy, g_cls) in zip(preds, gts):
        tps.append(match(p_xyxy, p_cls, g_xyxy, g_cls))
        scores.append(np.asarray(p_score, np.float64).reshape(-1))
        classes.append(np.asarray(p_cls, np.int64).reshape(-1))
        gt_classes.append(np.asarray(g_cls, np.int64).reshape(-1))
    tp = np.concatenate(tps) if tps else np.zeros((0, len(IOU_THRESHOLDS)), bool)
    score = np.concatenate(scores) if scores else np.zeros(0)
    cls = np.concatenate(classes) if classes else np.zeros(0, np.int64)
    gt_cls = np.concatenate(gt_classes) if gt_classes else np.zeros(0, np.int64)
    per_class = [average_precision(tp[cls == c], score[cls == c], int((gt_cls == c).sum()))
                 for c in np.unique(gt_cls)]
    if not per_class:
        return {"map50": 0.0, "map50_95": 0.0, "classes": 0, "images": len(gts)}
    ap = np.vstack(per_class)
    return {"map50": round(float(ap[:, 0].mean()), 6), "map50_95": round(float(ap.mean()), 6),
            "classes": len(per_class), "images": len(gts)}


def box_agreement(candidate: Sequence[tuple], reference: Sequence[tuple], *, iou: float = 0.5) -> dict:
    """Precision/recall/F1 of candidate boxes against reference boxes (same class, IoU ≥ ``iou``).

    With no reference box there is nothing to agree on: precision/recall/F1 are None (not 1.0:
    two models that both find nothing have not been shown to agree), and ``reference_boxes``
    says how much the figures rest on (the accuracy gate requires a minimum).

    Example:
        >>> box_agreement([(np.zeros((0, 4)), [], [])], [(np.zeros((0, 4)), [], [])])["f1"] is None
        True
    """
    tp = n_cand = n_ref = 0
    for (c_xyxy, _, c_cls), (r_xyxy, _, r_cls) in zip(candidate, reference):
        tp += int(match(c_xyxy, c_cls, r_xyxy, r_cls, [iou])[:, 0].sum())
        n_cand += len(c_xyxy)
        n_ref += len(r_xyxy)
    if n_ref == 0:
        return {"precision": None, "recall": None, "f1": None, "boxes": n_cand, "reference_boxes": 0}
    precision = tp / n_cand if n_cand else 0.0
    recall = tp / n_ref
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6),
            "boxes": n_cand, "reference_boxes": n_ref}
