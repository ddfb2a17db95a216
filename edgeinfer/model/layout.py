"""Recognise what a model's outputs mean: YOLOv8/11, YOLOv5, end-to-end (NMS inside) or generic.

The decision uses shapes first and Ultralytics metadata to break ties:

* ``yolov8``  ``[B, 4+nc, N]`` (YOLOv8 / YOLO11): N anchor points, one per grid cell of strides 8/16/32(/64).
* ``yolov5``  ``[B, N, 5+nc]``: three anchors per grid cell, so N = 3 × cells.
* ``end2end`` ``[B, K, 6]`` (x1 y1 x2 y2 score class; YOLOv10/YOLO26 ``end2end`` exports) or the
  four-output EfficientNMS form ``num_dets [B,1], boxes [B,K,4], scores [B,K], classes [B,K]``
  (layout ``efficient_nms``).
* ``centerface`` CenterFace's four stride-4 maps, in its export order: heatmap ``[B,1,H/4,W/4]``,
  log box size ``[B,2,..]``, centre offset ``[B,2,..]``, five landmarks ``[B,10,..]`` (one class, "face").
* ``generic`` anything else; the runtime hands back raw named outputs.

When the image size is known, the anchor count N must equal the grid cell count exactly, which
tells ``[1, 84, 8400]`` (v8, 80 classes) from ``[1, 25200, 85]`` (v5) without guessing. Class names
(``len(names) == nc``) settle what remains, e.g. a segmentation head ``[1, 116, 8400]`` with 80 names
is *not* a v8 detector.

Example:
    >>> detect_layout([[1, 7, 2100]], imgsz=(320, 320), names={0: "a", 1: "b", 2: "c"})
    ('detect', 'yolov8')
    >>> detect_layout([[1, 25200, 85]], imgsz=(640, 640), names={})
    ('detect', 'yolov5')
    >>> detect_layout([[1, 1, 320, 320]], imgsz=(320, 320), names={})
    ('generic', 'generic')
    >>> detect_layout([[1, 1, 80, 80], [1, 2, 80, 80], [1, 2, 80, 80], [1, 10, 80, 80]], imgsz=(320, 320), names={})
    ('detect', 'centerface')
"""
from __future__ import annotations

import ast
import math
from typing import Any, Sequence

from ..errors import ModelError
from .info import PreprocessSpec

Shape = Sequence[Any]


def grid_cells(imgsz: tuple[int, int], strides: Sequence[int]) -> int:
    """Number of grid cells over all detection strides (ceil: Ultralytics pads to the stride)."""
    h, w = imgsz
    return sum(math.ceil(h / s) * math.ceil(w / s) for s in strides)


_STRIDE_SETS = ((8, 16, 32), (8, 16, 32, 64))


def _known(shape: Shape) -> bool:
    return all(isinstance(d, int) and d > 0 for d in shape)


def _cells(imgsz: tuple[int, int] | None) -> set[int]:
    return {grid_cells(imgsz, s) for s in _STRIDE_SETS} if imgsz else set()


def _is_efficient_nms(shapes: Sequence[Shape]) -> bool:
    if len(shapes) != 4:
        return False
    ranks = [len(s) for s in shapes]
    return ranks == [2, 3, 2, 2] and shapes[1][-1] == 4 and shapes[0][-1] in (1, "1")


def detect_layout(output_shapes: Sequence[Shape], *, imgsz: tuple[int, int] | None,
                  names: dict[int, str], end2end: bool = False, task: str | None = None) -> tuple[str, str]:
    """(task, output_layout) for the given output shapes. See the module docstring for the rules."""
    if task not in (None, "", "detect"):
        return ("generic", "generic")  # segment/pose/classify/obb: raw outputs until the runtime decodes them
    if _is_efficient_nms(output_shapes):
        return ("detect", "efficient_nms")
    if _is_centerface(output_shapes, imgsz):
        return ("detect", "centerface")
    if len(output_shapes) != 1 or len(output_shapes[0]) != 3:
        return ("generic", "generic")
    _, a, b = output_shapes[0]
    nc = len(names)
    cells = _cells(imgsz)
    if b == 6 and isinstance(a, int) and _looks_end2end(a, cells, nc, end2end):
        return ("detect", "end2end")
    if isinstance(a, int) and isinstance(b, int):
        if _looks_v8(a, b, cells, nc):
            return ("detect", "yolov8")
        if _looks_v5(a, b, cells, nc):
            return ("detect", "yolov5")
    # Dynamic anchor axis: only the class count can vouch for the layout.
    if isinstance(a, int) and not isinstance(b, int) and nc and a == 4 + nc:
        return ("detect", "yolov8")
    if isinstance(b, int) and not isinstance(a, int) and nc and b == 5 + nc:
        return ("detect", "yolov5")
    if b == 6 and not isinstance(a, int) and end2end:
        return ("detect", "end2end")
    return ("generic", "generic")


