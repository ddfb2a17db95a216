"""Ground-truth tracks with crossings and occlusions, and detections made from them; MOT scoring.

Objects move on straight lines with constant velocity, so pairs cross each other; while one is
behind another (its visible share drops) its detection gets a low score (the case ByteTrack's
second association exists for) or disappears for a few frames. motmetrics scores the tracker; its
``iou_matrix`` helper calls ``np.asfarray`` (removed in numpy 2), so we pass our own distances.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np


def make_scene(*, objects: int = 12, frames: int = 150, size=(640, 480), seed: int = 0, box=(40, 80)):
    """Per frame: list of (gt_id, xyxy) and the detections (xyxy, score, class)."""
    rng = np.random.default_rng(seed)
    w, h = size
    start = rng.uniform([0, 0], [w, h], (objects, 2))
    vel = rng.uniform(-4, 4, (objects, 2))
    dims = rng.uniform(box[0], box[1], (objects, 2)) * np.array([0.6, 1.0])
    born = rng.integers(0, frames // 3, objects)
    died = np.minimum(frames, born + rng.integers(frames // 2, frames, objects))
    gt: List[List[Tuple[int, np.ndarray]]] = []
    dets: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for f in range(frames):
        alive = np.flatnonzero((born <= f) & (f < died))
        c = start[alive] + vel[alive] * f
        span = np.array([w, h], np.float64)
        c = span - np.abs(np.mod(c, 2 * span) - span)  # bounce off the frame edges
        half = dims[alive] / 2
        boxes = np.concatenate([c - half, c + half], axis=1)
        frame_gt = [(int(i), b) for i, b in zip(alive, boxes)]
        # occlusion: an object mostly covered by a box drawn after it (higher id) is low-score or missed
        scores = rng.uniform(0.6, 0.95, len(alive))
        keep = np.ones(len(alive), bool)
        for a in range(len(alive)):
            for b in range(a + 1, len(alive)):
                cover = _covered(boxes[a], boxes[b])
                if cover > 0.5:
                    scores[a] = rng.uniform(0.12, 0.24)
                if cover > 0.85 and rng.random() < 0.5:
                    keep[a] = False
        jitter = rng.normal(0, 1.5, boxes.shape)
        dets.append(((boxes + jitter)[keep].astype(np.float32), scores[keep].astype(np.float32),
                     np.zeros(int(keep.sum()), np.int64)))
        gt.append(frame_gt)
    return gt, dets


def _covered(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / max((a[2] - a[0]) * (a[3] - a[1]), 1e-9)


def iou_distance(a: np.ndarray, b: np.ndarray, max_d: float = 0.5) -> np.ndarray:
    """1 - IoU, NaN where IoU < 1 - max_d (motmetrics' convention for 'cannot match')."""
    from edgeinfer.analytics.matching import iou_matrix

    d = 1.0 - iou_matrix(a, b)
    d[d > max_d] = np.nan
    return d


def score(gt, tracked) -> Dict[str, float]:
    """MOTA, IDF1, ID switches; ``tracked`` per frame: (track ids, xyxy)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for frame_gt, (ids, boxes) in zip(gt, tracked):
        g_ids = [g for g, _ in frame_gt]
        g_boxes = np.array([b for _, b in frame_gt]).reshape(-1, 4)
        acc.update(g_ids, list(np.asarray(ids).tolist()), iou_distance(g_boxes, np.asarray(boxes).reshape(-1, 4)))
    mh = mm.metrics.create()
    s = mh.compute(acc, metrics=["mota", "idf1", "num_switches"], name="x")
    return {"mota": float(s["mota"].iloc[0]), "idf1": float(s["idf1"].iloc[0]),
            "id_switches": int(s["num_switches"].iloc[0])}
