"""Decode YOLO outputs, filter by confidence, class-aware NMS (vectorised numpy), map to the frame.

Layouts (``ModelInfo.output_layout``):

* ``yolov8``  — ``[B, 4+nc, N]`` (YOLOv8 / YOLO11): cx, cy, w, h then class scores.
  ``[B, N, 4+nc]`` (transposed exports) is recognised when the class count is known.
* ``yolov5``  — ``[B, N, 5+nc]``: cx, cy, w, h, objectness, class scores (score = obj * cls).
* ``end2end`` — NMS inside the model: ``[B, K, 6]`` rows ``x1 y1 x2 y2 score class``.
* ``efficient_nms`` (or ``end2end`` with four outputs) — the EfficientNMS_TRT form
  ``num_dets [B,1], boxes [B,K,4], scores [B,K], classes [B,K]``.
* ``centerface`` — CenterFace's stride-4 maps (heatmap, log size, offset, landmarks), decoded as its
  reference implementation does (github.com/Star-Clouds/CenterFace, ``prototype/python/centerface.py``):
  a box per heatmap cell above the threshold, size ``exp(s) * 4``, centre ``(cell + offset + 0.5) * 4``,
  then NMS. Landmarks are not decoded.

The confidence filter runs *before* NMS, so NMS only sees candidates (tens to hundreds of boxes).

NMS (:func:`nms`) is greedy, class-aware by the coordinate-offset trick (each class shifted by
``class * 7680`` px, as Ultralytics does, so boxes of different classes never overlap). It builds
the N x N "overlaps a higher-scored box" matrix once (O(N^2) time and memory, computed in row
chunks) and then resolves the greedy order in *rounds*, each one vectorised over all boxes:
a box whose every higher-scored overlapping box is already suppressed is kept; a box overlapped
by a kept box is suppressed. Each round decides at least the best undecided box, so there are at
most N rounds, and in practice as many as the longest chain of "A suppresses B which would have
suppressed C" (2-5 on real detections): O(R * N^2) with R small. Candidates are capped at
``max_nms`` (highest scores first) to bound the matrix.

Example:
    >>> import numpy as np
    >>> out = np.zeros((1, 6, 3), np.float32)   # yolov8 layout, 2 classes, 3 anchors
    >>> out[0, :4, 0] = [50, 50, 20, 20]; out[0, 4, 0] = 0.9
    >>> out[0, :4, 1] = [51, 50, 20, 20]; out[0, 4, 1] = 0.8    # overlaps anchor 0, same class
    >>> out[0, :4, 2] = [51, 50, 20, 20]; out[0, 5, 2] = 0.7    # same place, other class
    >>> dets = postprocess([out], layout="yolov8", transforms=None, names={0: "a", 1: "b"})
    >>> dets[0].class_names, [round(float(c), 2) for c in dets[0].confidence]
    (['a', 'b'], [0.9, 0.7])
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import BackendError, ConfigError, InternalError
from .detections import Detections
from .preprocess import LetterboxTransform

MAX_WH = 7680.0  # class offset in pixels (Ultralytics' max_wh): larger than any input side
DETECT_LAYOUTS = ("yolov8", "yolov5", "end2end", "efficient_nms", "centerface")
CENTERFACE_STRIDE = 4
_NMS_INSIDE = ("end2end", "efficient_nms")

Candidates = Tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes xyxy (n,4) f32, scores (n,) f32, class ids (n,) i64


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """(n, 4) centre-size boxes -> corner boxes (new float32 array)."""
    xywh = np.asarray(xywh, np.float32)
    out = np.empty(xywh.shape, np.float32)
    half = xywh[:, 2:] * 0.5
    np.subtract(xywh[:, :2], half, out=out[:, :2])
    np.add(xywh[:, :2], half, out=out[:, 2:])
    return out


def _overlap_matrix(boxes: np.ndarray, iou_thres: float, chunk: int = 512) -> np.ndarray:
    """float32 (n, n): 1 where IoU(i, j) > thres and i ranks above j (i < j), else 0."""
    n = len(boxes)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    over = np.empty((n, n), np.float32)
    for start in range(0, n, chunk):  # chunks of rows bound the float temporaries to chunk x n
        rows = slice(start, min(start + chunk, n))
        inter = np.minimum(x2[rows, None], x2)
        inter -= np.maximum(x1[rows, None], x1)
        np.maximum(inter, 0, out=inter)
        ih = np.minimum(y2[rows, None], y2)
        ih -= np.maximum(y1[rows, None], y1)
        np.maximum(ih, 0, out=ih)
        inter *= ih
        union = np.add(area[rows, None], area, out=ih)  # reuse ih's memory
        union -= inter
        union *= iou_thres
        np.greater(inter, union, out=over[rows])  # IoU > thres without a division
    return np.triu(over, 1)  # only higher-ranked boxes suppress lower-ranked ones


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_thres: float, *,
        class_id: Optional[np.ndarray] = None, max_det: Optional[int] = None) -> np.ndarray:
    """Greedy (class-aware when ``class_id`` is given) NMS; indices kept, best score first.

    Same result as the textbook loop "take the best box, drop everything overlapping it by more
    than ``iou_thres``, repeat", computed in vectorised rounds (see the module docstring).

    Example:
        >>> b = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
        >>> nms(b, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist()
        [0, 2]
    """
    scores = np.asarray(scores, np.float32).reshape(-1)
    n = len(scores)
    if n <= 1:  # nothing to suppress
        keep = np.zeros((n,), np.int64)
        return keep if max_det is None else keep[:max_det]
    order = np.argsort(-scores, kind="stable")
    boxes = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)[order]
    if class_id is not None:
        boxes = boxes + (np.asarray(class_id).reshape(-1)[order].astype(np.float32) * MAX_WH)[:, None]
    over = _overlap_matrix(boxes, float(iou_thres))
    # state per box as float32 0/1 vectors so each test is one BLAS mat-vec
    undecided = np.ones(n, np.float32)
    kept = np.zeros(n, np.float32)
    while True:
        blocked = (undecided + kept) @ over  # > 0: an undecided-or-kept higher box overlaps it
        newly_kept = undecided * (blocked == 0)
        if not newly_kept.any():  # impossible by construction (the best undecided box is free)
            raise InternalError("NMS made no progress in a round")
        kept += newly_kept
        undecided -= newly_kept
        undecided *= (kept @ over) == 0  # overlapped by a kept box: suppressed
        if not undecided.any():
            break
    keep = order[kept > 0]  # `order` is score-descending and `kept` preserves it
    return keep if max_det is None else keep[:max_det]


class Postprocessor:
    """Decode + confidence filter + NMS + map back, for one model; reuses its scratch buffers.

    Args:
        layout: ``yolov8`` | ``yolov5`` | ``end2end``.
        names: class id -> name.
        conf, iou, max_det: thresholds and cap (Ultralytics' defaults: 0.25, 0.45 here / 0.7 in its CLI, 300).
        max_nms: candidates kept (best first) before NMS; bounds NMS memory to max_nms^2 floats.
        classes: keep only these class ids; class_conf: class id -> its own threshold (``conf`` for the rest).
        agnostic: NMS across classes.

    Example:
        >>> post = Postprocessor(layout="end2end", names={0: "a"})
        >>> out = np.array([[[1, 2, 3, 4, 0.9, 0], [0, 0, 0, 0, 0.1, 0]]], np.float32)
        >>> post([out], None)[0].xyxy.tolist()
        [[1.0, 2.0, 3.0, 4.0]]
    """

    def __init__(self, *, layout: str, names: Optional[Dict[int, str]] = None, conf: float = 0.25,
                 iou: float = 0.45, max_det: int = 300, max_nms: int = 3000, classes: Optional[Sequence[int]] = None,
                 class_conf: Optional[Dict[int, float]] = None, agnostic: bool = False) -> None:
        if layout not in DETECT_LAYOUTS:
            raise ConfigError(f"output layout {layout!r} has no detection decoder",
                              hint=f"use one of {', '.join(DETECT_LAYOUTS)}, or treat the model as generic")
        for label, value in (("conf", conf), ("iou", iou)):
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"{label}={value} is outside 0..1", hint=f"pass {label} between 0 and 1")
        if int(max_det) < 1 or int(max_nms) < 1:
            raise ConfigError(f"max_det={max_det}, max_nms={max_nms} must be >= 1", hint="use e.g. max_det=300")
        self.layout = layout
        self.names = dict(names or {})
        self.conf, self.iou = float(conf), float(iou)
        self.max_det, self.max_nms = int(max_det), int(max_nms)
        from .tasks.options import DecodeOptions  # validates the per-class thresholds too

        self.opts = DecodeOptions(conf=conf, iou=iou, max_det=max_det, max_nms=max_nms, classes=classes,
                                  class_conf=dict(class_conf or {}), agnostic=agnostic)
        self._cut = self.opts.min_conf  # first cut: the lowest threshold of any class
        self._best: Dict[int, np.ndarray] = {}  # per-anchor best score scratch, keyed by anchor count

    def __call__(self, outputs: Sequence[np.ndarray],
                 transforms: Optional[Sequence[Optional[LetterboxTransform]]]) -> List[Detections]:
        """Raw model outputs (batch-first) -> one :class:`Detections` per image."""
        if not outputs:
            raise BackendError("the model returned no outputs", hint="check the model's output tensors")
        per_image = self._decode(outputs)
        if transforms is not None and len(transforms) < len(per_image):
            per_image = per_image[:len(transforms)]  # padded batch slots carry no frame
        results = []
        for i, (boxes, scores, cls) in enumerate(per_image):
            if self.opts.filters and len(scores):
                ok = np.flatnonzero(self.opts.accept(scores, cls))
                if self.layout in _NMS_INSIDE:  # no NMS below to apply the cap
                    ok = ok[:self.max_det]
                boxes, scores, cls = boxes[ok], scores[ok], cls[ok]
            if self.layout not in _NMS_INSIDE and len(scores):
                keep = nms(boxes, scores, self.iou, class_id=None if self.opts.agnostic else cls, max_det=self.max_det)
                boxes, scores, cls = boxes[keep], scores[keep], cls[keep]
            t = transforms[i] if transforms is not None else None
            if t is not None:
                boxes = t.to_original(boxes, out=boxes)
            results.append(Detections(boxes, scores, cls, self.names, t.src_hw if t is not None else None))
        return results

    def _decode(self, outputs: Sequence[np.ndarray]) -> List[Candidates]:
        if self.layout in _NMS_INSIDE:
            if len(outputs) >= 4 and np.ndim(outputs[1]) == 3 and np.shape(outputs[1])[-1] == 4:
                return _decode_efficient_nms(outputs, self._cut, self.max_det if not self.opts.filters else 10 ** 9)
            return _decode_end2end(np.asarray(outputs[0]), self._cut, self.max_det if not self.opts.filters else 10 ** 9)
        if self.layout == "centerface":
            return _decode_centerface(outputs, self._cut, self.max_nms)
        pred = np.asarray(outputs[0])
        if pred.ndim != 3:
            raise BackendError(f"{self.layout} output has shape {pred.shape}, expected 3 dimensions [B, ., .]",
                               hint="check the model's output_layout (yolov8 / yolov5 / end2end / generic)")
        if self.layout == "yolov8":
            return [self._decode_v8(p) for p in pred]
        return [self._decode_v5(p) for p in pred]

    def _decode_v8(self, pred: np.ndarray) -> Candidates:
        nc = len(self.names)
        if nc and pred.shape[0] != 4 + nc and pred.shape[1] == 4 + nc:
            pred = pred.T  # [N, 4+nc] export
        if pred.shape[0] < 5:
            raise BackendError(f"yolov8 output has {pred.shape[0]} rows, expected 4 + classes",
                               hint="the model's output is not [B, 4+nc, N]; check output_layout")
        n = pred.shape[1]
        best = self._best.get(n)
        if best is None:
            best = self._best[n] = np.empty((n,), pred.dtype if pred.dtype == np.float32 else np.float32)
        np.max(pred[4:], axis=0, out=best)
        idx = np.flatnonzero(best > self._cut)
        if self.opts.filters:  # per-class thresholds / class filter before the top-N cap, as Ultralytics
            idx = idx[self.opts.accept(best[idx], pred[4:, idx].argmax(axis=0))]
        idx = _top(idx, best[idx], self.max_nms)
        cls_scores = pred[4:, idx]
        cls = cls_scores.argmax(axis=0)
        return xywh_to_xyxy(pred[:4, idx].T), best[idx].astype(np.float32), cls.astype(np.int64)

    def _decode_v5(self, pred: np.ndarray) -> Candidates:
        if pred.shape[1] < 6:
            raise BackendError(f"yolov5 output rows have {pred.shape[1]} values, expected 5 + classes",
                               hint="the model's output is not [B, N, 5+nc]; check output_layout")
        idx = np.flatnonzero(pred[:, 4] > self._cut)  # objectness first: cheap, drops most anchors
        rows = pred[idx]
        scores_all = rows[:, 5:] * rows[:, 4:5]
        cls = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(len(rows)), cls]
        ok = self.opts.accept(scores, cls)
        rows, scores, cls = rows[ok], scores[ok], cls[ok]
        sel = _top(np.arange(len(scores)), scores, self.max_nms)
        return xywh_to_xyxy(rows[sel, :4]), scores[sel].astype(np.float32), cls[sel].astype(np.int64)


def _top(idx: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest-scoring entries of ``idx`` (all of them when there are fewer)."""
    if len(idx) <= k:
        return idx
    return idx[np.argpartition(-scores, k - 1)[:k]]


def _decode_end2end(pred: np.ndarray, conf: float, max_det: int) -> List[Candidates]:
    if pred.ndim != 3 or pred.shape[-1] < 6:
        raise BackendError(f"end2end output has shape {pred.shape}, expected [B, K, 6]",
                           hint="end-to-end models emit rows x1 y1 x2 y2 score class")
    result = []
    for p in pred:
        keep = np.flatnonzero(p[:, 4] > conf)
        keep = keep[np.argsort(-p[keep, 4], kind="stable")][:max_det]
        rows = p[keep]
        result.append((rows[:, :4].astype(np.float32), rows[:, 4].astype(np.float32), rows[:, 5].astype(np.int64)))
    return result


def _decode_efficient_nms(outputs: Sequence[np.ndarray], conf: float, max_det: int) -> List[Candidates]:
    """EfficientNMS_TRT outputs, in its order: num_dets, det_boxes, det_scores, det_classes."""
    num, boxes, scores, classes = (np.asarray(o) for o in outputs[:4])
    result = []
    for b in range(boxes.shape[0]):
        k = int(num.reshape(boxes.shape[0], -1)[b, 0])
        s = scores[b, :k].reshape(-1)
        keep = np.flatnonzero(s > conf)[:max_det]  # already sorted by score inside the plugin
        result.append((boxes[b, keep].astype(np.float32), s[keep].astype(np.float32),
                       classes[b, :k].reshape(-1)[keep].astype(np.int64)))
    return result


def _decode_centerface(outputs: Sequence[np.ndarray], conf: float, max_nms: int) -> List[Candidates]:
    if len(outputs) < 3 or np.ndim(outputs[0]) != 4:
        raise BackendError(f"centerface outputs have shapes {[np.shape(o) for o in outputs]}, expected 4 maps "
                           "[B,1,h,w], [B,2,h,w], [B,2,h,w], [B,10,h,w]", hint="check the model's output_layout")
    heat, size, offset = (np.asarray(o) for o in outputs[:3])
    result = []
    s = float(CENTERFACE_STRIDE)
    for b in range(heat.shape[0]):
        ys, xs = np.nonzero(heat[b, 0] > conf)
        scores = heat[b, 0, ys, xs].astype(np.float32)
        sel = _top(np.arange(len(scores)), scores, max_nms)
        ys, xs, scores = ys[sel], xs[sel], scores[sel]
        h = np.exp(size[b, 0, ys, xs].astype(np.float32)) * s
        w = np.exp(size[b, 1, ys, xs].astype(np.float32)) * s
        cy = (ys + offset[b, 0, ys, xs] + 0.5) * s
        cx = (xs + offset[b, 1, ys, xs] + 0.5) * s
        boxes = xywh_to_xyxy(np.stack([cx, cy, w, h], axis=1).reshape(-1, 4))
        result.append((boxes, scores, np.zeros(len(scores), np.int64)))
    return result


def decode_yolo(output: np.ndarray, *, layout: str, conf: float = 0.25, nc: Optional[int] = None,
                max_nms: int = 3000) -> List[Candidates]:
    """Candidates (boxes xyxy in input pixels, scores, class ids) per image, before NMS.

    Example:
        >>> out = np.zeros((1, 5, 2), np.float32); out[0, :, 0] = [10, 10, 4, 4, 0.5]
        >>> boxes, scores, cls = decode_yolo(out, layout="yolov8")[0]
        >>> boxes.tolist(), scores.tolist()
        ([[8.0, 8.0, 12.0, 12.0]], [0.5])
    """
    names = {i: str(i) for i in range(nc)} if nc else {}
    return Postprocessor(layout=layout, names=names, conf=conf, max_nms=max_nms)._decode([output])


def postprocess(outputs: Sequence[np.ndarray], *, layout: str,
                transforms: Optional[Sequence[Optional[LetterboxTransform]]], names: Dict[int, str],
                conf: float = 0.25, iou: float = 0.45, max_det: int = 300) -> List[Detections]:
    """One-off form of :class:`Postprocessor` (use the class in a loop to reuse its buffers)."""
    return Postprocessor(layout=layout, names=names, conf=conf, iou=iou, max_det=max_det)(outputs, transforms)
