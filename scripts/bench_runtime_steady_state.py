#!/usr/bin/env python3
"""Benchmark (d): steady-state memory of ``model(frame)`` on the ONNX Runtime backend, static AND dynamic shapes.

For each model, after a warm-up, tracemalloc over N frames: memory still held at the end that was not before
(growth; target: none) split into what ONNX Runtime's own ``session.run`` keeps (it warms internal caches for a
while) and what everything else keeps (edgeinfer's per-frame path: target 0), plus the largest transient
allocated inside one call (target: < 64 KiB per frame outside the preallocated buffers). Frames cycle through
three sizes, so a dynamic-shape model's input rectangle changes from call to call (the case that once built a
new OrtValue per frame) and the letterbox scratch and the NMS are exercised.

Exits 1 when the growth outside ONNX Runtime's run exceeds 1 KiB + ``--max-bytes-per-frame`` (default 1) per
frame, or the whole growth 1 KiB + ``--max-total-bytes-per-frame`` (default 16) per frame, on any model.

Usage:
    python scripts/bench_runtime_steady_state.py                 # YOLOv8n from its YAML (random weights), static + dynamic
    python scripts/bench_runtime_steady_state.py A.onnx B.onnx --frames 2000
"""
from __future__ import annotations

import argparse
import gc
import linecache
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_line  # noqa: E402

import edgeinfer  # noqa: E402

ALLOWANCE = 1024


def _frames() -> list:
    """Three frame sizes; demo scenes (shapes the demo model detects) pasted in when available."""
    rng = np.random.default_rng(0)
    frames = [np.full(shape, 90, np.uint8) for shape in [(480, 640, 3), (720, 1280, 3), (640, 640, 3)]]
    try:
        from edgeinfer.demo import render_scene
    except ImportError:
        return [rng.integers(0, 256, f.shape, dtype=np.uint8) for f in frames]
    for i, frame in enumerate(frames):
        scene, _ = render_scene([1, 2, i], imgsz=320)
        frame[40:360, 60:380] = scene
    return frames


def _export_yolov8n(workdir: Path, imgsz: int) -> list:
    """yolov8n.yaml (ships inside Ultralytics: random weights, offline) exported static and dynamic."""
    from edgeinfer.model.ultralytics_export import offline_ultralytics_env

    os.environ.update(offline_ultralytics_env(workdir / "ultralytics", base={}))
    from ultralytics import YOLO

    out = []
    for dynamic in (False, True):
        path = Path(YOLO("yolov8n.yaml").export(format="onnx", imgsz=imgsz, opset=17, dynamic=dynamic, verbose=False))
        target = workdir / f"yolov8n-{'dynamic' if dynamic else 'static'}-{imgsz}.onnx"
        path.replace(target)
        out.append(target)
    return out


def _inside_ort_run(diff: tracemalloc.StatisticDiff) -> bool:
    return any("run_with_iobinding" in linecache.getline(f.filename, f.lineno) for f in diff.traceback)


def measure(path: Path, frames: list, *, n: int, warmup: int, conf: float, threads: int) -> dict:
    model = edgeinfer.load(path, device="cpu", conf=conf, warmup=0, intra_op_threads=threads)
    try:
        for i in range(warmup):  # every frame size's scratch, geometry and input buffer made
            model(frames[i % len(frames)])
        tracemalloc.start(12)
        gc.collect()
        first = tracemalloc.take_snapshot()
        base = tracemalloc.get_traced_memory()[0]
        worst = dets = 0
        t0 = time.perf_counter()
        for i in range(n):
            before = tracemalloc.get_traced_memory()[0]
            if hasattr(tracemalloc, "reset_peak"):  # Python 3.9+; on 3.8 the peak is the run's high-water mark
                tracemalloc.reset_peak()  # novm
            result = model(frames[i % len(frames)])
            worst = max(worst, tracemalloc.get_traced_memory()[1] - before)
            dets += len(result)
            del result
        elapsed = time.perf_counter() - t0
        gc.collect()  # uncollected garbage is not growth
        growth = tracemalloc.get_traced_memory()[0] - base
        diff = tracemalloc.take_snapshot().compare_to(first, "traceback")
        tracemalloc.stop()
        ours = [d for d in diff if not _inside_ort_run(d)
                and not any(f.filename == tracemalloc.__file__ for f in d.traceback)]
        return {"name": path.name, "dynamic": not model.backend.inputs[0].is_static, "fps": n / elapsed,
                "dets": dets / n, "growth": growth, "ours": sum(d.size_diff for d in ours), "worst": worst,
                "top": ["\n".join([str(d)] + d.traceback.format()[-4:]) for d in ours[:2] if d.size_diff > 0]}
    finally:
        model.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="ONNX files (default: YOLOv8n static + dynamic from its YAML)")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=300, help="frames before tracing (ONNX Runtime warms caches)")
    ap.add_argument("--imgsz", type=int, default=320, help="export size for the default models")
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--max-bytes-per-frame", type=float, default=1.0)
    ap.add_argument("--max-total-bytes-per-frame", type=float, default=16.0)
    args = ap.parse_args()
    print(machine_line())
    load_before = os.getloadavg()
    frames = _frames()
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-steady-") as tmp:
        models = [Path(m) for m in args.models] or _export_yolov8n(Path(tmp), args.imgsz)
        for path in models:
            r = measure(path, frames, n=args.frames, warmup=args.warmup, conf=args.conf, threads=args.threads)
            ours, total = r["ours"] / args.frames, r["growth"] / args.frames
            # a fixed 1 KiB for what the measurement itself and numpy's small caches leave; the rest is per frame
            bad = (r["ours"] > ALLOWANCE + args.max_bytes_per_frame * args.frames
                   or r["growth"] > ALLOWANCE + args.max_total_bytes_per_frame * args.frames)
            failed |= bad
            print(f"{r['name']} ({'dynamic' if r['dynamic'] else 'static'} input): {args.frames} frames, "
                  f"{r['fps']:.1f} fps under tracemalloc, {r['dets']:.1f} detections/frame")
            print(f"  growth outside ONNX Runtime's run: {r['ours']} B ({ours:.2f} B/frame, max "
                  f"{args.max_bytes_per_frame}); in all: {r['growth']} B ({total:.2f} B/frame, max "
                  f"{args.max_total_bytes_per_frame}) -> {'FAIL' if bad else 'ok'}")
            print(f"  largest allocation peak inside one call: {r['worst'] / 1024:.1f} KiB (target < 64 KiB)")
            for line in r["top"] if bad else []:
                print("  held by: " + line.replace("\n", "\n    "))
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
