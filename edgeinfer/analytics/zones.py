"""Polygon zones (who is inside, for how long) and counting lines (who crossed, which way).

An object's position is its *anchor*: the bottom centre of its box by default (where a person or
car touches the ground), as in supervision's ``PolygonZone``/``LineZone`` and DeepStream's
nvdsanalytics. Both need track ids: dwell time and crossings are per track, and a track is counted
once per crossing (it must be seen on one side, then on the other).

Example:
    >>> import numpy as np
    >>> from edgeinfer.runtime.detections import Detections
    >>> line = CountLine("door", [(50, 0), (50, 100)])
    >>> for x in (30, 40, 60, 70):     # one box walking left to right across x = 50
    ...     crossed = line.update(Detections([[x - 5, 40, x + 5, 60]], [0.9], [0], {0: "person"}, track_id=[1]))
    >>> line.counts()
    {'in': {'person': 1}, 'out': {}}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError

ANCHORS = ("bottom_center", "center", "top_center")


def anchors(xyxy: np.ndarray, anchor: str = "bottom_center") -> np.ndarray:
    """(N, 2) anchor points of xyxy boxes."""
    b = np.asarray(xyxy, np.float64).reshape(-1, 4)
    x = (b[:, 0] + b[:, 2]) / 2
    if anchor == "center":
        y = (b[:, 1] + b[:, 3]) / 2
    elif anchor == "top_center":
        y = b[:, 1]
    else:
        y = b[:, 3]
    return np.stack([x, y], axis=1)


def points_in_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points and edges."""
    pts = np.asarray(pts, np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros(0, bool)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = poly[:, 0][None, :], poly[:, 1][None, :]
    x2, y2 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    straddle = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xcross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return (straddle & (x < xcross)).sum(axis=1) % 2 == 1


def _check_points(name: str, pts: Any, min_points: int) -> np.ndarray:
    try:
        arr = np.asarray(pts, np.float64).reshape(-1, 2)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: points {pts!r} are not [[x, y], ...]", hint="write points as [[x, y], [x, y], ...] in pixels") from exc
    if len(arr) < min_points:
        raise ConfigError(f"{name}: needs at least {min_points} points, got {len(arr)}",
                          hint="a zone needs 3+ polygon corners, a line exactly 2 end points")
    return arr


@dataclass
class Zone:
    """A polygon zone: current occupants per class, entries, and dwell time per track (seconds)."""

    name: str
    points: Any
    classes: Optional[Sequence[int]] = None  # None: every class
    anchor: str = "bottom_center"
    occupants: Dict[int, float] = field(default_factory=dict)  # track id -> entry time
    occupant_class: Dict[int, int] = field(default_factory=dict)
    entered: Dict[str, int] = field(default_factory=dict)  # class name -> entries so far

    def __post_init__(self) -> None:
        self.polygon = _check_points(f"zone {self.name!r}", self.points, 3)
        if self.anchor not in ANCHORS:
            raise ConfigError(f"zone {self.name!r}: anchor {self.anchor!r} unknown", hint=f"use one of {', '.join(ANCHORS)}")

    def update(self, dets: Any, now: float) -> Tuple[List[int], List[int]]:
        """(track ids that entered, track ids that left) this frame."""
        inside = self.contains(dets)
        names = getattr(dets, "names", {}) or {}
        tids = dets.track_id if dets.track_id is not None else np.zeros(0, np.int64)
        present = {}
        for i in np.flatnonzero(inside).tolist():
            present[int(tids[i])] = int(dets.class_id[i])
        entered = [t for t in present if t not in self.occupants]
        left = [t for t in self.occupants if t not in present]
        for t in entered:
            self.occupants[t] = now
            self.occupant_class[t] = present[t]
            key = names.get(present[t], str(present[t]))
            self.entered[key] = self.entered.get(key, 0) + 1
        for t in left:
            self.occupants.pop(t, None)
            self.occupant_class.pop(t, None)
        return entered, left

    def contains(self, dets: Any) -> np.ndarray:
        if len(dets) == 0 or getattr(dets, "track_id", None) is None:
            return np.zeros(len(dets), bool)
        ok = points_in_polygon(anchors(dets.xyxy, self.anchor), self.polygon)
        if self.classes is not None:
            ok &= np.isin(dets.class_id, np.asarray(self.classes, np.int64))
        return ok

    def dwell(self, now: float) -> Dict[int, float]:
        """Seconds each current occupant has been inside."""
        return {t: now - t0 for t, t0 in self.occupants.items()}

    def count(self, names: Optional[Dict[int, str]] = None) -> Dict[str, int]:
        """Current occupants per class name."""
        out: Dict[str, int] = {}
        for c in self.occupant_class.values():
            key = (names or {}).get(c, str(c))
            out[key] = out.get(key, 0) + 1
        return out


@dataclass
class CountLine:
    """A counting line from ``points[0]`` to ``points[1]``, counted per track and class.

    Direction: a line drawn top to bottom counts ``in`` for objects moving left to right; a line
    drawn left to right counts ``in`` for objects moving bottom to top (the image's y axis points
    down); the opposite crossings count ``out``. Swap the two points to swap in and out."""

    name: str
    points: Any
    classes: Optional[Sequence[int]] = None
    anchor: str = "bottom_center"
    side: Dict[int, int] = field(default_factory=dict)  # track id -> last side (+1 / -1)
    in_counts: Dict[str, int] = field(default_factory=dict)
    out_counts: Dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pts = _check_points(f"line {self.name!r}", self.points, 2)
        if len(pts) != 2 or np.allclose(pts[0], pts[1]):
            raise ConfigError(f"line {self.name!r}: needs two distinct end points", hint="write points: [[x1, y1], [x2, y2]]")
        self.segment = pts

    def update(self, dets: Any) -> List[Tuple[int, int, str]]:
        """Crossings this frame: (track id, class id, "in" | "out")."""
        if len(dets) == 0 or getattr(dets, "track_id", None) is None:
            return []
        p = anchors(dets.xyxy, self.anchor)
        a, b = self.segment
        d = b - a
        cross = d[0] * (p[:, 1] - a[1]) - d[1] * (p[:, 0] - a[0])
        # only points whose projection falls on the segment count (a line, not an infinite wall)
        t = ((p - a) @ d) / float(d @ d)
        on_seg = (t >= 0) & (t <= 1)
        sides = np.sign(cross).astype(int)
        names = getattr(dets, "names", {}) or {}
        events = []
        for i in range(len(dets)):
            if self.classes is not None and int(dets.class_id[i]) not in self.classes:
                continue
            tid, s = int(dets.track_id[i]), int(sides[i])
            if s == 0:
                continue
            prev = self.side.get(tid)
            self.side[tid] = s
            if prev is None or prev == s or not on_seg[i]:
                continue
            direction = "in" if s < 0 else "out"
            key = names.get(int(dets.class_id[i]), str(int(dets.class_id[i])))
            table = self.in_counts if direction == "in" else self.out_counts
            table[key] = table.get(key, 0) + 1
            events.append((tid, int(dets.class_id[i]), direction))
        if len(self.side) > 10000:  # bounded memory on endless streams: forget the oldest tracks
            for k in list(self.side)[:5000]:
                del self.side[k]
        return events

    def counts(self) -> Dict[str, Dict[str, int]]:
        return {"in": dict(self.in_counts), "out": dict(self.out_counts)}
