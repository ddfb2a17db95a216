"""Overlay of zones, lines and their counts on a sink's frame.

Example:
    >>> import numpy as np
    >>> from edgeinfer.analytics.engine import Analytics
    >>> a = Analytics(tracker="bytetrack", config={"sources": {"*": {"zones": [
    ...     {"name": "z", "points": [[5, 5], [60, 5], [60, 40], [5, 40]]}]}}})
    >>> from edgeinfer.runtime.detections import Detections
    >>> _ = a.process("c", 0, 0.0, Detections.empty())
    >>> img = np.zeros((48, 64, 3), np.uint8); _ = a.overlay("c")(img); int(img.sum() > 0)
    1
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._deps import require
from ..runtime.task_draw import label

ZONE_COLOUR = (255, 160, 0)
LINE_COLOUR = (0, 220, 255)


def draw_overlay(img: np.ndarray, st: Any) -> np.ndarray:
    cv2 = require("cv2", feature="drawing zones")
    for name, zone in st.zones.items():
        pts = np.round(zone.polygon).astype(np.int32)
        cv2.polylines(img, [pts], True, ZONE_COLOUR, 2, cv2.LINE_AA)
        count = sum(zone.count(st.names).values())
        x, y = int(pts[:, 0].min()), int(pts[:, 1].min())
        label(img, f"{name}: {count}", x, max(y, 14), ZONE_COLOUR)
    for name, line in st.lines.items():
        (x1, y1), (x2, y2) = np.round(line.segment).astype(int).tolist()
        cv2.line(img, (x1, y1), (x2, y2), LINE_COLOUR, 2, cv2.LINE_AA)
        c = line.counts()
        label(img, f"{name}: in {sum(c['in'].values())} out {sum(c['out'].values())}", x1, max(y1, 14), LINE_COLOUR)
    return img
