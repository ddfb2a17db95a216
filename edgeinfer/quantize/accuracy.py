"""FP32 vs FP16 vs INT8 on ONNX Runtime (host CPU): output error, box agreement, and mAP with labels.

What it measures, per candidate precision, against the FP32 model on the same inputs:

* every output: max / mean absolute error and cosine similarity (flattened over all images);
* detectors: precision/recall/F1 of the candidate's boxes against FP32's boxes (IoU 0.5, same
  class, conf 0.25), the *agreement mAP* (mAP50 and mAP50-95 of the candidate's detections with
  FP32's boxes as labels) and, for information, the cosine of the class-score channels;
* with a labelled set (a YOLO ``val`` dir with images/ + labels/, or a data.yaml): mAP50 and
  mAP50-95 of every precision (conf 0.001, NMS IoU 0.7, max 300 boxes, as Ultralytics validates),
  boxes decoded by the runtime's own ``postprocess`` and mapped back to the original images.

The FP32 side (inputs, labels, FP32 outputs, FP32 boxes) is a :class:`Reference`: made once by
:func:`prepare_reference` and passed to every :func:`evaluate_accuracy` call of the accuracy gate's
fallback attempts, so the FP32 model runs once however many attempts it takes.

A labelled set must speak the model's label space: a ``data.yaml`` whose ``nc``/``names`` count,
or a label whose class id, does not fit the model's classes is refused (the mAP of two unrelated
label spaces is 0 → 0, a "drop" of 0 that means nothing).

These numbers come from ONNX Runtime's CPU kernels. TensorRT's INT8/FP16 kernels (and DLA's
rounding) differ, so the device figures will not be identical; the report says so.

Example:
    >>> rep = evaluate_accuracy("m.onnx", info=info, int8_onnx="m.qdq.onnx", val="datasets/shapes/data.yaml")  # doctest: +SKIP
    >>> rep.to_dict()["precisions"]["int8"]["map50_95"]                                                        # doctest: +SKIP
    0.749
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._deps import require
from ..errors import QuantizeError
from .calibration import IMAGE_EXTS, find_images
from .metrics import box_agreement, detection_map

log = logging.getLogger(__name__)

NOTE = ("Measured with ONNX Runtime (CPU) on the host; TensorRT INT8/FP16 kernels and DLA differ, "
        "so verify accuracy on the device.")
Progress = Callable[[str, int, int], None]
_AGREE_CONF = 0.25
_MAP_CONF, _MAP_IOU = 0.001, 0.7


@dataclass(frozen=True)
class AccuracyReport:
    """Figures per precision ("fp32", "fp16", "int8"); see the module docstring for each field."""

    precisions: dict[str, dict] = field(default_factory=dict)
    images: int = 0
    labelled: bool = False
    backend: str = "onnxruntime-cpu"
    note: str = NOTE
    reference: dict = field(default_factory=dict)  # what the FP32 side holds: boxes, labels, images

    def drop(self, precision: str, metric: str = "map50_95") -> float | None:
        """FP32 minus ``precision`` in mAP *points* (×100), or None without labels."""
        try:
            return round(100.0 * (self.precisions["fp32"][metric] - self.precisions[precision][metric]), 4)
        except KeyError:
            return None

    def to_dict(self) -> dict:
        return {"backend": self.backend, "note": self.note, "images": self.images, "labelled": self.labelled,
                "reference": dict(self.reference), "precisions": {k: dict(v) for k, v in self.precisions.items()},
                "map50_95_drop_points": {k: self.drop(k) for k in self.precisions if k != "fp32"}}


@dataclass
class Reference:
    """The FP32 side of every comparison, computed once: inputs, transforms, labels, outputs per precision."""

    x: np.ndarray
    transforms: Any
    labels: list | None
    outputs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0
    _dets: dict = field(default_factory=dict, repr=False)

    def boxes(self, info: Any, name: str, conf: float, iou: float) -> list:
        """Decoded boxes of ``name``'s stored outputs (cached: the gate asks for FP32's on every attempt)."""
        key = (name, conf, iou)
        if key not in self._dets:
            self._dets[key] = _decode(self.outputs[name], info, self.transforms, conf, iou)
        return self._dets[key]

    def fp32_map(self, info: Any) -> dict:
        """FP32's own mAP on the labelled set (a set the FP32 model cannot see proves nothing)."""
        return detection_map(_tuples(self.boxes(info, "fp32", _MAP_CONF, _MAP_IOU)), self.labels or [])

    def summary(self, info: Any) -> dict:
        """How much the FP32 side gives to compare against (the gate refuses to judge on nothing)."""
        out: dict[str, Any] = {"images": int(len(self.x))}
        if info.task == "detect":
            out["fp32_boxes"] = int(sum(len(d) for d in self.boxes(info, "fp32", _AGREE_CONF, 0.45)))
        if self.labels is not None:
            out["label_boxes"] = int(sum(len(cls) for _, cls in self.labels))
        out["constant_outputs"] = [i for i, o in enumerate(self.outputs["fp32"]) if not np.ptp(o) > 0]
        return out


