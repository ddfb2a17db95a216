#!/usr/bin/env python3
"""Benchmark (d): steady-state memory of ``model(frame)`` on the ONNX Runtime backend.

tracemalloc over N frames (after warm-up): growth of traced memory from start to end (target:
none) and the largest transient allocated inside one call (target: < 64 KiB per frame outside the
preallocated buffers). Frames cycle through a few sizes so the letterbox scratch is exercised.

Usage: python scripts/bench_runtime_steady_state.py MODEL.onnx [--frames 2000] [--conf 0.25]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edgeinfer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(480, 640, 3), (720, 1280, 3), (1080, 1920, 3)]]
    model = edgeinfer.load(args.model, device="cpu", conf=args.conf, warmup=0, intra_op_threads=args.threads)
    for i in range(30):  # warm-up: every frame size's scratch and geometry cached
        model(frames[i % len(frames)])
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    worst, dets = 0, 0
    t0 = time.perf_counter()
    for i in range(args.frames):
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = model(frames[i % len(frames)])
        worst = max(worst, tracemalloc.get_traced_memory()[1] - before)
        dets += len(result)
        del result
    elapsed = time.perf_counter() - t0
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"model {Path(args.model).name} via {model.backend_reason}")
    print(f"{args.frames} frames in {elapsed:.1f} s ({args.frames / elapsed:.1f} fps under tracemalloc), "
          f"{dets / args.frames:.1f} detections/frame, {os.cpu_count()} CPUs")
    print(f"traced memory growth over the run: {end - base} bytes (target: ~0)")
    print(f"largest allocation peak inside one call: {worst / 1024:.1f} KiB (target < 64 KiB)")
    model.close()


if __name__ == "__main__":
    main()
