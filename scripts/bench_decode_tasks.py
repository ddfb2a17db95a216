#!/usr/bin/env python3
"""Decode cost per frame, segmentation and pose: edgeinfer's numpy decoders vs Ultralytics' own
post-processing (its ``non_max_suppression`` + ``process_mask`` / ``process_mask_native`` /
``scale_boxes`` / ``scale_coords``, torch on CPU) on the very same raw ONNX outputs. The forward pass
runs once per frame outside the timers. Target: ours <= 1/2 of Ultralytics' time.

Masks: ours are built at frame resolution (one crop per object), which is what Ultralytics'
``retina_masks=True`` gives; its default masks are at the model's input size and are also timed.

Usage: python scripts/bench_decode_tasks.py [--seg M-seg.onnx --pose M-pose.onnx] [--frames 30] [--size 720x1280]
Without model paths, YOLO11n-seg/-pose are built from Ultralytics' YAMLs (tests/runtime/task_models.py).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

from _machine import machine_line  # noqa: E402

import edgeinfer  # noqa: E402


def _best(fn, reps):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _raw(model, frame):
    """The model's raw outputs for a frame and the frame's letterbox transform (our pre-processing)."""
    geo = model._pre.geometry(frame.shape[:2])
    buf = model.backend.input_buffer(shape=None)
    t = model._pre(frame, out=buf[0])
    outs = model.backend.infer()
    return [outs[o.name].copy() for o in model.backend.outputs], t, geo


def _u_seg(*, outs, in_hw, shape, conf, nc, native=False):
    """Ultralytics' SegmentationPredictor post-processing, op for op."""
    import torch
    from ultralytics.utils import nms, ops

    p = nms.non_max_suppression(torch.from_numpy(outs[0]).clone(), conf, 0.45, nc=nc)[0]
    proto = torch.from_numpy(outs[1])[0]
    if native:
        p[:, :4] = ops.scale_boxes(in_hw, p[:, :4], shape)
        return ops.process_mask_native(proto, p[:, 6:], p[:, :4], shape[:2])
    m = ops.process_mask(proto, p[:, 6:], p[:, :4], in_hw, upsample=True)
    p[:, :4] = ops.scale_boxes(in_hw, p[:, :4], shape)
    return m


def _u_pose(*, outs, in_hw, shape, conf, nc):
    """Ultralytics' PosePredictor post-processing, op for op."""
    import torch
    from ultralytics.utils import nms, ops

    p = nms.non_max_suppression(torch.from_numpy(outs[0]).clone(), conf, 0.45, nc=nc)[0]
    p[:, :4] = ops.scale_boxes(in_hw, p[:, :4], shape)
    return ops.scale_coords(in_hw, p[:, 6:].view(len(p), 17, 3), shape)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seg")
    ap.add_argument("--pose")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--size", default="720x1280")
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    if not (args.seg and args.pose):
        from task_models import export_all

        found = export_all(Path(tempfile.mkdtemp()), ["yolo11n-seg.yaml", "yolo11n-pose.yaml"], imgsz=640)
        args.seg, args.pose = str(found["yolo11n-seg.yaml"]), str(found["yolo11n-pose.yaml"])
    h, w = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.frames)]
    print(machine_line())
    load0 = os.getloadavg()[0]
    print(f"frames {w}x{h}, conf {args.conf}, best of {args.reps} per frame, median over {args.frames} frames; "
          f"torch threads 1, numpy/BLAS default")
    for task, path in (("segment", args.seg), ("pose", args.pose)):
        model = edgeinfer.load(path, device="cpu", conf=args.conf, warmup=1)
        post = model._post
        ours, ultra, ultra_native, counts = [], [], [], []
        for frame in frames:
            outs, t, _ = _raw(model, frame)
            ours.append(_best(partial(post, outs, [t]), args.reps))
            counts.append(len(post(outs, [t])[0]))
            kw = dict(outs=outs, in_hw=t.dst_hw, shape=frame.shape, conf=args.conf, nc=len(model.names))
            if task == "segment":
                ultra.append(_best(partial(_u_seg, **kw), args.reps))
                ultra_native.append(_best(partial(_u_seg, native=True, **kw), args.reps))
            else:
                ultra.append(_best(partial(_u_pose, **kw), args.reps))
        model.close()
        a, b = statistics.median(ours) * 1e3, statistics.median(ultra) * 1e3
        line = (f"{task:>8}: edgeinfer {a:7.2f} ms | ultralytics {b:7.2f} ms (ratio {a / b:.2f})")
        if ultra_native:
            c = statistics.median(ultra_native) * 1e3
            line += f" | ultralytics retina_masks {c:7.2f} ms (ratio {a / c:.2f})"
        print(line + f" | objects/frame median {statistics.median(counts):.0f}")
    print(f"load average before {load0:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
