"""Result types of the non-detect tasks: segmentation, pose, oriented boxes, classification.

The first three are :class:`Detections` (boxes, scores, classes, optional track ids) with per-object
extras, so tracking, zones and sinks treat every box-producing task alike. Each has ``to_dict()``
for the uplink and ``draw(img)`` for sinks.

Masks are kept as one small crop per object (the object's box, at frame resolution) instead of a
full-frame (N, H, W) stack: a 1080p frame with 30 objects would otherwise be 62 MB per frame.
``masks()`` builds the full stack on demand; ``polygons()`` and ``rle()`` (COCO run-length, column
major, exactly what ``pycocotools.mask.encode`` gives) work from the crops.

Example:
    >>> import numpy as np
    >>> seg = Segments([[2, 1, 5, 3]], [0.9], [0], {0: "a"}, image_shape=(4, 6),
    ...                mask_crops=[np.ones((2, 3), bool)], mask_origins=[[2, 1]])
    >>> int(seg.masks().sum()), seg.rle()[0]["counts"]
    (6, [9, 2, 2, 2, 2, 2, 5])
    >>> pose = Poses([[0, 0, 4, 4]], [0.8], [0], keypoints=np.ones((1, 2, 3), np.float32))
    >>> pose.to_dict()["detections"][0]["keypoints"]
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .._deps import require
from .detections import Detections


@dataclass
class Segments(Detections):
    """Instance segmentation: boxes plus one boolean mask crop per object (its box region)."""

    mask_crops: List[np.ndarray] = field(default_factory=list)  # per object: bool (h, w) over its box region
    mask_origins: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # (N, 2) x0, y0 in the frame
    mask_format: str = "polygon"  # what to_dict puts on the uplink: polygon | rle | both | none

    task = "segment"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.mask_origins = np.asarray(self.mask_origins, np.int64).reshape(-1, 2)
        if len(self.mask_crops) != len(self) or len(self.mask_origins) != len(self):
            raise ValueError(f"{len(self)} boxes but {len(self.mask_crops)} masks / {len(self.mask_origins)} origins")

    def _select(self, index: np.ndarray) -> Dict[str, Any]:
        args = super()._select(index)
        args.update(mask_crops=[self.mask_crops[int(i)] for i in index], mask_origins=self.mask_origins[index],
                    mask_format=self.mask_format)
        return args

    def masks(self) -> np.ndarray:
        """(N, H, W) bool full-frame masks (allocates N x H x W: use crops/polygons in hot paths)."""
        h, w = self._frame_hw()
        out = np.zeros((len(self), h, w), bool)
        for i, (crop, (x0, y0)) in enumerate(zip(self.mask_crops, self.mask_origins.tolist())):
            out[i, y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
        return out

    def areas(self) -> np.ndarray:
        """Mask pixel count per object."""
        return np.array([int(np.count_nonzero(c)) for c in self.mask_crops], np.int64)

    def polygons(self) -> List[np.ndarray]:
        """Largest outer contour per mask as (k, 2) float32 frame pixels ((0, 2) for an empty mask)."""
        cv2 = require("cv2", feature="mask polygons")
        out = []
        for crop, (x0, y0) in zip(self.mask_crops, self.mask_origins.tolist()):
            if not crop.any():
                out.append(np.zeros((0, 2), np.float32))
                continue
            contours, _ = cv2.findContours(crop.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            best = max(contours, key=len).reshape(-1, 2).astype(np.float32)
            if len(best) < 3:  # a single pixel or a 1-px line has no area as a contour: its pixels' outline instead
                lo, hi = best.min(axis=0) - 0.5, best.max(axis=0) + 0.5
                best = np.array([lo, [hi[0], lo[1]], hi, [lo[0], hi[1]]], np.float32)
            out.append(best + np.array([x0, y0], np.float32))
        return out

    def rle(self) -> List[Dict[str, Any]]:
        """COCO uncompressed RLE per object over the full frame (column-major runs, starting with zeros)."""
        h, w = self._frame_hw()
        return [_rle_from_crop(crop, int(x0), int(y0), h, w)
                for crop, (x0, y0) in zip(self.mask_crops, self.mask_origins.tolist())]

    def _frame_hw(self) -> tuple:
        if self.image_shape is None:
            raise ValueError("Segments without image_shape cannot build full-frame masks")
        return int(self.image_shape[0]), int(self.image_shape[1])

    def _add_extras(self, dets: List[Dict[str, Any]]) -> None:
        fmt = self.mask_format
        if fmt in ("polygon", "both"):
            for d, poly in zip(dets, self.polygons()):
                d["polygon"] = np.round(poly.astype(np.float64), 1).tolist()
        if fmt in ("rle", "both"):
            for d, r in zip(dets, self.rle()):
                d["rle"] = r

    def draw(self, img: np.ndarray) -> np.ndarray:
        from .task_draw import draw_segments

        return draw_segments(img, self)


def _rle_from_crop(crop: np.ndarray, x0: int, y0: int, h: int, w: int) -> Dict[str, Any]:
    """COCO RLE of a full (h, w) mask that is ``crop`` at (x0, y0) and zero elsewhere, built from
    the crop's columns only (full-height strip), not from an H x W image."""
    ch, cw = crop.shape
    strip = np.zeros((h, cw), bool)
    strip[y0:y0 + ch] = crop
    flat = strip.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds)
    counts = runs.tolist()
    if flat.size and flat[0]:
        counts = [0] + counts  # COCO runs start with a (possibly empty) run of zeros
    if not counts:
        counts = [0]
    # zeros of the columns left and right of the strip join the first / last zero run
    if counts and (len(counts) % 2 == 1):  # ends on a zero run
        counts[-1] += (w - x0 - cw) * h
    else:
        counts.append((w - x0 - cw) * h)
    counts[0] += x0 * h
    return {"size": [h, w], "counts": [int(c) for c in counts]}


