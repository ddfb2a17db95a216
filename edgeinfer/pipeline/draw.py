"""Draw results onto a BGR frame (runs in the sink thread, on the sink's own copy).

Every result type draws itself (boxes, masks, keypoints, rotated boxes, top-k, track ids): see
:mod:`edgeinfer.runtime.task_draw`; analytics overlays (zones, lines, counts) come on top.

Example:
    >>> import numpy as np
    >>> from edgeinfer.runtime.detections import Detections
    >>> img = np.zeros((64, 64, 3), np.uint8)
    >>> det = Detections([[4, 4, 40, 40]], [0.9], [1], {1: "circle"})
    >>> draw_detections(img, det) is img, int(img.sum() > 0)
    (True, 1)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._deps import require
from ..runtime.task_draw import color_for, draw_result

__all__ = ["color_for", "draw_detections"]


def draw_detections(img: np.ndarray, detections: Any, *, label: str = "", overlay: Any = None) -> np.ndarray:
    """The result drawn in place, then ``overlay(img)`` (analytics), plus an optional corner label; returns ``img``."""
    cv2 = require("cv2", feature="drawing detections")
    draw_result(img, detections)
    if overlay is not None:
        overlay(img)
    if label:
        cv2.putText(img, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(img, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return img
