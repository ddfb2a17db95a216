"""Classification (Ultralytics ``-cls`` heads): the classifier's own pre-processing and top-k.

Ultralytics classifiers are not fed a letterbox: ``classify_transforms`` resizes the *shorter* side
to the input size (torchvision ``Resize(size)``, long side ``int(size * long / short)``), then
centre-crops (``CenterCrop``, offsets ``int(round((h - size) / 2))``), then scales to 0..1 RGB.
torchvision resizes a PIL image with an anti-aliased bilinear filter; on the device we use OpenCV's
``INTER_AREA`` when shrinking (also averages every source pixel, so no aliasing) and ``INTER_LINEAR``
when enlarging. The exported head ends in a softmax, so outputs are probabilities.

Example:
    >>> import numpy as np
    >>> from edgeinfer.model.info import PreprocessSpec
    >>> pre = CenterCropPreprocessor(PreprocessSpec(), (4, 4))
    >>> buf = np.empty((3, 4, 4), np.float32)
    >>> t = pre(np.zeros((8, 16, 3), np.uint8), out=buf)
    >>> t.resized_hw, t.pad_left          # 8x16 -> 4x8, then the middle 4 columns (offset 2)
    ((4, 8), -2)
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..._deps import require
from ...errors import ConfigError
from ...model.info import PreprocessSpec
from ..preprocess import LetterboxTransform, check_frame
from ..task_results import Classification
from .base import TaskDecoder


def center_crop_geometry(src_hw: Sequence[int], size_hw: Sequence[int]) -> LetterboxTransform:
    """Resize-shorter-side + centre-crop as a transform (negative pads: the crop offset)."""
    h0, w0 = int(src_hw[0]), int(src_hw[1])
    th, tw = int(size_hw[0]), int(size_hw[1])
    if th == tw:  # torchvision Resize(int): shorter side to size, aspect kept
        size = th
        if h0 <= w0:
            nh, nw = size, int(size * w0 / h0)
        else:
            nh, nw = int(size * h0 / w0), size
    else:  # Ultralytics passes (h, w) for non-square: exact resize
        nh, nw = th, tw
    top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
    return LetterboxTransform((h0, w0), (th, tw), (nh, nw), min(nh / h0, nw / w0), nw / w0, nh / h0, -top, -left)


class CenterCropPreprocessor:
    """Same interface as :class:`~edgeinfer.runtime.preprocess.Preprocessor`, classifier geometry."""

    def __init__(self, spec: PreprocessSpec, input_hw: Sequence[int], **_: object) -> None:
        if len(input_hw) != 2 or min(int(v) for v in input_hw) <= 0:
            raise ConfigError(f"input size {tuple(input_hw)} is not a positive (height, width)",
                              hint="pass the model input size, e.g. (224, 224)")
        self.spec = spec
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        std = np.asarray(spec.std, np.float32)
        self._mul = (spec.scale / std).astype(np.float32).reshape(3, 1, 1)
        self._add = (-np.asarray(spec.mean, np.float32) / std).astype(np.float32).reshape(3, 1, 1)
        self._rgb = spec.color == "RGB"

    def geometry(self, src_hw: Sequence[int]) -> LetterboxTransform:
        return center_crop_geometry(src_hw, self.input_hw)

    def __call__(self, frame: np.ndarray, *, out: np.ndarray) -> LetterboxTransform:
        cv2 = require("cv2", feature="classification pre-processing")
        frame = check_frame(frame)
        geo = self.geometry(frame.shape[:2])
        th, tw = geo.dst_hw
        nh, nw = geo.resized_hw
        shrink = nh * nw < frame.shape[0] * frame.shape[1]
        img = frame if (nh, nw) == tuple(frame.shape[:2]) else cv2.resize(
            frame, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        top, left = -geo.pad_top, -geo.pad_left
        crop = img[top:top + th, left:left + tw]
        src = crop[:, :, ::-1] if self._rgb else crop
        np.multiply(src.transpose(2, 0, 1), self._mul, out=out, dtype=np.float32)
        out += self._add
        return geo


class ClassifyDecoder(TaskDecoder):
    """``[B, nc]`` probabilities -> :class:`Classification` with the top-k (``DecodeOptions.top_k``)."""

    task = "classify"

    def decode(self, outputs: Sequence[np.ndarray], transforms: Sequence[Optional[LetterboxTransform]]) -> list:
        probs = np.asarray(outputs[0])
        if probs.ndim != 2:
            self._bad_outputs(outputs, "[B, classes] probabilities")
        n = min(len(probs), len(transforms))
        return [Classification(probs[b], self.names, top_k=self.opts.top_k, image_shape=_src(transforms[b]))
                for b in range(n)]


def _src(t: Optional[LetterboxTransform]) -> Optional[Tuple[int, int]]:
    return t.src_hw if t is not None else None
