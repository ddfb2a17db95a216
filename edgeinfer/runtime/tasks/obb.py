"""Oriented boxes (Ultralytics ``-obb`` heads): rotated boxes and rotated NMS (ProbIoU).

The head emits ``[B, 4+nc+1, N]``: centre, size (input pixels), class scores, angle (radians); or
end-to-end ``[B, K, 7]`` x y w h score class angle. Overlap between rotated boxes is Ultralytics'
ProbIoU (Hellinger distance between the boxes' Gaussian approximations, Llerena et al. 2021,
arXiv:2106.06072), and NMS is the same one-shot "fast NMS" Ultralytics runs for OBB: a box is dropped
when any higher-scored box of its class overlaps it by more than ``iou``. Classes are kept apart by
offsetting centres by ``class * 7680`` px, as Ultralytics does.

Example:
    >>> import numpy as np
    >>> b = np.array([[50, 50, 40, 10, 0.3], [51, 50, 40, 10, 0.32], [150, 50, 40, 10, 0]], np.float32)
    >>> rotated_nms(b, np.array([0.9, 0.8, 0.7], np.float32), 0.5).tolist()
    [0, 2]
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..postprocess import MAX_WH
from ..preprocess import LetterboxTransform
from ..task_results import OrientedBoxes
from .base import TaskDecoder
from .candidates import select_end2end, select_v5, select_v8

_EPS = 1e-7


def _cov(b: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = b[:, 2] ** 2 / 12
    bb = b[:, 3] ** 2 / 12
    cos, sin = np.cos(b[:, 4]), np.sin(b[:, 4])
    return a * cos ** 2 + bb * sin ** 2, a * sin ** 2 + bb * cos ** 2, (a - bb) * cos * sin


def probiou_matrix(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """(n, m) ProbIoU between xywhr boxes (Ultralytics ``batch_probiou``, float64 here)."""
    b1 = np.asarray(b1, np.float64)
    b2 = np.asarray(b2, np.float64)
    a1, bb1, c1 = (v[:, None] for v in _cov(b1))
    a2, bb2, c2 = (v[None, :] for v in _cov(b2))
    x1, y1 = b1[:, 0:1], b1[:, 1:2]
    x2, y2 = b2[None, :, 0], b2[None, :, 1]
    sa, sb, sc = a1 + a2, bb1 + bb2, c1 + c2
    den = sa * sb - sc ** 2 + _EPS
    t1 = (sa * (y1 - y2) ** 2 + sb * (x1 - x2) ** 2) / den * 0.25
    t2 = (sc * (x2 - x1) * (y1 - y2)) / den * 0.5
    det1 = np.clip(a1 * bb1 - c1 ** 2, 0, None)
    det2 = np.clip(a2 * bb2 - c2 ** 2, 0, None)
    t3 = np.log((sa * sb - sc ** 2) / (4 * np.sqrt(det1 * det2) + _EPS) + _EPS) * 0.5
    bd = np.clip(t1 + t2 + t3, _EPS, 100.0)
    return 1.0 - np.sqrt(1.0 - np.exp(-bd) + _EPS)


def rotated_nms(xywhr: np.ndarray, scores: np.ndarray, iou: float, *, class_id: Optional[np.ndarray] = None,
                max_det: Optional[int] = None) -> np.ndarray:
    """Indices kept, best score first (fast NMS over ProbIoU, as Ultralytics' OBB predictor)."""
    n = len(scores)
    if n == 0:
        return np.zeros((0,), np.int64)
    order = np.argsort(-np.asarray(scores), kind="stable")
    boxes = np.asarray(xywhr, np.float32)[order].copy()
    if class_id is not None:
        boxes[:, :2] += (np.asarray(class_id)[order].astype(np.float32) * MAX_WH)[:, None]
    ious = np.triu(probiou_matrix(boxes, boxes), 1)
    keep = order[~(ious > iou).any(axis=0)]
    return keep if max_det is None else keep[:max_det]


def scale_xywhr(b: np.ndarray, t: LetterboxTransform) -> np.ndarray:
    """Centre and size from input pixels to frame pixels (Ultralytics ``scale_boxes(xywh=True)``), in place."""
    b[:, 0] = (b[:, 0] - t.pad_left) / t.gain_x
    b[:, 1] = (b[:, 1] - t.pad_top) / t.gain_y
    b[:, 2] /= t.gain_x
    b[:, 3] /= t.gain_y
    return b


class OBBDecoder(TaskDecoder):
    """OBB head -> :class:`OrientedBoxes`."""

    task = "obb"

    def decode(self, outputs: Sequence[np.ndarray], transforms: Sequence[Optional[LetterboxTransform]]) -> list:
        pred = np.asarray(outputs[0])
        if pred.ndim != 3:
            self._bad_outputs(outputs, "[B, 4+nc+1, N]")
        results = []
        for b in range(min(len(pred), len(transforms))):
            if self.layout == "end2end":
                c = select_end2end(pred[b], self.opts)
            else:
                nc = self._nc(pred[b], extra=1)
                c = (select_v8 if self.layout == "yolov8" else select_v5)(pred[b], nc, self.opts)
                keep = rotated_nms(np.concatenate([c.boxes, c.extra[:, :1]], 1), c.scores, self.opts.iou,
                                   class_id=None if self.opts.agnostic else c.cls, max_det=self.opts.max_det)
                c = c.take(keep)
            t = self._transform(transforms[b])
            xywhr = scale_xywhr(np.concatenate([c.boxes, c.extra[:, -1:]], 1).astype(np.float32), t)
            results.append(OrientedBoxes.from_xywhr(xywhr, c.scores, c.cls, self.names, t.src_hw))
        return results