def prepare_reference(fp32_onnx: str | Path, *, info: Any, data: Any = None, val: str | Path | None = None,
                      fp16_onnx: str | Path | None = None, max_images: int = 200,
                      progress: Progress | None = None) -> Reference:
    """Load the inputs (and labels) and run FP32 (and FP16) once; see :class:`Reference`.

    Example:
        >>> ref = prepare_reference("m.onnx", info=info, data=heldout)                         # doctest: +SKIP
        >>> evaluate_accuracy("m.onnx", info=info, int8_onnx="q.onnx", reference=ref)          # doctest: +SKIP
    """
    started = time.monotonic()
    if val is not None:
        x, transforms, labels = load_labelled_set(val, info, max_images=max_images)
    elif data is not None:
        x, transforms, labels = np.ascontiguousarray(data[:max_images], dtype=np.float32), None, None
    else:
        raise QuantizeError("accuracy evaluation needs held-out data or a labelled val set",
                            hint="pass --val <dir|data.yaml> (labelled) or keep some calibration images aside")
    ref = Reference(x=x, transforms=transforms, labels=labels)
    ref.outputs["fp32"] = _run(Path(fp32_onnx), x, "fp32", progress)
    if fp16_onnx is not None:
        ref.outputs["fp16"] = _run(Path(fp16_onnx), x, "fp16", progress)
    ref.seconds = time.monotonic() - started
    return ref


def evaluate_accuracy(fp32_onnx: str | Path, *, info: Any, int8_onnx: str | Path | None = None,
                      fp16_onnx: str | Path | None = None, data: Any = None, val: str | Path | None = None,
                      max_images: int = 200, progress: Progress | None = None,
                      reference: Reference | None = None) -> AccuracyReport:
    """Compare the candidates with FP32 on ``val`` (labelled) or ``data`` ((N,C,H,W) held-out inputs).

    With ``reference`` (from :func:`prepare_reference`) the inputs, FP32 outputs and any FP16
    outputs stored in it are reused instead of being loaded and run again.

    Example:
        >>> evaluate_accuracy("m.onnx", info=info, int8_onnx="q.onnx", data=heldout).to_dict()   # doctest: +SKIP
    """
    ref = reference or prepare_reference(fp32_onnx, info=info, data=data, val=val, max_images=max_images,
                                         progress=progress)
    models = {"fp32": fp32_onnx, "fp16": fp16_onnx, "int8": int8_onnx}
    models = {k: Path(v) for k, v in models.items() if v is not None}
    outputs = {k: ref.outputs[k] if k in ref.outputs else _run(p, ref.x, k, progress) for k, p in models.items()}
    detect = info.task == "detect"
    figures: dict[str, dict] = {"fp32": {}}
    for name in models:
        if name != "fp32":
            figures[name] = {"outputs": _output_errors(outputs["fp32"], outputs[name], info)}
            if detect:
                dets = _decode(outputs[name], info, ref.transforms, _AGREE_CONF, 0.45)
                fp32 = _tuples(ref.boxes(info, "fp32", _AGREE_CONF, 0.45))
                figures[name]["agreement"] = box_agreement(_tuples(dets), fp32)
                figures[name]["agreement"].update(_agreement_map(outputs[name], info, ref, fp32))
                figures[name]["score_cosine"] = _score_cosine(outputs["fp32"][0], outputs[name][0], info)
        if ref.labels is not None and detect:
            found = (ref.boxes(info, name, _MAP_CONF, _MAP_IOU) if name in ref.outputs
                     else _decode(outputs[name], info, ref.transforms, _MAP_CONF, _MAP_IOU))
            figures[name].update(detection_map(_tuples(found), ref.labels))
    return AccuracyReport(precisions=figures, images=len(ref.x), labelled=ref.labels is not None and detect,
                          reference=ref.summary(info))