@dataclass
class Poses(Detections):
    """Pose: boxes plus keypoints (N, K, 3): x, y in frame pixels and a visibility confidence."""

    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.float32))
    skeleton: Optional[List[List[int]]] = None  # pairs of keypoint indices to join when drawing

    task = "pose"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.keypoints = np.asarray(self.keypoints, np.float32)
        if self.keypoints.ndim != 3 or len(self.keypoints) != len(self):
            raise ValueError(f"{len(self)} boxes but keypoints of shape {self.keypoints.shape}")

    def _select(self, index: np.ndarray) -> Dict[str, Any]:
        args = super()._select(index)
        args.update(keypoints=self.keypoints[index], skeleton=self.skeleton)
        return args

    def _add_extras(self, dets: List[Dict[str, Any]]) -> None:
        for d, kp in zip(dets, np.round(self.keypoints.astype(np.float64), 3).tolist()):
            d["keypoints"] = kp

    def draw(self, img: np.ndarray) -> np.ndarray:
        from .task_draw import draw_poses

        return draw_poses(img, self)


@dataclass
class OrientedBoxes(Detections):
    """Oriented boxes: ``xywhr`` (N, 5) centre, size, angle in radians (Ultralytics' convention);
    ``xyxy`` holds each rotated box's axis-aligned bounds (for tracking, zones and filters)."""

    xywhr: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))

    task = "obb"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.xywhr = np.asarray(self.xywhr, np.float32).reshape(-1, 5)
        if len(self.xywhr) != len(self):
            raise ValueError(f"{len(self)} boxes but {len(self.xywhr)} rotated boxes")

    @classmethod
    def from_xywhr(cls, xywhr: np.ndarray, confidence: np.ndarray, class_id: np.ndarray, names: Dict[int, str],
                   image_shape: Optional[tuple] = None) -> "OrientedBoxes":
        corners = xywhr_to_corners(xywhr)
        xyxy = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1) if len(corners) else np.zeros((0, 4))
        return cls(xyxy, confidence, class_id, names, image_shape, xywhr=xywhr)

    def corners(self) -> np.ndarray:
        """(N, 4, 2) corner points in frame pixels."""
        return xywhr_to_corners(self.xywhr)

    def _select(self, index: np.ndarray) -> Dict[str, Any]:
        args = super()._select(index)
        args["xywhr"] = self.xywhr[index]
        return args

    def _add_extras(self, dets: List[Dict[str, Any]]) -> None:
        for d, r, c in zip(dets, self.xywhr.tolist(), np.round(self.corners().astype(np.float64), 2).tolist()):
            d["xywhr"] = [round(float(v), 2) for v in r[:4]] + [round(float(r[4]), 5)]
            d["corners"] = c

    def draw(self, img: np.ndarray) -> np.ndarray:
        from .task_draw import draw_obb

        return draw_obb(img, self)


def xywhr_to_corners(xywhr: np.ndarray) -> np.ndarray:
    """(N, 5) rotated boxes -> (N, 4, 2) corners (Ultralytics ``xywhr2xyxyxyxy`` order)."""
    b = np.asarray(xywhr, np.float32).reshape(-1, 5)
    ctr, w, h, a = b[:, :2], b[:, 2:3], b[:, 3:4], b[:, 4:5]
    cos, sin = np.cos(a), np.sin(a)
    v1 = np.concatenate([w / 2 * cos, w / 2 * sin], axis=1)
    v2 = np.concatenate([-h / 2 * sin, h / 2 * cos], axis=1)
    return np.stack([ctr + v1 + v2, ctr + v1 - v2, ctr - v1 - v2, ctr - v1 + v2], axis=1)


@dataclass
class Classification:
    """Image classification: class probabilities and the top-k.

    Example:
        >>> c = Classification(np.array([0.1, 0.7, 0.2], np.float32), {0: "a", 1: "b", 2: "c"}, top_k=2)
        >>> c.top1, [t["class_name"] for t in c.to_dict()["top"]]
        (1, ['b', 'c'])
    """

    probs: np.ndarray  # (nc,) float32
    names: Dict[int, str] = field(default_factory=dict)
    top_k: int = 5
    image_shape: Optional[tuple] = None

    task = "classify"

    def __post_init__(self) -> None:
        self.probs = np.asarray(self.probs, np.float32).reshape(-1)
        k = max(1, min(int(self.top_k), len(self.probs)))
        part = np.argpartition(-self.probs, k - 1)[:k] if k < len(self.probs) else np.arange(len(self.probs))
        self.top = part[np.argsort(-self.probs[part], kind="stable")].astype(np.int64)

    def __len__(self) -> int:
        return 0  # no boxes: trackers and zones skip it

    @property
    def top1(self) -> int:
        return int(self.top[0])

    @property
    def top1_confidence(self) -> float:
        return float(self.probs[self.top[0]])

    def to_dict(self) -> Dict[str, Any]:
        top = [{"class_id": int(i), "class_name": self.names.get(int(i), str(int(i))),
                "confidence": round(float(self.probs[i]), 4)} for i in self.top]
        out: Dict[str, Any] = {"task": self.task, "top": top}
        if self.image_shape is not None:
            out["image_shape"] = [int(v) for v in self.image_shape[:2]]
        return out

    def draw(self, img: np.ndarray) -> np.ndarray:
        from .task_draw import draw_classification

        return draw_classification(img, self)


def angle_deg(rad: float) -> float:
    return float(rad) * 180.0 / math.pi
