#!/usr/bin/env python3
"""Benchmark (d): steady-state memory of ``model(frame)`` on the ONNX Runtime backend.

tracemalloc over N frames (after warm-up): growth of traced memory from start to end (target:
none) and the largest transient allocated inside one call (target: < 64 KiB per frame outside the
preallocated buffers). Frames cycle through three sizes (demo scenes pasted onto a grey canvas when edgeinfer.demo is
importable) so the letterbox scratch and the NMS are exercised.

Usage: python scripts/bench_runtime_steady_state.py MODEL.onnx [--frames 2000] [--conf 0.25]
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edgeinfer  # noqa: E402


def _frames() -> list:
    """Three frame sizes; demo scenes (shapes the demo model detects) pasted in when available."""
    rng = np.random.default_rng(0)
    frames = [np.full(shape, 90, np.uint8) for shape in [(480, 640, 3), (720, 1280, 3), (1080, 1920, 3)]]
    try:
        from edgeinfer.demo import render_scene
    except ImportError:
        return [rng.integers(0, 256, f.shape, dtype=np.uint8) for f in frames]
    for i, frame in enumerate(frames):
        scene, _ = render_scene([1, 2, i], imgsz=320)
        frame[40:360, 60:380] = scene
    return frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    frames = _frames()
    model = edgeinfer.load(args.model, device="cpu", conf=args.conf, warmup=0, intra_op_threads=args.threads)
    for i in range(30):  # warm-up: every frame size's scratch and geometry cached
        model(frames[i % len(frames)])
    tracemalloc.start()
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    half = base
    worst, dets = 0, 0
    t0 = time.perf_counter()
    for i in range(args.frames):
        before = tracemalloc.get_traced_memory()[0]
        if hasattr(tracemalloc, "reset_peak"):  # Python 3.9+; on 3.8 the peak is the run's high-water mark
            tracemalloc.reset_peak()  # novm
        result = model(frames[i % len(frames)])
        worst = max(worst, tracemalloc.get_traced_memory()[1] - before)
        dets += len(result)
        del result
        if i == args.frames // 2:
            gc.collect()
            half = tracemalloc.get_traced_memory()[0]
    elapsed = time.perf_counter() - t0
    gc.collect()  # uncollected garbage is not growth
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"model {Path(args.model).name} via {model.backend_reason}")
    print(f"{args.frames} frames in {elapsed:.1f} s ({args.frames / elapsed:.1f} fps under tracemalloc), "
          f"{dets / args.frames:.1f} detections/frame, {os.cpu_count()} CPUs")
    print(f"traced memory growth over the run: {end - base} bytes; over the second half: {end - half} bytes "
          f"({(end - half) / max(1, args.frames - args.frames // 2 - 1):.2f} B/frame) (target: ~0)")
    print(f"largest allocation peak inside one call: {worst / 1024:.1f} KiB (target < 64 KiB)")
    model.close()


if __name__ == "__main__":
    main()