def _is_centerface(shapes: Sequence[Shape], imgsz: tuple[int, int] | None) -> bool:
    """Four rank-4 maps with 1, 2, 2 and 10 channels on one stride-4 grid (CenterFace's export)."""
    if len(shapes) != 4 or any(len(s) != 4 for s in shapes):
        return False
    if [s[1] for s in shapes] != [1, 2, 2, 10] or len({tuple(s[2:]) for s in shapes}) != 1:
        return False
    h, w = shapes[0][2:]
    if imgsz and isinstance(h, int) and isinstance(w, int):
        return (h * 4, w * 4) == tuple(imgsz)
    return True


def _looks_end2end(rows: int, cells: set[int], nc: int, end2end: bool) -> bool:
    """[B, K, 6] is NMS output unless it is a 1-class YOLOv5 head, whose N is 3 x grid cells."""
    if end2end:
        return True
    if cells:
        return rows not in {3 * c for c in cells}
    return nc != 1 and rows <= 1000  # dynamic size: NMS exports keep at most a few hundred boxes


def _looks_v8(channels: int, anchors: int, cells: set[int], nc: int) -> bool:
    if channels < 5:
        return False
    if nc and channels != 4 + nc:
        return False
    if cells:
        return anchors in cells
    return anchors > channels  # dynamic size: anchors always outnumber channels in practice


def _looks_v5(anchors: Any, channels: Any, cells: set[int], nc: int) -> bool:
    if not isinstance(anchors, int) or not isinstance(channels, int) or channels < 6:
        return False
    if nc and channels != 5 + nc:
        return False
    if cells:
        return anchors in {3 * c for c in cells}
    return anchors > channels


# Bounds on what ONNX metadata may ask the parser to do. ``ast.literal_eval`` of a crafted string (a 100 kB run of
# unary minus signs, a 50,000-term sum) ends in MemoryError or RecursionError inside CPython's parser, so the size is
# capped before parsing and those errors become one ModelError. LVIS's 1,203 class names take ~30 kB.
MAX_NAMES_CHARS = 1 << 20
MAX_SMALL_CHARS = 256  # imgsz, stride: "[640, 640]" is 10 characters


def _literal(raw: str, *, key: str, limit: int) -> Any:
    """``ast.literal_eval`` of metadata ``key``, bounded; None when it is simply not a literal."""
    hint = (f"fix or delete the {key!r} entry of the model's ONNX metadata_props "
            "(onnx.load, edit model.metadata_props, onnx.save), or re-export the model")
    if len(raw) > limit:
        raise ModelError(f"ONNX metadata {key!r} is {len(raw):,} characters long (limit {limit:,})", hint=hint)
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError):
        return None
    except (MemoryError, RecursionError) as exc:
        raise ModelError(f"ONNX metadata {key!r} ({len(raw):,} characters) is nested too deeply to read "
                         f"({type(exc).__name__})", hint=hint) from None


