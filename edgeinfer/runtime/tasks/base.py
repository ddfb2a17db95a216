"""Common frame of every task decoder: layout, names, options, batch loop, transforms.

A decoder is called like :class:`edgeinfer.runtime.postprocess.Postprocessor`:
``decoder(outputs, transforms) -> [result per image]``, with ``outputs`` in the model's output order.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from ...errors import BackendError, ConfigError
from ..preprocess import LetterboxTransform
from .options import DecodeOptions

HEAD_LAYOUTS = ("yolov8", "yolov5", "end2end")


class TaskDecoder:
    """Base class; subclasses implement :meth:`decode`."""

    task = ""

    def __init__(self, *, layout: str = "yolov8", names: Optional[Dict[int, str]] = None,
                 options: Optional[DecodeOptions] = None, input_hw: Optional[Sequence[int]] = None) -> None:
        if layout not in HEAD_LAYOUTS and self.task != "classify":
            raise ConfigError(f"output layout {layout!r} has no {self.task} decoder",
                              hint=f"use one of {', '.join(HEAD_LAYOUTS)}")
        self.layout = layout
        self.names = dict(names or {})
        self.opts = options or DecodeOptions()
        self.input_hw = tuple(int(v) for v in input_hw) if input_hw else None

    def __call__(self, outputs: Sequence[np.ndarray], transforms: Optional[Sequence[Optional[LetterboxTransform]]]) -> List:
        if not outputs:
            raise BackendError("the model returned no outputs", hint="check the model's output tensors")
        batch = int(np.shape(outputs[0])[0]) if np.ndim(outputs[0]) else 1
        return self.decode(outputs, list(transforms) if transforms is not None else [None] * batch)

    def decode(self, outputs: Sequence[np.ndarray], transforms: Sequence[Optional[LetterboxTransform]]) -> List:
        raise NotImplementedError

    def _transform(self, t: Optional[LetterboxTransform]) -> LetterboxTransform:
        """The frame's transform; without one, the frame *is* the model input (identity)."""
        if t is not None:
            return t
        if self.input_hw is None:
            raise BackendError(f"{self.task} decoding needs the frame transform or the input size",
                               hint="call the model on frames (model(frame)), not on raw outputs")
        from ..preprocess import letterbox_geometry

        return letterbox_geometry(self.input_hw, self.input_hw)

    def _nc(self, pred: np.ndarray, *, extra: int) -> int:
        """Class count from the head's width minus the task channels (names can be missing or stale)."""
        if self.layout == "end2end":
            return len(self.names)
        width = pred.shape[0] if self.layout == "yolov8" else pred.shape[1] - 1
        nc = width - 4 - extra
        if nc < 1:
            self._bad_outputs([pred], f"4 box + classes + {extra} {self.task} channels")
        return nc

    def _bad_outputs(self, outputs: Sequence[np.ndarray], expected: str) -> None:
        shapes = [tuple(np.shape(o)) for o in outputs]
        raise BackendError(f"{self.task} model outputs {shapes} do not fit: expected {expected}",
                           hint="check the model's task (pass task= to edgeinfer.load to override it)")
