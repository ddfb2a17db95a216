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

from typing import Any, List, Tuple

import numpy as np

from .._deps import require
from ..runtime.task_draw import label

ZONE_COLOUR = (255, 160, 0)
LINE_COLOUR = (0, 220, 255)


def overlay_snapshot(st: Any) -> Tuple[List[Tuple[str, np.ndarray, int]], List[Tuple[str, np.ndarray, int, int]]]:
    """Zones (name, polygon, occupants) and lines (name, segment, in, out), copied out of the live state."""
    zones = [(name, zone.polygon, sum(zone.count(st.names).values())) for name, zone in st.zones.items()]
    lines = []
    for name, line in st.lines.items():
        c = line.counts()
        lines.append((name, line.segment, sum(c["in"].values()), sum(c["out"].values())))
    return zones, lines


def draw_overlay(img: np.ndarray, snap: Any) -> np.ndarray:
    cv2 = require("cv2", feature="drawing zones")
    zones, lines = snap
    for name, polygon, count in zones:
        pts = np.round(polygon).astype(np.int32)
        cv2.polylines(img, [pts], True, ZONE_COLOUR, 2, cv2.LINE_AA)
        x, y = int(pts[:, 0].min()), int(pts[:, 1].min())
        label(img, f"{name}: {count}", x, max(y, 14), ZONE_COLOUR)
    for name, segment, n_in, n_out in lines:
        (x1, y1), (x2, y2) = np.round(segment).astype(int).tolist()
        cv2.line(img, (x1, y1), (x2, y2), LINE_COLOUR, 2, cv2.LINE_AA)
        label(img, f"{name}: in {n_in} out {n_out}", x1, max(y1, 14), LINE_COLOUR)
    return img
