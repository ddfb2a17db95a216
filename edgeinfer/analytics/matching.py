"""IoU cost and linear assignment for tracking.

Assignment uses ``lap.lapjv`` (the maintained ``lapx`` package: Jonker-Volgenant, numpy only, wheels
for Python 3.7+ incl. aarch64, so it runs on JetPack 5's Python 3.8) when installed -- the same
solver Ultralytics' and ByteTrack's reference trackers call. Without it, a vectorised greedy
matcher (lowest cost first) is used; on tracking costs (one clear best match per object) it gives
the same pairs in practice, and the benchmark reports which one ran.

Example:
    >>> import numpy as np
    >>> a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    >>> b = np.array([[21, 20, 31, 30], [1, 0, 11, 10]], np.float32)
    >>> matches, ua, ub = linear_assignment(1 - iou_matrix(a, b), 0.8)
    >>> matches.tolist(), ua.tolist(), ub.tolist()
    ([[0, 1], [1, 0]], [], [])
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .._deps import is_available


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


_LAP = None


def solver() -> str:
    """``lapjv`` when the ``lap`` module (lapx) is importable, else ``greedy``."""
    global _LAP
    if _LAP is None:
        _LAP = "lapjv" if is_available("lap") else "greedy"
    return _LAP


def linear_assignment(cost: np.ndarray, thresh: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (k, 2) with cost <= thresh, unmatched rows, unmatched columns."""
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), np.int64), np.arange(n), np.arange(m)
    if solver() == "lapjv":
        import lap

        _, x, y = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
        rows = np.flatnonzero(x >= 0)
        matches = np.stack([rows, x[rows]], axis=1).astype(np.int64)
        return matches, np.flatnonzero(x < 0), np.flatnonzero(y < 0)
    return _greedy(cost, thresh)


def _greedy(cost: np.ndarray, thresh: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, m = cost.shape
    flat = np.argsort(cost, axis=None, kind="stable")
    flat = flat[cost.ravel()[flat] <= thresh]
    used_r = np.zeros(n, bool)
    used_c = np.zeros(m, bool)
    pairs = []
    for f in flat.tolist():
        r, c = divmod(f, m)
        if not used_r[r] and not used_c[c]:
            used_r[r] = used_c[c] = True
            pairs.append((r, c))
            if len(pairs) == min(n, m):
                break
    matches = np.array(pairs, np.int64).reshape(-1, 2)
    return matches, np.flatnonzero(~used_r), np.flatnonzero(~used_c)
