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

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from ..errors import ModelError

Dim = Union[int, str]  # a str names a dynamic axis ("batch", "height")

TASKS = ("detect", "generic")
OUTPUT_LAYOUTS = (
    "yolov8",  # [B, 4+nc, N]: xywh then class scores (YOLOv8 / YOLO11)
    "yolov5",  # [B, N, 5+nc]: xywh, objectness, class scores
    "end2end",  # [B, K, 6]: x1 y1 x2 y2 score class (NMS inside the model)
    "efficient_nms",  # 4 outputs: num_dets [B,1], boxes [B,K,4] xyxy, scores [B,K], classes [B,K] (TRT EfficientNMS)
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


@dataclass(frozen=True)
class PreprocessSpec:
    """How a BGR uint8 frame becomes the model input. Ultralytics defaults for YOLO."""

    letterbox: bool = True  # aspect-preserving resize + pad; False = plain stretch resize
    pad_value: int = 114
    color: str = "RGB"  # channel order the model wants (frames arrive BGR from OpenCV)
    scale: float = 1.0 / 255.0
    mean: Tuple[float, float, float] = (0.0, 0.0, 0.0)  # subtracted after scaling
    std: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "NCHW"
    stride: int = 32  # dynamic-shape inputs are rounded to a multiple of this
    center: bool = True  # pad equally on both sides (Ultralytics), else bottom/right only

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PreprocessSpec":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        for key in ("mean", "std"):
            if key in known:
                known[key] = tuple(float(v) for v in known[key])
        return cls(**known)


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
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model info is malformed: {exc}", hint="re-package the model") from exc
