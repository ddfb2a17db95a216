#!/usr/bin/env python3
"""Time each host-side packaging stage: export, simplify, calibration images, calibrate (per method),
Q/DQ, FP16, accuracy, calibration cache -- and the whole INT8 (minmax) package, side by side.

Models: the demo model (edgeinfer/_data/demo, 320) when present, else a random-weight YOLO11n at
320; and YOLO11n at 640 built from Ultralytics' ``yolo11n.yaml`` (random weights; timings do not
depend on weight values). Calibration: N synthetic frames from ``edgeinfer.demo.make_video``
(640x480 moving shapes), loaded through ``load_calibration_images`` (the runtime's pre-processing).

Target: the whole INT8 package of YOLO11n-640 with minmax under 120 s on a 2-core host.

Usage:
    .venv/bin/python scripts/bench_package_stages.py [--images 256] [--methods minmax,entropy,percentile]
                                                     [--models demo,yolo11n-640] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _machine import machine_info  # noqa: E402  (scripts/ is sys.path[0])

from edgeinfer.model import load_model  # noqa: E402
from edgeinfer.model import onnx_utils as ou  # noqa: E402
from edgeinfer.quantize import (  # noqa: E402
    compute_ranges,
    evaluate_accuracy,
    load_calibration_images,
    make_fp16_onnx,
    make_qdq_onnx,
    write_trt_calibration_cache,
)

TARGET_S = 120.0
HELDOUT = 32


@contextmanager
def timed(row: dict, key: str):
    t0 = time.perf_counter()
    yield
    row[key] = round(time.perf_counter() - t0, 2)


def _source(name: str) -> tuple[str, object]:
    """(model source for load_model, imgsz)."""
    if name == "demo":
        from edgeinfer.demo import DEMO_IMGSZ, demo_model_path
        from edgeinfer.errors import ModelError

        try:
            return str(demo_model_path("pt")), DEMO_IMGSZ
        except ModelError:  # not trained/committed yet: same architecture and size, random weights
            return "yolo11n.yaml", DEMO_IMGSZ
    if name.startswith("yolo11n-"):
        return "yolo11n.yaml", int(name.split("-")[1])
    raise SystemExit(f"unknown model {name!r}: use demo or yolo11n-<size>")


def bench_model(name: str, *, video: Path, images: int, methods: list[str], work: Path) -> dict:
    src, imgsz = _source(name)
    row: dict = {"model": name, "source": Path(src).name, "imgsz": imgsz, "images": images}
    with timed(row, "export_s"):
        model = load_model(src, imgsz=imgsz, workdir=work / "model")
    onnx_model = ou.load_onnx(model.onnx_path)
    with timed(row, "simplify_s"):  # a second onnxslim pass over the exported graph (what an .onnx input costs)
        ou.simplify(onnx_model)
    with timed(row, "calib_images_s"):
        data = load_calibration_images(video, model.info, max_images=images + HELDOUT)
    calib, heldout = data[:images], data[images:]
    row["fp32_infer_ms"] = _plain_inference_ms(model.onnx_path, heldout)  # the machine's speed, same moment
    ranges = {}
    for method in methods:
        with timed(row, f"calibrate_{method}_s"):
            ranges[method] = compute_ranges(model.onnx_path, calib, method=method)
    first = "minmax" if "minmax" in ranges else methods[0]
    with timed(row, "cache_s"):
        write_trt_calibration_cache(ranges[first], trt_version="10.3", method=first)
    with timed(row, "qdq_s"):
        qdq = make_qdq_onnx(model.onnx_path, work / "model.qdq.onnx", ranges=ranges[first], info=model.info)
    with timed(row, "fp16_s"):
        fp16 = make_fp16_onnx(model.onnx_path, work / "model.fp16.onnx")
    with timed(row, "accuracy_s"):
        rep = evaluate_accuracy(model.onnx_path, info=model.info, int8_onnx=qdq.path, fp16_onnx=fp16, data=heldout)
    int8 = rep.precisions["int8"]
    row["int8_score_cosine"] = int8.get("score_cosine")
    row["int8_box_f1"] = int8.get("agreement", {}).get("f1")
    row["int8_package_minmax_s"] = round(sum(row[k] for k in ("export_s", "calib_images_s", f"calibrate_{first}_s",
                                                                "cache_s", "qdq_s", "accuracy_s")), 2)
    row["calibrate_minmax_per_forward"] = round(row.get("calibrate_minmax_s", 0) * 1000
                                                / (images * row["fp32_infer_ms"]), 2)
    row["target_s"] = TARGET_S
    row["ratio_to_target"] = round(row["int8_package_minmax_s"] / TARGET_S, 3)
    return row


def _plain_inference_ms(onnx_path: Path, x) -> float:
    """Plain FP32 ONNX Runtime latency per image: the yardstick the stage times are relative to."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x[:1]})
    t0 = time.perf_counter()
    for i in range(len(x)):
        sess.run(None, {name: x[i:i + 1]})
    return round((time.perf_counter() - t0) * 1000 / len(x), 1)


def _machine() -> dict:
    return machine_info()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--methods", default="minmax,entropy,percentile")
    ap.add_argument("--models", default="demo,yolo11n-640")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from edgeinfer.demo import make_video

    machine = _machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        video = make_video(Path(tmp) / "calib.mp4", frames=args.images + HELDOUT, size=(640, 480), seed=3)
        for name in args.models.split(","):
            row = bench_model(name, video=video, images=args.images, methods=args.methods.split(","),
                              work=Path(tmp) / name)
            rows.append(row)
            print(json.dumps(row), flush=True)
    keys = [k for k in rows[0] if k.endswith("_s") or k in ("fp32_infer_ms", "calibrate_minmax_per_forward",
                                                            "ratio_to_target")]
    print("\nmachine:", json.dumps(machine))
    print("| model | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for row in rows:
        print(f"| {row['model']} ({row['source']}, {row['imgsz']}) | " + " | ".join(str(row.get(k)) for k in keys) + " |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
