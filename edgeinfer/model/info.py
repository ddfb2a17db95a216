"""What edgeinfer knows about a model: I/O tensors, pre-processing, output layout, class names.

`ModelInfo` is the currency between stages: ingestion produces it, quantization and placement
read it, the bundle stores it (``to_dict``/``from_dict``), and the runtime's pre/post-processing
is driven by it. Device-side code: keep it Python 3.8-clean.

Example:
    >>> info = ModelInfo(
    ...     inputs=[TensorSpec("images", [1, 3, 320, 320], "float32")],
    ...     outputs=[TensorSpec("output0", [1, 7, 2100], "float32")],
    ...     task="detect", output_layout="yolov8", names={0: "rect", 1: "circle", 2: "triangle"})
    >>> info.imgsz
    (320, 320)
    >>> ModelInfo.from_dict(info.to_dict()) == info
    True
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..errors import ConfigError, EdgeInferError, ModelError

Dim = Union[int, str]  # a str names a dynamic axis ("batch", "height")

TASKS = ("detect", "generic")
OUTPUT_LAYOUTS = (
    "yolov8",  # [B, 4+nc, N]: xywh then class scores (YOLOv8 / YOLO11)
    "yolov5",  # [B, N, 5+nc]: xywh, objectness, class scores
    "end2end",  # [B, K, 6]: x1 y1 x2 y2 score class (NMS inside the model)
    "efficient_nms",  # 4 outputs: num_dets [B,1], boxes [B,K,4] xyxy, scores [B,K], classes [B,K] (TRT EfficientNMS)
    "centerface",  # 4 stride-4 maps: heatmap [B,1,h,w], log-size [B,2,h,w], offset [B,2,h,w], landmarks [B,10,h,w]
    "generic",  # anything else: raw named outputs
)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor."""

    name: str
    shape: List[Dim]
    dtype: str = "float32"

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) and d > 0 for d in self.shape)

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TensorSpec":
        return cls(name=str(data["name"]), shape=list(data["shape"]), dtype=str(data.get("dtype", "float32")))


RESIZE_MODES = ("letterbox", "stretch", "crop")
COLORS = ("RGB", "BGR", "GRAY")
LAYOUTS = ("NCHW", "NHWC")
# ``--preprocess imagenet``: torchvision's ImageNet normalisation (RGB, 1/255, then mean/std per channel)
PRESETS: Dict[str, Dict[str, Any]] = {
    "imagenet": {"color": "RGB", "scale": 1.0 / 255.0, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
}
_KEYS = ("resize", "pad", "color", "scale", "mean", "std", "layout", "stride", "center")


@dataclass(frozen=True)
class PreprocessSpec:
    """How a BGR uint8 frame becomes the model input: ``((pixel * scale) - mean) / std`` per model channel.

    Ultralytics defaults for YOLO. ``resize``: ``letterbox`` (aspect kept, padded with ``pad_value``),
    ``stretch`` (plain resize to the input size) or ``crop`` (aspect kept, the frame covers the input and the
    centre is cut out). ``color``: the channel order the model wants (``GRAY`` for one-channel inputs);
    ``mean``/``std`` are in that order. ``layout``: NCHW or NHWC, read from the graph at packaging time.

    Example:
        >>> spec = PreprocessSpec().updated("imagenet resize=stretch layout=nhwc")
        >>> spec.resize, spec.layout, spec.mean, round(spec.scale, 6)
        ('stretch', 'NHWC', (0.485, 0.456, 0.406), 0.003922)
        >>> PreprocessSpec.from_dict({"letterbox": False}).resize   # bundles written before `resize` existed
        'stretch'
    """

    resize: str = "letterbox"
    pad_value: int = 114
    color: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: Tuple[float, float, float] = (0.0, 0.0, 0.0)  # subtracted after scaling
    std: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "NCHW"
    stride: int = 32  # dynamic-shape inputs are rounded to a multiple of this
    center: bool = True  # pad equally on both sides (Ultralytics), else bottom/right only

    def __post_init__(self) -> None:
        for key, value, allowed in (("resize", self.resize, RESIZE_MODES), ("color", self.color, COLORS),
                                    ("layout", self.layout, LAYOUTS)):
            if value not in allowed:
                raise ConfigError(f"pre-processing {key}={value!r} is not supported",
                                  hint=f"use one of {', '.join(a.lower() for a in allowed)}")
        for key in ("mean", "std"):
            value = tuple(float(v) for v in getattr(self, key))
            if len(value) == 1:
                value = value * 3
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ConfigError(f"pre-processing {key}={getattr(self, key)} needs 1 or 3 finite numbers",
                                  hint=f"e.g. {key}=0.485,0.456,0.406 (in the model's channel order)")
            object.__setattr__(self, key, value)
        if any(v == 0 for v in self.std):
            raise ConfigError(f"pre-processing std={self.std} contains zero", hint="use a non-zero std per channel")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"pre-processing scale={self.scale} must be a positive number",
                              hint="use scale=1/255 (pixels to 0..1) or scale=1 (raw 0..255)")
        if not 0 <= int(self.pad_value) <= 255 or int(self.stride) < 1:
            raise ConfigError(f"pre-processing pad={self.pad_value} / stride={self.stride} out of range",
                              hint="pad is a grey level 0..255, stride a positive integer")

    @property
    def letterbox(self) -> bool:
        return self.resize == "letterbox"

    @property
    def channels(self) -> int:
        return 1 if self.color == "GRAY" else 3

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PreprocessSpec":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "resize" not in known and "letterbox" in data:  # schema before `resize`: a boolean
            known["resize"] = "letterbox" if data["letterbox"] else "stretch"
        return cls(**known)

    def updated(self, overrides: Union[None, str, Mapping[str, Any], "PreprocessSpec"]) -> "PreprocessSpec":
        """This spec with ``overrides`` applied: a PreprocessSpec (taken whole), a mapping, or the CLI text
        ``"imagenet mean=0.5 std=0.5 color=rgb resize=stretch scale=1/255 layout=nhwc pad=114"``
        (space- or semicolon-separated ``key=value``; ``imagenet`` is a preset). Unknown keys are a ConfigError.
        """
        if overrides is None:
            return self
        if isinstance(overrides, PreprocessSpec):
            return overrides
        items = parse_preprocess(overrides) if isinstance(overrides, str) else dict(overrides)
        changes: Dict[str, Any] = {}
        for key, value in items.items():
            key = {"pad": "pad_value"}.get(str(key).lower(), str(key).lower())
            if key not in self.__dataclass_fields__:
                raise ConfigError(f"unknown pre-processing key {key!r}", hint=f"use {', '.join(_KEYS)} or 'imagenet'")
            changes[key] = _coerce(key, value)
        return replace(self, **changes)


