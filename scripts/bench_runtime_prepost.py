#!/usr/bin/env python3
"""Benchmark (c): our CPU pre + post per frame vs Ultralytics' own pre + post, same model, same frames,
same machine, same thresholds. The model's forward pass runs once per frame outside the timers
(both sides post-process the very same raw output). Target: ours <= 1/3 of Ultralytics' time.

Usage: python scripts/bench_runtime_prepost.py MODEL.onnx [--frames 50] [--conf 0.25] [--size 1080x1920]
Needs ultralytics (host venv); set YOLO_OFFLINE=1 and YOLO_CONFIG_DIR.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edgeinfer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--iou", type=float, default=0.45)
    ap.add_argument("--size", default="1080x1920")
    args = ap.parse_args()
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    h, w = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.frames)]

    model = edgeinfer.load(args.model, device="cpu", conf=args.conf, iou=args.iou, warmup=1)
    imgsz = model.info.imgsz
    buf = model.backend.input_buffer()
    out_name = model.backend.outputs[0].name
    raw = []
    ours_pre, ours_post, counts = [], [], []
    for f in frames:
        t0 = time.perf_counter()
        t = model._pre(f, out=buf[0])
        t1 = time.perf_counter()
        out = model.backend.infer()[out_name]
        raw.append(out.copy())
        t2 = time.perf_counter()
        dets = model._post([out], [t])[0]
        t3 = time.perf_counter()
        ours_pre.append((t1 - t0) * 1e3)
        ours_post.append((t3 - t2) * 1e3)
        counts.append(len(dets))

    yolo = YOLO(args.model, task="detect")
    yolo.predict(frames[0], imgsz=list(imgsz), conf=args.conf, iou=args.iou, verbose=False)  # sets up the predictor
    pred = yolo.predictor
    ul_pre, ul_post, ul_counts = [], [], []
    for f, out in zip(frames, raw):
        t0 = time.perf_counter()
        im = pred.preprocess([f])
        t1 = time.perf_counter()
        preds = torch.from_numpy(out)
        t2 = time.perf_counter()
        res = pred.postprocess(preds, im, [f])
        t3 = time.perf_counter()
        ul_pre.append((t1 - t0) * 1e3)
        ul_post.append((t3 - t2) * 1e3)
        ul_counts.append(len(res[0].boxes))

    med = statistics.median
    ours = med([a + b for a, b in zip(ours_pre, ours_post)])
    theirs = med([a + b for a, b in zip(ul_pre, ul_post)])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; model {Path(args.model).name} "
          f"imgsz {imgsz}; frames {len(frames)} of {w}x{h}; conf {args.conf} iou {args.iou}")
    print(f"detections per frame (median): ours {med(counts)}, ultralytics {med(ul_counts)}; "
          f"equal on {sum(a == b for a, b in zip(counts, ul_counts))}/{len(frames)} frames")
    print(f"{'':12} {'pre ms':>8} {'post ms':>8} {'pre+post':>9}")
    print(f"{'edgeinfer':12} {med(ours_pre):8.3f} {med(ours_post):8.3f} {ours:9.3f}")
    print(f"{'ultralytics':12} {med(ul_pre):8.3f} {med(ul_post):8.3f} {theirs:9.3f}")
    print(f"ratio ours/ultralytics = {ours / theirs:.3f} (target <= 0.333)")


if __name__ == "__main__":
    main()
