"""Pose (Ultralytics ``-pose`` heads): boxes + keypoints decoded inside the model.

The ONNX head already emits keypoints in input pixels with sigmoid visibilities
(``[B, 4+nc+K*D, N]``, or end-to-end ``[B, K, 6+K*D]``); decoding is NMS on the boxes and mapping
keypoints back through the letterbox, clipped to the frame (Ultralytics' ``scale_coords``).

Example:
    >>> import numpy as np
    >>> p = np.zeros((4 + 1 + 2 * 3, 2), np.float32)        # 1 class, 2 keypoints (x, y, v), 2 anchors
    >>> p[:5, 0] = [16, 16, 8, 8, 0.9]; p[5:, 0] = [12, 14, 0.8, 20, 18, 0.7]
    >>> r = PoseDecoder(names={0: "person"}, kpt_shape=(2, 3), input_hw=(32, 32))([p[None]], None)[0]
    >>> r.keypoints[0].tolist()
    [[12.0, 14.0, 0.800000011920929], [20.0, 18.0, 0.699999988079071]]
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..preprocess import LetterboxTransform
from ..task_results import Poses
from .base import TaskDecoder
from .candidates import select


def scale_keypoints(kpts: np.ndarray, t: LetterboxTransform) -> np.ndarray:
    """(N, K, D) input-pixel keypoints -> frame pixels, clipped to the frame (in place)."""
    h, w = t.src_hw
    kpts[..., 0] -= t.pad_left
    kpts[..., 1] -= t.pad_top
    kpts[..., 0] /= t.gain_x
    kpts[..., 1] /= t.gain_y
    np.clip(kpts[..., 0], 0, w, out=kpts[..., 0])
    np.clip(kpts[..., 1], 0, h, out=kpts[..., 1])
    return kpts


class PoseDecoder(TaskDecoder):
    """Pose head -> :class:`Poses`. ``kpt_shape`` (K, D) comes from Ultralytics' ``kpt_shape`` metadata."""

    task = "pose"

    def __init__(self, *, kpt_shape: Tuple[int, int] = (17, 3), skeleton=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kpt_shape = (int(kpt_shape[0]), int(kpt_shape[1]))
        self.skeleton = skeleton

    def decode(self, outputs: Sequence[np.ndarray], transforms: Sequence[Optional[LetterboxTransform]]) -> list:
        pred = np.asarray(outputs[0])
        if pred.ndim != 3:
            self._bad_outputs(outputs, "[B, 4+nc+K*D, N]")
        k, d = self.kpt_shape
        results = []
        for b in range(min(len(pred), len(transforms))):
            nc = self._nc(pred[b], extra=k * d)
            c = select(pred[b], self.layout, nc, self.opts)
            t = self._transform(transforms[b])
            boxes = t.to_original(c.boxes.copy())
            kpts = scale_keypoints(c.extra[:, :k * d].reshape(-1, k, d).copy(), t)
            if d == 2:  # no visibility channel: every keypoint counts as visible
                kpts = np.concatenate([kpts, np.ones((len(kpts), k, 1), np.float32)], axis=2)
            results.append(Poses(boxes, c.scores, c.cls, self.names, t.src_hw, keypoints=kpts, skeleton=self.skeleton))
        return results