def parse_preprocess(text: str) -> Dict[str, Any]:
    """``"imagenet std=0.5 color=bgr"`` -> ``{"color": "RGB", ..., "std": "0.5", "color": "bgr"}`` (later wins).

    Example:
        >>> parse_preprocess("mean=0.5 std=0.25; resize=crop")
        {'mean': '0.5', 'std': '0.25', 'resize': 'crop'}
    """
    out: Dict[str, Any] = {}
    for token in str(text).replace(";", " ").split():
        if "=" not in token:
            if token.lower() not in PRESETS:
                raise ConfigError(f"pre-processing item {token!r} is not key=value",
                                  hint=f"write e.g. mean=0.485,0.456,0.406; keys: {', '.join(_KEYS)}; presets: "
                                       + ", ".join(PRESETS))
            out.update(PRESETS[token.lower()])
            continue
        key, _, value = token.partition("=")
        out[key.strip().lower()] = value.strip()
    return out


def _coerce(key: str, value: Any) -> Any:
    """CLI strings (and Python values) -> the field's type; ConfigError naming the key otherwise."""
    try:
        if key in ("resize", "color", "layout"):
            text = str(value).strip()
            return text.lower() if key == "resize" else text.upper()
        if key in ("mean", "std"):
            items = value.split(",") if isinstance(value, str) else (value if isinstance(value, (list, tuple)) else [value])
            return tuple(_number(v) for v in items)
        if key == "scale":
            return 1.0 if str(value).strip().lower() in ("none", "1") else _number(value)
        if key == "center":
            return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")
        return int(value)  # pad_value, stride
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(f"pre-processing {key}={value!r} is not a valid value",
                          hint="numbers as 0.5 or 1/255; lists comma-separated, e.g. mean=0.485,0.456,0.406") from None


def _number(value: Any) -> float:
    text = str(value).strip()
    if "/" in text:
        num, _, den = text.partition("/")
        return float(num) / float(den)
    return float(text)


@dataclass(frozen=True)
class ModelInfo:
    """Everything downstream stages need to know about one model."""

    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    task: str = "generic"
    output_layout: str = "generic"
    names: Dict[int, str] = field(default_factory=dict)
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    opset: Optional[int] = None
    source: str = ""  # where it came from (file name, "ultralytics:yolo11n.pt", ...)
    metadata: Dict[str, str] = field(default_factory=dict)  # ONNX metadata_props kept verbatim

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ModelError("model has no inputs", hint="export the model with at least one input tensor")
        if self.task not in TASKS:
            raise ModelError(f"unknown task {self.task!r}", hint=f"use one of {', '.join(TASKS)}")
        if self.output_layout not in OUTPUT_LAYOUTS:
            raise ModelError(f"unknown output layout {self.output_layout!r}", hint=f"use one of {', '.join(OUTPUT_LAYOUTS)}")

    @property
    def input(self) -> TensorSpec:
        """The (first) image input."""
        return self.inputs[0]

    @property
    def is_static(self) -> bool:
        return all(t.is_static for t in self.inputs)

    @property
    def batch(self) -> Optional[int]:
        b = self.input.shape[0]
        return b if isinstance(b, int) and b > 0 else None

    @property
    def imgsz(self) -> Optional[Tuple[int, int]]:
        """(height, width) of the image input, or None when dynamic."""
        shape = self.input.shape
        if len(shape) != 4:
            return None
        h, w = (shape[2], shape[3]) if self.preprocess.layout == "NCHW" else (shape[1], shape[2])
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            return (h, w)
        return None

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "task": self.task,
            "output_layout": self.output_layout,
            "names": {int(k): str(v) for k, v in self.names.items()},
            "preprocess": self.preprocess.to_dict(),
            "opset": self.opset,
            "source": self.source,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ModelInfo":
        try:
            return cls(
                inputs=[TensorSpec.from_dict(t) for t in data["inputs"]],
                outputs=[TensorSpec.from_dict(t) for t in data["outputs"]],
                task=data.get("task", "generic"),
                output_layout=data.get("output_layout", "generic"),
                names={int(k): str(v) for k, v in (data.get("names") or {}).items()},
                preprocess=PreprocessSpec.from_dict(data.get("preprocess") or {}),
                opset=data.get("opset"),
                source=data.get("source", ""),
                metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, EdgeInferError) as exc:
            raise ModelError(f"model info is malformed: {exc}", hint="re-package the model") from exc
