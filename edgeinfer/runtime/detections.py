"""`Detections`: the result type every detector returns, and what sinks and the uplink consume.

Example:
    >>> import numpy as np
    >>> d = Detections(xyxy=np.array([[10, 20, 50, 80]], np.float32), confidence=np.array([0.9], np.float32),
    ...                class_id=np.array([2]), names={2: "triangle"})
    >>> len(d), d.to_dict()["detections"][0]["class_name"]
    (1, 'triangle')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np


@dataclass
class Detections:
    """Boxes in original-image pixel coordinates (x1, y1, x2, y2), one row per object."""

    xyxy: np.ndarray  # (N, 4) float32
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int64
    names: Dict[int, str] = field(default_factory=dict)
    image_shape: Optional[tuple] = None  # (height, width) of the frame the boxes refer to
    track_id: Optional[np.ndarray] = None  # (N,) int64 stable per-source ids once a tracker ran, else None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
        if self.track_id is not None:
            self.track_id = np.asarray(self.track_id, dtype=np.int64).reshape(-1)
            if len(self.track_id) != n:
                raise ValueError(f"xyxy has {n} rows but track_id has {len(self.track_id)}")
        if len(self.confidence) != n or len(self.class_id) != n:
            raise ValueError(
                f"xyxy has {n} rows but confidence has {len(self.confidence)} and class_id {len(self.class_id)}"
            )

    @classmethod
    def empty(cls, names: Optional[Dict[int, str]] = None) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64), dict(names or {}))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> "Detections":
        """Rows selected by an index array / boolean mask / slice (task extras and track ids follow)."""
        index = _as_index(index, len(self))
        return type(self)(**self._select(index))

    def _select(self, index: np.ndarray) -> Dict[str, Any]:
        """Constructor arguments for the rows ``index``; subclasses add their per-row fields."""
        return {"xyxy": self.xyxy[index], "confidence": self.confidence[index], "class_id": self.class_id[index],
                "names": self.names, "image_shape": self.image_shape,
                "track_id": None if self.track_id is None else self.track_id[index]}

    def with_tracks(self, track_id: np.ndarray) -> "Detections":
        """A copy with ``track_id`` set (same rows, same task extras)."""
        args = self._select(np.arange(len(self)))
        args["track_id"] = track_id
        return type(self)(**args)

    @property
    def class_names(self) -> List[str]:
        return [self.names.get(int(c), str(int(c))) for c in self.class_id]

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form (plain floats/ints), used by sinks and the uplink."""
        dets = [
            {
                "xyxy": [round(float(v), 2) for v in box],
                "confidence": round(float(conf), 4),
                "class_id": int(cls_id),
                "class_name": self.names.get(int(cls_id), str(int(cls_id))),
            }
            for box, conf, cls_id in zip(self.xyxy.tolist(), self.confidence.tolist(), self.class_id.tolist())
        ]
        if self.track_id is not None:
            for d, tid in zip(dets, self.track_id.tolist()):
                d["track_id"] = int(tid)
        self._add_extras(dets)
        out: Dict[str, Any] = {"task": self.task, "count": len(dets), "detections": dets}
        if self.image_shape is not None:
            out["image_shape"] = [int(v) for v in self.image_shape[:2]]
        return out

    task = "detect"

    def _add_extras(self, dets: List[Dict[str, Any]]) -> None:
        """Subclasses put their per-object fields (mask polygon, keypoints, rotated box) into ``dets``."""


def _as_index(index: Any, n: int) -> np.ndarray:
    if isinstance(index, slice):
        return np.arange(n)[index]
    arr = np.asarray(index)
    if arr.dtype == bool:
        return np.flatnonzero(arr)
    return arr.astype(np.int64).reshape(-1)
