"""Candidate selection for every YOLO head: score filter, class filter, top-N, then (class-aware) NMS.

Three head forms carry extra channels after the class scores (mask coefficients, keypoints, angle):

* ``yolov8``  ``[C, N]`` with C = 4 + nc + extra (YOLOv8 / YOLO11 / YOLO26 one-to-many head), xywh;
* ``yolov5``  ``[N, C]`` with C = 5 + nc + extra (objectness; score = obj x cls), xywh;
* ``end2end`` ``[K, C]`` with C = 6 + extra (x1 y1 x2 y2 score class, NMS-free heads: YOLOv10/YOLO26).

The score threshold runs before anything else so the rest only touches candidates.

Example:
    >>> import numpy as np
    >>> p = np.zeros((4 + 2 + 1, 3), np.float32)          # 2 classes, 1 extra channel, 3 anchors
    >>> p[:4, 0] = [10, 10, 4, 4]; p[4, 0] = 0.9; p[6, 0] = 7
    >>> c = select_v8(p, 2, DecodeOptions(conf=0.5))
    >>> c.boxes.tolist(), c.cls.tolist(), c.extra.tolist()
    ([[10.0, 10.0, 4.0, 4.0]], [0], [[7.0]])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..postprocess import nms, xywh_to_xyxy
from .options import DecodeOptions


@dataclass
class Candidates:
    boxes: np.ndarray  # (n, 4) float32: xywh (v8/v5) or xyxy (end2end), model-input pixels
    scores: np.ndarray  # (n,) float32
    cls: np.ndarray  # (n,) int64
    extra: np.ndarray  # (n, E) float32

    def take(self, idx: np.ndarray) -> "Candidates":
        return Candidates(self.boxes[idx], self.scores[idx], self.cls[idx], self.extra[idx])

    def __len__(self) -> int:
        return len(self.scores)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    if len(scores) <= k:
        return np.arange(len(scores))
    return np.argpartition(-scores, k - 1)[:k]


def select_v8(pred: np.ndarray, nc: int, opts: DecodeOptions) -> Candidates:
    """``[4 + nc + E, N]`` -> candidates above threshold (best class per anchor)."""
    cls_scores = pred[4:4 + nc]
    best = cls_scores.max(axis=0)
    idx = np.flatnonzero(best > opts.min_conf)
    cls = cls_scores[:, idx].argmax(axis=0).astype(np.int64)
    scores = best[idx].astype(np.float32)
    if opts.filters:
        ok = opts.accept(scores, cls)
        idx, cls, scores = idx[ok], cls[ok], scores[ok]
    sel = _top(scores, opts.max_nms)
    idx = idx[sel]
    return Candidates(np.ascontiguousarray(pred[:4, idx].T, np.float32), scores[sel], cls[sel],
                      np.ascontiguousarray(pred[4 + nc:, idx].T, np.float32))


def select_v5(pred: np.ndarray, nc: int, opts: DecodeOptions) -> Candidates:
    """``[N, 5 + nc + E]`` (objectness) -> candidates."""
    idx = np.flatnonzero(pred[:, 4] > opts.min_conf)
    rows = pred[idx]
    all_scores = rows[:, 5:5 + nc] * rows[:, 4:5]
    cls = all_scores.argmax(axis=1).astype(np.int64)
    scores = all_scores[np.arange(len(rows)), cls].astype(np.float32)
    ok = opts.accept(scores, cls)
    rows, cls, scores = rows[ok], cls[ok], scores[ok]
    sel = _top(scores, opts.max_nms)
    return Candidates(rows[sel, :4].astype(np.float32), scores[sel], cls[sel], rows[sel, 5 + nc:].astype(np.float32))


def select_end2end(pred: np.ndarray, opts: DecodeOptions) -> Candidates:
    """``[K, 6 + E]`` rows already NMS-free and sorted by the model: threshold, filter, cap (model order kept)."""
    cls = pred[:, 5].astype(np.int64)
    ok = opts.accept(pred[:, 4], cls)
    idx = np.flatnonzero(ok)[:opts.max_det]
    rows = pred[idx]
    return Candidates(rows[:, :4].astype(np.float32), rows[:, 4].astype(np.float32), cls[idx],
                      rows[:, 6:].astype(np.float32))


def nms_xyxy(c: Candidates, opts: DecodeOptions) -> Candidates:
    """Convert xywh candidates to xyxy and run greedy class-aware NMS (Ultralytics' ``non_max_suppression``)."""
    boxes = xywh_to_xyxy(c.boxes)
    if len(c) == 0:
        return Candidates(boxes, c.scores, c.cls, c.extra)
    keep = nms(boxes, c.scores, opts.iou, class_id=None if opts.agnostic else c.cls, max_det=opts.max_det)
    return Candidates(boxes[keep], c.scores[keep], c.cls[keep], c.extra[keep])


def select(pred: np.ndarray, layout: str, nc: int, opts: DecodeOptions) -> Candidates:
    """Candidates in xyxy after NMS (or the model's own NMS-free selection), for one image."""
    if layout == "end2end":
        return select_end2end(pred, opts)
    c = select_v8(pred, nc, opts) if layout == "yolov8" else select_v5(pred, nc, opts)
    return nms_xyxy(c, opts)
