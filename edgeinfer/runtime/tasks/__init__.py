"""Decoders for every Ultralytics task: detect, segment, pose, obb, classify.

:func:`resolve_task` reads the task from the override, then Ultralytics' ``task`` metadata, then the
output shapes (two outputs with a rank-4 one: segment; one [B, nc] output: classify; ``kpt_shape``
metadata: pose); the head form (``yolov8`` one-to-many, ``yolov5`` with objectness, ``end2end``
NMS-free as YOLOv10/YOLO26 exports) from the ``end2end`` metadata and the shapes.
:func:`make_decoder` builds the decoder the runtime calls on every batch.

Example:
    >>> from edgeinfer.model.info import ModelInfo, TensorSpec
    >>> info = ModelInfo(inputs=[TensorSpec("images", [1, 3, 160, 160])],
    ...                  outputs=[TensorSpec("output0", [1, 116, 525]), TensorSpec("output1", [1, 32, 40, 40])],
    ...                  names={i: str(i) for i in range(80)}, metadata={"task": "segment"})
    >>> resolve_task(info)
    ('segment', 'yolov8')
    >>> type(make_decoder(info)).__name__
    'SegmentDecoder'
"""
from __future__ import annotations

import ast
from typing import Any, Optional, Tuple

from ...errors import ConfigError
from ...model.info import ModelInfo
from ...model.layout import parse_bool
from .options import DecodeOptions

TASKS = ("detect", "segment", "pose", "obb", "classify")
_ALIASES = {"seg": "segment", "segmentation": "segment", "keypoints": "pose", "cls": "classify",
            "classification": "classify", "oriented": "obb"}

__all__ = ["TASKS", "DecodeOptions", "resolve_task", "make_decoder", "kpt_shape_of"]


def _task_from_shapes(info: ModelInfo) -> str:
    """Without a ``task`` in the metadata: only models with class names (a YOLO export) get decoded."""
    if info.task == "detect":
        return "detect"
    if not info.names:
        return "generic"
    shapes = [list(t.shape) for t in info.outputs]
    if len(shapes) == 2 and sorted(len(s) for s in shapes) == [3, 4]:
        return "segment"
    if len(shapes) == 1 and len(shapes[0]) == 2 and shapes[0][1] == len(info.names):
        return "classify"
    if info.metadata.get("kpt_shape"):
        return "pose"
    return "generic"


def kpt_shape_of(info: ModelInfo) -> Tuple[int, int]:
    """Ultralytics' ``kpt_shape`` metadata (e.g. ``"[17, 3]"``), default COCO (17, 3)."""
    raw = info.metadata.get("kpt_shape")
    try:
        k, d = ast.literal_eval(raw) if raw else (17, 3)
        return int(k), int(d)
    except (ValueError, SyntaxError, TypeError):
        return 17, 3


def _extra(task: str, info: ModelInfo) -> Optional[int]:
    if task == "segment":
        proto = [t for t in info.outputs if len(t.shape) == 4]
        return proto[0].shape[1] if proto and isinstance(proto[0].shape[1], int) else 32
    if task == "pose":
        k, d = kpt_shape_of(info)
        return k * d
    if task == "obb":
        return 1
    return 0


def _head_layout(task: str, info: ModelInfo) -> str:
    if parse_bool(info.metadata.get("end2end")):
        return "end2end"
    pred = [t for t in info.outputs if len(t.shape) == 3]
    if not pred:
        return "yolov8"
    _, a, b = pred[0].shape
    extra = _extra(task, info) or 0
    nc = len(info.names)
    if isinstance(b, int) and b == 6 + extra and isinstance(a, int) and a <= 1000 and a != 4 + nc + extra:
        return "end2end"  # [B, K, 6+E] rows of an NMS-free head (K = max_det, 300 by default)
    if isinstance(b, int) and nc and b == 5 + nc + extra and not (isinstance(a, int) and a == 4 + nc + extra):
        return "yolov5"
    return "yolov8"


def resolve_task(info: ModelInfo, task: Optional[str] = None) -> Tuple[str, str]:
    """(task, head layout) for ``info``; ``task`` overrides what the model says.

    Detection keeps the layout ingestion found (``yolov8``/``yolov5``/``end2end``/``efficient_nms``).
    """
    explicit = bool(task)
    if task:
        task = _ALIASES.get(task.lower(), task.lower())
        if task not in TASKS + ("generic",):
            raise ConfigError(f"unknown task {task!r}", hint=f"use one of {', '.join(TASKS)} or generic")
    else:
        meta = _ALIASES.get(str(info.metadata.get("task", "")).lower(), str(info.metadata.get("task", "")).lower())
        task = meta if meta in TASKS else _task_from_shapes(info)
    if task == "generic":
        return "generic", "generic"
    if task == "detect":
        if info.output_layout in ("yolov8", "yolov5", "end2end", "efficient_nms", "centerface"):
            return "detect", info.output_layout
        return ("detect", _head_layout("detect", info)) if explicit else ("generic", "generic")
    if task == "classify":
        return "classify", "classify"
    return task, _head_layout(task, info)


def make_decoder(info: ModelInfo, *, task: Optional[str] = None, options: Optional[DecodeOptions] = None,
                 input_hw: Any = None) -> Any:
    """The decoder for ``info`` (callable ``(outputs, transforms) -> results``), or None for generic models."""
    opts = options or DecodeOptions()
    task, layout = resolve_task(info, task)
    common = dict(layout=layout, names=info.names, options=opts, input_hw=input_hw or info.imgsz)
    if task == "detect":
        from ..postprocess import DETECT_LAYOUTS, Postprocessor

        if layout not in DETECT_LAYOUTS:
            raise ConfigError(f"task=detect but the outputs {[t.shape for t in info.outputs]} are not a detection head",
                              hint="pass the model's real task (segment, pose, obb, classify) or task='generic'")
        return Postprocessor(layout=layout, names=info.names, conf=opts.conf, iou=opts.iou, max_det=opts.max_det,
                             max_nms=opts.max_nms, classes=opts.classes, class_conf=opts.class_conf,
                             agnostic=opts.agnostic)
    if task == "segment":
        from .segment import SegmentDecoder

        return SegmentDecoder(**common)
    if task == "pose":
        from .pose import PoseDecoder

        return PoseDecoder(kpt_shape=kpt_shape_of(info), **common)
    if task == "obb":
        from .obb import OBBDecoder

        return OBBDecoder(**common)
    if task == "classify":
        from .classify import ClassifyDecoder

        return ClassifyDecoder(**common)
    return None
