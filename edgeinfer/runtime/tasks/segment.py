"""Instance segmentation (Ultralytics ``-seg`` heads): boxes + mask coefficients + prototypes.

Masks are built per object, only over its box, straight at frame resolution: the mask logits
``coeff @ protos`` (prototype resolution, 1/4 of the input) are sampled with one ``cv2.warpAffine``
per object whose affine map goes frame pixel -> input pixel (undoing the letterbox) -> prototype
pixel, with the half-pixel convention of bilinear resizing (as ``F.interpolate(align_corners=False)``
and ``cv2.resize``). Thresholding at 0 (sigmoid > 0.5) and keeping only pixels inside the box
(Ultralytics' ``crop_mask``: columns ``x1 <= c < x2``) gives what Ultralytics' ``retina_masks=True``
gives, without ever building an (N, H, W) float stack: the cost is O(box area), not O(N x frame).

Example:
    >>> import numpy as np
    >>> from edgeinfer.runtime.preprocess import letterbox_geometry
    >>> protos = np.ones((1, 8, 8), np.float32)            # one prototype, positive everywhere
    >>> t = letterbox_geometry((32, 32), (32, 32))
    >>> crops, origins = mask_crops(protos, np.ones((1, 1), np.float32),
    ...                             np.array([[4, 4, 12.5, 8]], np.float32), t)
    >>> crops[0].shape, origins.tolist()
    ((4, 9), [[4, 4]])
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..._deps import require
from ..preprocess import LetterboxTransform
from ..task_results import Segments
from .base import TaskDecoder
from .candidates import select


def mask_crops(protos: np.ndarray, coeffs: np.ndarray, boxes: np.ndarray,
               t: LetterboxTransform) -> Tuple[List[np.ndarray], np.ndarray]:
    """Boolean mask crops (one per box, frame pixels) and their (x0, y0) origins.

    ``protos`` (nm, mh, mw); ``coeffs`` (N, nm); ``boxes`` (N, 4) xyxy in frame pixels.
    """
    cv2 = require("cv2", feature="segmentation masks")
    nm, mh, mw = protos.shape
    n = len(boxes)
    origins = np.zeros((n, 2), np.int64)
    if n == 0:
        return [], origins
    logits = (coeffs.astype(np.float32) @ protos.reshape(nm, -1)).reshape(n, mh, mw)
    in_h, in_w = t.dst_hw
    sx, sy = in_w / mw, in_h / mh  # input pixels per prototype pixel (4 for YOLO)
    ax, ay = t.gain_x / sx, t.gain_y / sy  # prototype pixels per frame pixel
    bx = (0.5 * t.gain_x + t.pad_left) / sx - 0.5
    by = (0.5 * t.gain_y + t.pad_top) / sy - 0.5
    h, w = t.src_hw
    # columns c with x1 <= c < x2 (Ultralytics' crop_mask) are ceil(x1) .. ceil(x2) - 1
    lo = np.ceil(boxes[:, :2]).astype(np.int64)
    hi = np.ceil(boxes[:, 2:]).astype(np.int64)
    lo = np.clip(lo, 0, [w, h])
    hi = np.clip(hi, 0, [w, h])
    crops: List[np.ndarray] = []
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for i in range(n):
        x0, y0 = int(lo[i, 0]), int(lo[i, 1])
        cw, ch = int(hi[i, 0]) - x0, int(hi[i, 1]) - y0
        origins[i] = (x0, y0)
        if cw <= 0 or ch <= 0:
            crops.append(np.zeros((max(ch, 0), max(cw, 0)), bool))
            continue
        m = np.array([[ax, 0.0, x0 * ax + bx], [0.0, ay, y0 * ay + by]], np.float64)
        sampled = cv2.warpAffine(logits[i], m, (cw, ch), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        crops.append(sampled > 0)
    return crops, origins


class SegmentDecoder(TaskDecoder):
    """``output0`` [B, 4+nc+nm, N] (or end-to-end [B, K, 6+nm]) + ``protos`` [B, nm, mh, mw] -> :class:`Segments`."""

    task = "segment"

    def _split(self, outputs: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        protos = [o for o in outputs if np.ndim(o) == 4]
        preds = [o for o in outputs if np.ndim(o) == 3]
        if len(protos) != 1 or len(preds) != 1:
            self._bad_outputs(outputs, "one [B, C, N] prediction and one [B, nm, mh, mw] prototype output")
        return np.asarray(preds[0]), np.asarray(protos[0])

    def decode(self, outputs: Sequence[np.ndarray], transforms: Sequence[Optional[LetterboxTransform]]) -> list:
        pred, protos = self._split(outputs)
        nm = protos.shape[1]
        results = []
        for b in range(min(len(pred), len(transforms))):
            nc = self._nc(pred[b], extra=nm)
            c = select(pred[b], self.layout, nc, self.opts)
            t = self._transform(transforms[b])
            boxes = t.to_original(c.boxes.copy())
            crops, origins = mask_crops(protos[b], c.extra[:, :nm], boxes, t)
            keep = np.array([bool(m.any()) for m in crops], bool)  # Ultralytics drops objects whose mask is empty
            idx = np.flatnonzero(keep)
            results.append(Segments(boxes[idx], c.scores[idx], c.cls[idx], self.names, t.src_hw,
                                    mask_crops=[crops[i] for i in idx], mask_origins=origins[idx],
                                    mask_format=self.opts.mask_format))
        return results