def parse_names(raw: str | None) -> dict[int, str]:
    """Ultralytics' ``names`` metadata: a Python-literal dict string like ``"{0: 'person', 1: 'car'}"``.

    Example:
        >>> parse_names("{0: 'person', 1: 'car'}"), parse_names("not a literal")
        ({0: 'person', 1: 'car'}, {})
    """
    if not raw:
        return {}
    value = _literal(raw, key="names", limit=MAX_NAMES_CHARS)
    if isinstance(value, dict):
        try:
            return {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            return {}
    if isinstance(value, (list, tuple)):
        return {i: str(v) for i, v in enumerate(value)}
    return {}


def parse_imgsz(raw: str | None) -> tuple[int, int] | None:
    """Ultralytics' ``imgsz`` metadata: ``"[640, 640]"`` (h, w) or ``"640"``."""
    if not raw:
        return None
    value = _literal(raw, key="imgsz", limit=MAX_SMALL_CHARS)
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    return None


def is_ultralytics(meta: dict[str, str]) -> bool:
    return meta.get("author", "").lower().startswith("ultralytics") or ("names" in meta and "stride" in meta)


def preprocess_for(meta: dict[str, str]) -> tuple[PreprocessSpec, bool]:
    """(spec, known): Ultralytics models are letterboxed RGB /255 with their stride; others get the same
    defaults, flagged as assumed so the caller can say so."""
    if is_ultralytics(meta):
        value = _literal(meta.get("stride", "32"), key="stride", limit=MAX_SMALL_CHARS)
        stride = value if isinstance(value, int) else 32
        return PreprocessSpec(resize="letterbox", color="RGB", scale=1.0 / 255.0, stride=max(stride, 1)), True
    return PreprocessSpec(), False


_CHANNELS = (1, 3)


def layout_from_shape(shape: Shape) -> str | None:
    """NCHW or NHWC from a rank-4 image input's shape alone, or None when the shape cannot tell.

    The channel axis is the one holding 1 or 3 while the other candidate does not; ``[N, 48, 48, 3]``
    is NHWC, ``[1, 3, 640, 640]`` NCHW, ``[1, 3, 48, 3]`` undecidable.

    Example:
        >>> layout_from_shape(["N", 48, 48, 3]), layout_from_shape([1, 3, "h", "w"]), layout_from_shape([1, 3, 8, 3])
        ('NHWC', 'NCHW', None)
    """
    if len(shape) != 4:
        return None
    first, last = shape[1] in _CHANNELS, shape[3] in _CHANNELS
    if first and not last:
        return "NCHW"
    if last and not first:
        return "NHWC"
    return None


def input_layout(shape: Shape, graph_hint: str | None = None) -> tuple[str, str]:
    """(layout, why): the graph's own evidence (a Transpose [0,3,1,2] before the first Conv means NHWC; a Conv
    fed directly means NCHW) wins over the shape; NCHW when neither can tell."""
    if graph_hint in ("NCHW", "NHWC"):
        return graph_hint, "from the graph (what the first Conv reads)"
    by_shape = layout_from_shape(shape)
    if by_shape:
        return by_shape, "from the input shape (the 1/3-channel axis)"
    return "NCHW", "assumed (the input shape cannot tell; declare layout=nhwc if it is)"


def input_hw(shape: Shape, layout: str) -> tuple[Any, Any] | None:
    """(height, width) dims of a rank-4 image input in ``layout`` (they may be symbolic), else None."""
    if len(shape) != 4:
        return None
    return (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])


def input_channels(shape: Shape, layout: str) -> Any:
    return shape[1] if layout == "NCHW" else shape[3]


def static_hw(shape: Shape, layout: str) -> tuple[int, int] | None:
    hw = input_hw(shape, layout)
    if hw and all(isinstance(d, int) and d > 0 for d in hw):
        return (int(hw[0]), int(hw[1]))
    return None


def describe_input(shape: Shape, meta: dict[str, str], *, graph_hint: str | None = None,
                   declared: Any = None) -> tuple[PreprocessSpec, str]:
    """The image input's PreprocessSpec (Ultralytics metadata or defaults, the layout read from the graph/shape,
    GRAY for one channel, then ``declared`` overrides) and one line saying where each part came from."""
    spec, known = preprocess_for(meta)
    layout, why = ("NCHW", "Ultralytics export") if known else input_layout(shape, graph_hint)
    changes: dict[str, Any] = {"layout": layout}
    if len(shape) == 4 and input_channels(shape, layout) == 1:
        changes["color"] = "GRAY"
    spec = spec.updated(changes).updated(declared)
    source = "from Ultralytics metadata" if known else "assumed: letterbox, RGB, 1/255 (not an Ultralytics model)"
    if declared is not None:
        source = "declared (" + _describe_spec(spec) + ")"
    return spec, f"pre-processing {source}; layout {spec.layout} {why if spec.layout == layout else '(declared)'}"


def _describe_spec(spec: PreprocessSpec) -> str:
    return (f"resize {spec.resize}, {spec.color}, scale {spec.scale:.6g}, mean {list(spec.mean)}, "
            f"std {list(spec.std)}, {spec.layout}")


def parse_bool(raw: str | None) -> bool:
    return str(raw).strip().lower() in ("true", "1", "yes")
