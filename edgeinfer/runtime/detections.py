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

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
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
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], self.names, self.image_shape)

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
            for box, conf, cls_id in zip(self.xyxy, self.confidence, self.class_id)
        ]
        out: Dict[str, Any] = {"count": len(dets), "detections": dets}
        if self.image_shape is not None:
            out["image_shape"] = [int(v) for v in self.image_shape[:2]]
        return out
