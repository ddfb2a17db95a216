"""Drawing of every result type onto a BGR frame, in place (sinks call it on their own copy).

Boxes carry ``class conf`` (and ``#track`` once tracked) on a filled tag in the class colour;
masks are blended inside their box only; keypoints get the COCO skeleton when there are 17;
oriented boxes are drawn as polygons; classification writes its top-k in the corner.

Example:
    >>> import numpy as np
    >>> from edgeinfer.runtime.detections import Detections
    >>> img = np.zeros((64, 64, 3), np.uint8)
    >>> det = Detections([[4, 4, 40, 40]], [0.9], [1], {1: "circle"}, track_id=[7])
    >>> draw_boxes(img, det) is img, int(img.sum() > 0)
    (True, 1)
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from .._deps import require

PALETTE = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207),
           (10, 249, 72), (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0))
# COCO-17 skeleton (Ultralytics' order, 0-based)
COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                 (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
KPT_CONF = 0.5  # keypoints below this visibility are not drawn (Ultralytics' plotting default)


def color_for(class_id: int) -> Tuple[int, int, int]:
    return PALETTE[int(class_id) % len(PALETTE)]


def _cv2() -> Any:
    return require("cv2", feature="drawing results")


def box_text(dets: Any, i: int) -> str:
    names = getattr(dets, "names", {}) or {}
    cls = int(dets.class_id[i])
    text = f"{names.get(cls, str(cls))} {float(dets.confidence[i]):.2f}"
    tid = getattr(dets, "track_id", None)
    return f"#{int(tid[i])} {text}" if tid is not None else text


def draw_boxes(img: np.ndarray, dets: Any, *, boxes: bool = True) -> np.ndarray:
    """Axis-aligned boxes (``boxes=False``: labels only) with their tags."""
    cv2 = _cv2()
    for i, box in enumerate(np.asarray(dets.xyxy).tolist()):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = color_for(_colour_key(dets, i))
        if boxes:
            cv2.rectangle(img, (x1, y1), (x2, y2), color, 2)
        label(img, box_text(dets, i), x1, y1, color)
    return img


def _colour_key(dets: Any, i: int) -> int:
    tid = getattr(dets, "track_id", None)
    return int(tid[i]) if tid is not None else int(dets.class_id[i])  # tracked: one colour per track


def label(img: np.ndarray, text: str, x: int, y: int, color: Tuple[int, int, int]) -> None:
    """Text on a filled tag in ``color``: readable on any background, including same-colour objects."""
    cv2 = _cv2()
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    top = y - h - base - 2 if y - h - base - 2 >= 0 else y  # above the box, or inside it at the top edge
    cv2.rectangle(img, (x, top), (x + w + 4, top + h + base + 2), color, -1)
    ink = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)
    cv2.putText(img, text, (x + 2, top + h + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, ink, 1, cv2.LINE_AA)


def draw_segments(img: np.ndarray, seg: Any, *, alpha: float = 0.45) -> np.ndarray:
    """Each mask blended into its own box region (no full-frame temporaries), then the boxes."""
    for i, (crop, (x0, y0)) in enumerate(zip(seg.mask_crops, seg.mask_origins.tolist())):
        if not crop.any():
            continue
        region = img[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]]
        color = np.array(color_for(_colour_key(seg, i)), np.float32)
        sel = region[crop]
        region[crop] = (sel * (1 - alpha) + color * alpha).astype(np.uint8)
    return draw_boxes(img, seg)


def draw_poses(img: np.ndarray, poses: Any) -> np.ndarray:
    cv2 = _cv2()
    draw_boxes(img, poses)
    kpts = np.asarray(poses.keypoints)
    skeleton = poses.skeleton if poses.skeleton is not None else (COCO_SKELETON if kpts.shape[1:2] == (17,) else ())
    for i, person in enumerate(kpts):
        color = color_for(_colour_key(poses, i))
        ok = person[:, 2] >= KPT_CONF if person.shape[1] > 2 else np.ones(len(person), bool)
        pts = np.round(person[:, :2]).astype(int).tolist()
        for a, b in skeleton:
            if a < len(pts) and b < len(pts) and ok[a] and ok[b]:
                cv2.line(img, tuple(pts[a]), tuple(pts[b]), color, 2, cv2.LINE_AA)
        for j, p in enumerate(pts):
            if ok[j]:
                cv2.circle(img, tuple(p), 3, (0, 255, 255), -1, cv2.LINE_AA)
    return img


def draw_obb(img: np.ndarray, obb: Any) -> np.ndarray:
    cv2 = _cv2()
    for i, quad in enumerate(obb.corners()):
        cv2.polylines(img, [np.round(quad).astype(np.int32)], True, color_for(_colour_key(obb, i)), 2, cv2.LINE_AA)
    return draw_boxes(img, obb, boxes=False)


def draw_classification(img: np.ndarray, cls: Any) -> np.ndarray:
    for row, t in enumerate(cls.to_dict()["top"]):
        label(img, f"{t['class_name']} {t['confidence']:.2f}", 8, 30 + 20 * row, color_for(t["class_id"]))
    return img


def draw_result(img: np.ndarray, result: Any) -> np.ndarray:
    """Any result type: its own ``draw`` when it has one, else plain boxes."""
    if hasattr(result, "draw"):
        return result.draw(img)
    if hasattr(result, "xyxy"):
        return draw_boxes(img, result)
    return img