def _agreement_map(outputs: list[np.ndarray], info: Any, ref: Reference, fp32: list[tuple]) -> dict:
    """mAP of the candidate's detections (conf >= 0.001, as mAP is computed) with FP32's boxes as labels.

    Threshold-free on the candidate's side: a box whose confidence INT8 moves across 0.25 still counts
    if INT8 ranks it where FP32 did; a box INT8 loses, adds or shifts (IoU 0.5-0.95) costs AP.
    None when FP32 found no box (nothing to agree on).
    """
    if not any(len(b[0]) for b in fp32):
        return {"map50": None, "map50_95": None}
    found = _decode(outputs, info, ref.transforms, _MAP_CONF, _MAP_IOU)
    scored = detection_map(_tuples(found), [(b[0], b[2]) for b in fp32])
    return {"map50": scored["map50"], "map50_95": scored["map50_95"]}


def _run(path: Path, x: np.ndarray, name: str, progress: Progress | None) -> list[np.ndarray]:
    ort = require("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    batch = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else 1
    n = (len(x) // batch) * batch
    if n == 0:
        raise QuantizeError(f"{len(x)} evaluation images but the model's batch is {batch}",
                            hint=f"give at least {batch} held-out images")
    chunks: list[list[np.ndarray]] = []
    for start in range(0, n, batch):
        chunks.append(sess.run(None, {inp.name: x[start:start + batch]}))
        if progress:
            progress(f"accuracy ({name})", start + batch, n)
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]


def _decode(outputs: list[np.ndarray], info: Any, transforms, conf: float, iou: float) -> list:
    from ..runtime.postprocess import postprocess

    n = len(outputs[0])
    return postprocess(outputs, layout=info.output_layout, transforms=transforms[:n] if transforms else None,
                       names=info.names, conf=conf, iou=iou, max_det=300)


def _tuples(dets: list) -> list[tuple]:
    return [(d.xyxy, d.confidence, d.class_id) for d in dets]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    if denom == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.dot(a, b) / denom)


def _output_errors(ref: list[np.ndarray], cand: list[np.ndarray], info: Any) -> dict:
    names = [o.name for o in info.outputs] or [f"output{i}" for i in range(len(ref))]
    out = {}
    for name, a, b in zip(names, ref, cand):
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        peak = float(np.abs(a).max()) if a.size else 0.0
        out[name] = {"max_abs_err": round(float(diff.max()), 6), "mean_abs_err": round(float(diff.mean()), 8),
                     "cosine": round(_cosine(a, b), 6),
                     # relative to the output's own range: element-wise ratios explode near 0
                     "max_rel_err": round(float(diff.max()) / peak, 6) if peak > 0 else None}
    return out


def _score_cosine(ref: np.ndarray, cand: np.ndarray, info: Any) -> float:
    """Cosine of the class-score channels (the part INT8 most often damages)."""
    if info.output_layout == "yolov8" and ref.ndim == 3:
        return round(_cosine(ref[:, 4:], cand[:, 4:]), 6)
    if info.output_layout == "yolov5" and ref.ndim == 3:
        return round(_cosine(ref[..., 4:], cand[..., 4:]), 6)
    if info.output_layout == "end2end" and ref.ndim == 3:
        return round(_cosine(ref[..., 4], cand[..., 4]), 6)
    return round(_cosine(ref, cand), 6)


