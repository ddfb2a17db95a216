"""Draw detections onto a BGR frame (runs in the sink thread, on the sink's own copy).

Example:
    >>> import numpy as np
    >>> from edgeinfer.runtime.detections import Detections
    >>> img = np.zeros((64, 64, 3), np.uint8)
    >>> det = Detections([[4, 4, 40, 40]], [0.9], [1], {1: "circle"})
    >>> draw_detections(img, det) is img, int(img.sum() > 0)
    (True, 1)
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from .._deps import require

_PALETTE = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
            (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0))


def color_for(class_id: int) -> Tuple[int, int, int]:
    return _PALETTE[int(class_id) % len(_PALETTE)]


def draw_detections(img: np.ndarray, detections: Any, *, label: str = "") -> np.ndarray:
    """Boxes with ``class conf`` labels, plus an optional corner label; returns ``img`` (drawn in place)."""
    cv2 = require("cv2", feature="drawing detections")
    if hasattr(detections, "xyxy"):
        names = getattr(detections, "names", {}) or {}
        for box, conf, cls in zip(detections.xyxy, detections.confidence, detections.class_id):
            x1, y1, x2, y2 = (int(round(float(v))) for v in box)
            color = color_for(int(cls))
            cv2.rectangle(img, (x1, y1), (x2, y2), color, 2)
            text = f"{names.get(int(cls), str(int(cls)))} {float(conf):.2f}"
            _label(cv2, img, text, x1, y1, color)
    if label:
        cv2.putText(img, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(img, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _label(cv2: Any, img: np.ndarray, text: str, x: int, y: int, color: Tuple[int, int, int]) -> None:
    # Text on a filled tag in the box colour: readable on any background, including objects of
    # the same colour as the box.
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    top = y - h - base - 2 if y - h - base - 2 >= 0 else y  # above the box, or inside it at the top edge
    cv2.rectangle(img, (x, top), (x + w + 4, top + h + base + 2), color, -1)
    ink = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)
    cv2.putText(img, text, (x + 2, top + h + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, ink, 1, cv2.LINE_AA)
