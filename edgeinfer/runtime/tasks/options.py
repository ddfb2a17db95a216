"""Post-processing knobs shared by every task: thresholds, per-class confidence, class filter, caps.

Example:
    >>> import numpy as np
    >>> opts = DecodeOptions(conf=0.25, class_conf={0: 0.5}, classes=[0, 2])
    >>> opts.min_conf
    0.25
    >>> opts.accept(np.array([0.4, 0.6, 0.3, 0.9]), np.array([0, 0, 2, 1])).tolist()
    [False, True, True, False]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ...errors import ConfigError


def class_ids(values: Optional[Sequence[object]], names: Dict[int, str]) -> Optional[List[int]]:
    """Class names or ids (``["person", 2]``) -> ids; an unknown name is a usage error.

    Example:
        >>> class_ids(["person", "2"], {0: "person", 2: "car"})
        [0, 2]
    """
    if values is None:
        return None
    by_name = {v: k for k, v in names.items()}
    out = []
    for v in values:
        if isinstance(v, (int, np.integer)) or (isinstance(v, str) and v.strip().isdigit()):
            out.append(int(v))
        elif str(v).strip() in by_name:
            out.append(by_name[str(v).strip()])
        else:
            shown = ", ".join(list(by_name)[:12]) + (" ..." if len(by_name) > 12 else "")
            raise ConfigError(f"class {v!r} is not one of the model's classes", hint=f"use a class id or one of: {shown}")
    return out


@dataclass(frozen=True)
class DecodeOptions:
    """``conf``: default threshold; ``class_conf``: class id -> its own threshold (e.g. person 0.5);
    ``classes``: keep only these class ids (None: all); ``iou``: NMS threshold; ``max_det``: cap per
    image; ``max_nms``: candidates kept (best first) before NMS; ``agnostic``: NMS across classes;
    ``top_k``: classification entries reported; ``mask_format``: what segmentation puts on the uplink."""

    conf: float = 0.25
    iou: float = 0.45
    max_det: int = 300
    classes: Optional[Sequence[int]] = None
    class_conf: Dict[int, float] = field(default_factory=dict)
    max_nms: int = 3000
    agnostic: bool = False
    top_k: int = 5
    mask_format: str = "polygon"

    def __post_init__(self) -> None:
        for label, value in [("conf", self.conf), ("iou", self.iou)] + [
                (f"conf for class {k}", v) for k, v in self.class_conf.items()]:
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"{label}={value} is outside 0..1", hint="pass thresholds between 0 and 1")
        if int(self.max_det) < 1 or int(self.max_nms) < 1 or int(self.top_k) < 1:
            raise ConfigError(f"max_det={self.max_det}, max_nms={self.max_nms}, top_k={self.top_k} must be >= 1",
                              hint="use e.g. max_det=300")
        if self.mask_format not in ("polygon", "rle", "both", "none"):
            raise ConfigError(f"mask_format={self.mask_format!r} is not polygon, rle, both or none",
                              hint="use mask_format='polygon' (compact) or 'rle' (exact)")
        object.__setattr__(self, "class_conf", {int(k): float(v) for k, v in self.class_conf.items()})
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))
        table = None
        if self.class_conf:  # per-class threshold lookup table, indexed by class id
            size = max(max(self.class_conf) + 1, max(self.classes or (0,)) + 1)
            table = np.full(size, float(self.conf), np.float32)
            for k, v in self.class_conf.items():
                table[k] = v
        object.__setattr__(self, "_table", table)

    @property
    def min_conf(self) -> float:
        """The lowest threshold of any class: the cheap first cut before the per-class one."""
        return min([float(self.conf)] + list(self.class_conf.values()))

    @property
    def filters(self) -> bool:
        return bool(self.class_conf) or self.classes is not None

    def accept(self, scores: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """Boolean mask: score above its class's threshold and class allowed."""
        scores = np.asarray(scores)
        cls = np.asarray(cls, np.int64)
        table = self._table  # type: ignore[attr-defined]
        if table is None:
            ok = scores > self.conf
        else:
            thr = np.where(cls < len(table), table[np.minimum(cls, len(table) - 1)], np.float32(self.conf))
            ok = scores > thr
        if self.classes is not None:
            ok &= np.isin(cls, np.asarray(self.classes, np.int64))
        return ok