def _label_path(image: Path) -> Path:
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):  # YOLO convention: the last 'images' dir becomes 'labels'
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _val_images(val: str | Path) -> tuple[list[Path], int | None]:
    """(images of the labelled set, the class count its data.yaml declares or None)."""
    p = Path(val)
    if p.suffix.lower() in (".yaml", ".yml") and p.is_file():
        yaml = require("yaml")
        data = yaml.safe_load(p.read_text()) or {}
        root = Path(data.get("path") or p.parent)
        root = root if root.is_absolute() else p.parent / root
        split = data.get("val") or data.get("test")
        return (find_images(root / split) if split else []), _declared_classes(data)
    if p.is_dir() and (p / "images").is_dir():
        return find_images(p / "images"), None
    return find_images(p), None


def _declared_classes(data: dict) -> int | None:
    names = data.get("names")
    if names:
        return len(names)
    return int(data["nc"]) if isinstance(data.get("nc"), int) else None


def model_classes(info: Any) -> int | None:
    """The model's class count: its names, else what its detection output layout implies."""
    if info.names:
        return len(info.names)
    shape = info.outputs[0].shape if info.outputs else ()
    if info.output_layout == "yolov8" and len(shape) == 3 and isinstance(shape[1], int):
        return shape[1] - 4
    if info.output_layout == "yolov5" and len(shape) == 3 and isinstance(shape[2], int):
        return shape[2] - 5
    return None


def _check_classes(val: Any, info: Any, declared: int | None, labels: list) -> None:
    """Refuse a labelled set from another label space: its mAP would be 0 → 0 and 'pass'."""
    expected = model_classes(info)
    if expected is None:
        return
    if declared is not None and declared != expected:
        raise QuantizeError(f"--val {val} declares {declared} classes but the model has {expected}: "
                            "mAP against another label space measures nothing",
                            hint="give a val set labelled with this model's classes (same ids and count), "
                                 "or leave --val out to compare INT8 with FP32 on held-out images")
    seen = [int(c) for _, cls in labels for c in cls]
    if seen and (max(seen) >= expected or min(seen) < 0):
        raise QuantizeError(f"--val {val} has labels with class id {max(seen)} but the model has {expected} classes "
                            f"(ids 0..{expected - 1})",
                            hint="give a val set labelled with this model's classes, or leave --val out")


def load_labelled_set(val: str | Path, info: Any, *, max_images: int = 200) -> tuple:
    """(inputs (N,C,H,W), transforms, labels [(xyxy pixels, cls)]) of a YOLO-format labelled set."""
    cv2 = require("cv2")
    from ..runtime.preprocess import preprocess_batch

    found, declared = _val_images(val)
    _check_classes(val, info, declared, [])  # before decoding any image
    images = [f for f in found if f.suffix.lower() in IMAGE_EXTS][:max_images]
    if not images:
        raise QuantizeError(f"no labelled images found at {val}",
                            hint="give a YOLO dataset dir (images/ + labels/) or its data.yaml with a 'val' split")
    frames, labels = [], []
    for f in images:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            continue
        frames.append(img)
        labels.append(_read_labels(_label_path(f), img.shape[:2]))
    if not frames:
        raise QuantizeError(f"none of the images at {val} could be decoded", hint="check the files")
    _check_classes(val, info, declared, labels)
    x, transforms = preprocess_batch(frames, info.preprocess, info.imgsz)
    return x, transforms, labels


def _read_labels(path: Path, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """YOLO txt (cls cx cy w h, normalised) → (xyxy in pixels, cls); a missing file = no objects."""
    if not path.is_file():
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    rows = np.loadtxt(path, ndmin=2) if path.stat().st_size else np.zeros((0, 5))
    if rows.size and rows.shape[1] < 5:
        raise QuantizeError(f"label file {path} is not YOLO format (cls cx cy w h)", hint="fix or remove it")
    h, w = hw
    cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return xyxy, rows[:, 0].astype(np.int64)
