#!/usr/bin/env python3
"""Time each host-side packaging stage: export, simplify, calibration images, calibrate (per method),
Q/DQ, FP16, accuracy, calibration cache -- and the whole INT8 (minmax) package, side by side.

Models: the demo model (edgeinfer/_data/demo, 320) when present, else a random-weight YOLO11n at
320; and YOLO11n at 640 built from Ultralytics' ``yolo11n.yaml`` (random weights; timings do not
depend on weight values). Calibration: N synthetic frames from ``edgeinfer.demo.make_video``
(640x480 moving shapes), loaded through ``load_calibration_images`` (the runtime's pre-processing).

Target: the whole INT8 package of YOLO11n-640 with 200 calibration images under 120 s on a 2-core host.

``--whole REV`` also times the whole ``edgeinfer package`` CLI (YOLO11n-640 ONNX, 200 calibration
frames, ``--device orin-nx-16gb --precision int8``: a DLA device, each version's default method)
for this tree and for git revision REV (extracted to a temp dir), alternately in one run, so the
ratio is measured under the same machine load. ``--whole none`` times this tree only;
``--rounds N`` repeats each side (median and spread are printed).

Usage:
    .venv/bin/python scripts/bench_package_stages.py [--images 200] [--methods minmax,entropy,percentile]
                                                     [--models demo,yolo11n-640] [--whole REV] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
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


def _package_seconds(root: Path, onnx_path: Path, calib: Path, out: Path) -> tuple[float, str]:
    """Wall time of one `edgeinfer package` run with edgeinfer imported from ``root``."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(root))
    cmd = [sys.executable, "-m", "edgeinfer", "package", str(onnx_path), "--device", "orin-nx-16gb",
           "--precision", "int8", "--calib", str(calib), "-o", str(out), "--force"]
    if "accept-unmeasured" in (root / "edgeinfer" / "cli" / "package_cmd.py").read_text():
        # random weights find no boxes: today's gate refuses to call that measured (the old one passed it
        # vacuously), so both trees run the same single attempt
        cmd.append("--accept-unmeasured")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=out.parent)
    seconds = round(time.perf_counter() - t0, 1)
    method = next((line.split("calibration method")[1].strip() for line in r.stdout.splitlines() + r.stderr.splitlines()
                   if "calibration method" in line), "?")
    if r.returncode != 0:
        method += f" (exit {r.returncode}: {(r.stderr.strip().splitlines() or ['?'])[-1][:160]})"
    return seconds, method


def bench_histogram(onnx_path: Path, *, images: int = 4) -> dict:
    """Per-image cost of the range reductions on tensors shaped like ``onnx_path``'s activations
    (random values; the cost depends on sizes, not values): minmax, histogram of every value (before)
    and of a 2**18-value sample per tensor (now), side by side."""
    import numpy as np
    import onnx

    from edgeinfer.quantize.histogram import AbsHistograms
    from edgeinfer.quantize.ranges import _AbsMax

    model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_path)))
    sizes = [int(np.prod([d.dim_value for d in v.type.tensor_type.shape.dim]))
             for v in model.graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
             and all(d.dim_value > 0 for d in v.type.tensor_type.shape.dim)]
    rng = np.random.default_rng(0)
    tensors = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    row: dict = {"tensors": len(sizes), "values_per_image_M": round(sum(sizes) / 1e6, 1)}
    for key, collector in (("minmax", _AbsMax), ("hist_all_values", lambda: AbsHistograms(sample=1 << 40)),
                           ("hist_sampled", AbsHistograms)):
        c = collector()
        t0 = time.perf_counter()
        for _ in range(images):
            for i, t in enumerate(tensors):
                c.add(str(i), t)
        row[f"{key}_s_per_image"] = round((time.perf_counter() - t0) / images, 3)
    row["sampled_vs_all_values"] = round(row["hist_sampled_s_per_image"] / row["hist_all_values_s_per_image"], 3)
    return row


def bench_whole(rev: str, *, images: int, work: Path, rounds: int = 1) -> dict:
    """The whole INT8 package, this tree vs ``rev``, alternately under the same load."""
    import subprocess

    from edgeinfer.demo import make_video

    base = work / "baseline"
    base.mkdir(parents=True)
    if rev != "none":
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "edgeinfer"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
    model = load_model("yolo11n.yaml", imgsz=640, workdir=work / "model")
    calib = make_video(work / "calib.mp4", frames=images, size=(640, 480), seed=5)
    row: dict = {"model": "yolo11n-640 (random weights)", "images": images, "baseline": rev, "now_s": [], "before_s": []}
    for i in range(rounds):
        for key, root in (("before_s", base), ("now_s", REPO)) if rev != "none" else (("now_s", REPO),):
            seconds, method = _package_seconds(root, model.onnx_path, calib, work / f"{key}{i}.bundle")
            row[key].append(seconds)
            row[key.replace("_s", "_method")] = method
            print(f"whole package ({key[:-2]}): {seconds} s, method {method}", flush=True)
    if row["before_s"]:
        row["ratio_now_to_before"] = round(statistics.median(row["now_s"]) / statistics.median(row["before_s"]), 3)
    row["now_median_s"] = round(statistics.median(row["now_s"]), 1)
    row["now_spread_s"] = [min(row["now_s"]), max(row["now_s"])]
    row["target_s"] = TARGET_S
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--methods", default="minmax,entropy,percentile")
    ap.add_argument("--models", default="demo,yolo11n-640")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--whole", metavar="REV", default=None,
                    help="also time the whole package CLI for this tree and for git revision REV, side by side")
    ap.add_argument("--rounds", type=int, default=1, help="--whole: repeat each side this many times (median, spread)")
    ap.add_argument("--histogram", type=Path, default=None, metavar="ONNX",
                    help="time the range reductions per image on tensors shaped like this model's, side by side")
    ap.add_argument("--stages", action=argparse.BooleanOptionalAction, default=True, help="time each stage")
    args = ap.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from edgeinfer.demo import make_video

    machine = _machine()
    rows = []
    if args.histogram:
        hist = bench_histogram(args.histogram)
        print(json.dumps(hist), flush=True)
        machine["histogram"] = hist
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        if args.whole:
            whole = bench_whole(args.whole, images=args.images, work=Path(tmp) / "whole", rounds=args.rounds)
            print(json.dumps(whole), flush=True)
            machine["whole_package"] = whole
        video = make_video(Path(tmp) / "calib.mp4", frames=args.images + HELDOUT, size=(640, 480), seed=3)
        for name in args.models.split(",") if args.stages else []:
            row = bench_model(name, video=video, images=args.images, methods=args.methods.split(","),
                              work=Path(tmp) / name)
            rows.append(row)
            print(json.dumps(row), flush=True)
    machine["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print("\nmachine:", json.dumps(machine))
    if not rows:
        return 0
    keys = [k for k in rows[0] if k.endswith("_s") or k in ("fp32_infer_ms", "calibrate_minmax_per_forward",
                                                            "ratio_to_target")]
    print("| model | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for row in rows:
        print(f"| {row['model']} ({row['source']}, {row['imgsz']}) | " + " | ".join(str(row.get(k)) for k in keys) + " |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
