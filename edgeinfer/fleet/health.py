"""Health policy for a hot swap and the checks behind it: errors, latency P95 against the old model,
and an optional shadow comparison of detections on the last N frames.

Example:
    >>> policy = HealthPolicy(frames=30, latency_ratio=2.0, latency_slack_ms=5.0)
    >>> latency_problem(old_p95_ms=10.0, new_p95_ms=31.0, policy=policy)
    'latency P95 31.0 ms on the new model vs 10.0 ms on the old one (limit 25.0 ms)'
    >>> latency_problem(old_p95_ms=10.0, new_p95_ms=12.0, policy=policy) is None
    True

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class HealthPolicy:
    """When a swapped-in model counts as healthy.

    frames: results the new model must produce before it is committed (errors roll back at once).
    timeout_s: give up waiting for ``frames`` after this long (rolled back when no frame finished at all).
    latency_ratio / latency_slack_ms: new P95 must stay under old P95 * ratio + slack.
    shadow_frames / min_agreement: before switching, run the new model on the last N frames and require
        this mean detection F1 (same class, IoU >= 0.5) against the old model's results; 0 frames: off.
    """

    frames: int = 30
    timeout_s: float = 20.0
    latency_ratio: float = 2.0
    latency_slack_ms: float = 5.0
    shadow_frames: int = 0
    min_agreement: float = 0.5

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def latency_problem(*, old_p95_ms: Optional[float], new_p95_ms: Optional[float], policy: HealthPolicy) -> Optional[str]:
    """A one-line reason when the new model is too slow, else None (also None without a baseline)."""
    if old_p95_ms is None or new_p95_ms is None:
        return None
    limit = old_p95_ms * policy.latency_ratio + policy.latency_slack_ms
    if new_p95_ms <= limit:
        return None
    return f"latency P95 {new_p95_ms:.1f} ms on the new model vs {old_p95_ms:.1f} ms on the old one (limit {limit:.1f} ms)"


def p95_ms(samples_s: Sequence[float]) -> Optional[float]:
    vals = np.asarray(samples_s, dtype=np.float64)
    return None if vals.size == 0 else round(float(np.percentile(vals, 95)) * 1000.0, 3)


def detection_agreement(old: Sequence[Any], new: Sequence[Any], *, iou: float = 0.5) -> Optional[float]:
    """Mean per-frame F1 between two models' detections (greedy same-class IoU matching); None if not detections.

    Example:
        >>> from edgeinfer.runtime.detections import Detections
        >>> a = Detections([[0, 0, 10, 10]], [0.9], [0], {0: "x"}, (20, 20))
        >>> detection_agreement([a], [a]), detection_agreement([a], [Detections.empty()])
        (1.0, 0.0)
    """
    scores: List[float] = []
    for a, b in zip(old, new):
        if not (hasattr(a, "xyxy") and hasattr(b, "xyxy")):
            return None
        if len(a) == 0 and len(b) == 0:
            scores.append(1.0)
            continue
        tp = _greedy_matches(np.asarray(a.xyxy), np.asarray(a.class_id), np.asarray(b.xyxy), np.asarray(b.class_id), iou)
        scores.append(2.0 * tp / (len(a) + len(b)))
    return round(float(np.mean(scores)), 4) if scores else None


def _greedy_matches(a_box: np.ndarray, a_cls: np.ndarray, b_box: np.ndarray, b_cls: np.ndarray, thr: float) -> int:
    if len(a_box) == 0 or len(b_box) == 0:
        return 0
    lt = np.maximum(a_box[:, None, :2], b_box[None, :, :2])
    rb = np.minimum(a_box[:, None, 2:], b_box[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a_box[:, 2:] - a_box[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b_box[:, 2:] - b_box[:, :2], 0, None).prod(axis=1)
    union = np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)
    iou = (inter / union) * (a_cls[:, None] == b_cls[None, :])
    matched = 0
    while iou.size and iou.max() >= thr:
        i, j = np.unravel_index(int(iou.argmax()), iou.shape)
        iou[i, :] = -1.0
        iou[:, j] = -1.0
        matched += 1
    return matched
