#!/usr/bin/env python3
"""Pipeline benchmarks, measured side by side in one run (figures and ratios printed, JSON optional).

  efficiency   end-to-end pipeline FPS / backend-only FPS (model.infer_batch on frames already in
               memory, same model object, input shape, batch and file). Target >= 0.90. Also the
               CPU time per frame of each side (process_time), whose ratio does not depend on how
               much of a shared machine the process gets.
  ultralytics  end-to-end FPS of `edgeinfer.Pipeline` vs Ultralytics `predict(stream=True)` on the same
               ONNX file, the same video and input size; runs alternate (ours, theirs, ours, ...) and the
               median per side is compared, because the machine is shared. Target >= 1.1x.
  soak         a looping source for N minutes: RSS, thread count and fd count sampled every few seconds;
               after warm-up RSS must stay within +-5% of its post-warm-up median, threads and fds flat.

Usage:
  python scripts/bench_pipeline.py efficiency --model m.onnx --video v.mp4 [--frames 150] [--batch 1]
  python scripts/bench_pipeline.py ultralytics --model yolo11n-320.onnx --video v640x480.mp4 --imgsz 320 [--repeats 3]
  python scripts/bench_pipeline.py soak --model m.onnx --video v.mp4 --soak-minutes 30 [--sample-s 5]
  add --json PATH to any of them to keep the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine import machine_line  # noqa: E402  (scripts/ is sys.path[0])

import edgeinfer  # noqa: E402
from edgeinfer.pipeline.bench import video_frames  # noqa: E402
from edgeinfer.pipeline.pipeline import Pipeline  # noqa: E402


def machine() -> str:
    return machine_line()


def load_model(path: str, *, conf: float, iou: float, threads: int = 0):
    return edgeinfer.load(path, backend="onnxruntime", device="cpu", conf=conf, iou=iou, warmup=3, intra_op_threads=threads)


def load_models(args):
    """One model, or ``--instances N`` models (each ``--intra-op-threads`` threads) pulling from one queue."""
    models = [load_model(args.model, conf=args.conf, iou=args.iou, threads=args.intra_op_threads) for _ in range(args.instances)]
    return models[0] if len(models) == 1 else models


def close_models(model) -> None:
    for m in model if isinstance(model, list) else [model]:
        m.close()


def backend_only_fps(model, frames, *, batch: int, cpu: Optional[list] = None) -> float:
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(frames), batch):
        model.infer_batch(frames[i:i + batch])
    if cpu is not None:
        cpu.append((time.process_time() - c0) / len(frames))
    return len(frames) / (time.perf_counter() - t0)


def pipeline_fps(model, video: str, *, frames: int, batch: int, cpu: Optional[list] = None) -> float:
    c0 = time.process_time()
    with Pipeline(model, sources=[video], batch=batch, max_delay_ms=2.0, max_frames=frames, telemetry=None) as p:
        count = 0
        t0 = None
        for _ in p:
            if t0 is None:
                t0 = time.perf_counter()  # from the first result: start-up (open, first decode) excluded on both sides
            count += 1
        elapsed = time.perf_counter() - t0
    if cpu is not None:
        cpu.append((time.process_time() - c0) / count)  # includes decoding, queues, re-ordering, stats
    return (count - 1) / elapsed


def cmd_efficiency(args) -> dict:
    model = load_model(args.model, conf=args.conf, iou=args.iou, threads=args.intra_op_threads)
    frames = video_frames(args.video, args.frames)
    pipeline_fps(model, args.video, frames=min(10, len(frames)), batch=args.batch)  # warm-up
    runs = []
    for rep in range(args.repeats):
        # Alternate which side goes first: on a shared machine the load drifts between runs.
        order = ("backend", "pipeline") if rep % 2 == 0 else ("pipeline", "backend")
        fps, cpu = {}, {"backend": [], "pipeline": []}
        for side in order:
            if side == "backend":
                fps[side] = backend_only_fps(model, frames, batch=args.batch, cpu=cpu[side])
            else:
                fps[side] = pipeline_fps(model, args.video, frames=len(frames), batch=args.batch, cpu=cpu[side])
        cb, cp = cpu["backend"][0] * 1000, cpu["pipeline"][0] * 1000
        runs.append({"backend_fps": round(fps["backend"], 2), "pipeline_fps": round(fps["pipeline"], 2),
                     "efficiency": round(fps["pipeline"] / fps["backend"], 3),
                     "backend_cpu_ms_per_frame": round(cb, 2), "pipeline_cpu_ms_per_frame": round(cp, 2),
                     "cpu_efficiency": round(cb / cp, 3)})
        print(f"backend-only {fps['backend']:7.2f} FPS ({cb:.1f} CPU-ms/frame) | pipeline end-to-end {fps['pipeline']:7.2f} FPS "
              f"({cp:.1f} CPU-ms/frame) | efficiency {fps['pipeline'] / fps['backend']:.3f}, CPU-time efficiency {cb / cp:.3f}")
    model.close()
    b = statistics.median(r["backend_fps"] for r in runs)
    e = statistics.median(r["pipeline_fps"] for r in runs)
    ce = statistics.median(r["cpu_efficiency"] for r in runs)
    print(f"median backend-only {b:.2f} FPS, median pipeline {e:.2f} FPS -> efficiency {e / b:.3f} (target >= 0.90); "
          f"CPU-time efficiency (backend CPU/frame / pipeline CPU/frame, load-independent) median {ce:.3f}; {len(runs)} runs; "
          f"frames {frames[0].shape} x {len(frames)}, batch {args.batch}")
    return {"runs": runs, "efficiency": round(e / b, 3), "cpu_efficiency": ce, "median_backend_fps": b,
            "median_pipeline_fps": e, "frames": len(frames), "frame_shape": list(frames[0].shape), "batch": args.batch}


def ultralytics_fps(model_path: str, video: str, *, imgsz: int, conf: float, iou: float, frames: int) -> float:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    yolo = YOLO(model_path, task="detect")
    count, t0 = 0, None
    for _ in yolo.predict(source=video, stream=True, imgsz=imgsz, conf=conf, iou=iou, max_det=300, verbose=False, device="cpu"):
        if t0 is None:
            t0 = time.perf_counter()
        count += 1
        if count >= frames:
            break
    return (count - 1) / (time.perf_counter() - t0)


def cmd_ultralytics(args) -> dict:
    model = load_models(args)
    ultralytics_fps(args.model, args.video, imgsz=args.imgsz, conf=args.conf, iou=args.iou, frames=5)  # warm-up
    ours, theirs = [], []
    for rep in range(args.repeats):
        # Alternate which side goes first: on a shared machine the load drifts between runs.
        for side in (("ours", "theirs") if rep % 2 == 0 else ("theirs", "ours")):
            if side == "ours":
                ours.append(pipeline_fps(model, args.video, frames=args.frames, batch=1))
            else:
                theirs.append(ultralytics_fps(args.model, args.video, imgsz=args.imgsz, conf=args.conf, iou=args.iou,
                                              frames=args.frames))
        print(f"edgeinfer {ours[-1]:7.2f} FPS | ultralytics predict(stream=True) {theirs[-1]:7.2f} FPS | ratio {ours[-1] / theirs[-1]:.2f}")
    close_models(model)
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"median: edgeinfer {statistics.median(ours):.2f} FPS vs ultralytics {statistics.median(theirs):.2f} FPS -> {ratio:.2f}x "
          f"(target >= 1.1x); imgsz {args.imgsz}, {args.frames} frames, edgeinfer instances {args.instances} "
          f"x intra-op threads {args.intra_op_threads or 'default'}")
    return {"instances": args.instances, "intra_op_threads": args.intra_op_threads, "edgeinfer_fps": [round(v, 2) for v in ours], "ultralytics_fps": [round(v, 2) for v in theirs], "ratio": round(ratio, 3),
            "imgsz": args.imgsz, "frames": args.frames}


def _proc_sample() -> dict:
    rss_kb = 0
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return {"rss_mb": round(rss_kb / 1024.0, 2), "threads": len(os.listdir("/proc/self/task")),
            "fds": len(os.listdir("/proc/self/fd")), "py_threads": threading.active_count()}


def cmd_soak(args) -> dict:
    model = load_model(args.model, conf=args.conf, iou=args.iou)
    samples = []
    duration = args.soak_minutes * 60.0
    with Pipeline(model, sources=[args.video], loop=True, sink="null://", batch=args.batch, telemetry="auto",
                  collect_results=False) as p:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < duration:
            time.sleep(args.sample_s)
            s = _proc_sample()
            st = p.stats()
            s.update({"t_s": round(time.perf_counter() - t0, 1), "frames": st["frames_out"], "fps": st["fps"]})
            samples.append(s)
            print(f"t={s['t_s']:7.1f}s rss={s['rss_mb']:8.2f} MB threads={s['threads']} fds={s['fds']} frames={s['frames']} fps={s['fps']}")
        final = p.stats()
    model.close()
    warm = [s for s in samples if s["t_s"] >= min(args.warmup_s, duration / 3)]
    rss = [s["rss_mb"] for s in warm]
    med = statistics.median(rss)
    spread = (max(rss) - med) / med, (min(rss) - med) / med
    threads = sorted({s["threads"] for s in warm})
    fds = sorted({s["fds"] for s in warm})
    ok = max(abs(spread[0]), abs(spread[1])) <= 0.05 and len(threads) == 1 and len(fds) == 1
    print(f"soak {args.soak_minutes} min: {final['frames_out']} frames, RSS after warm-up median {med:.1f} MB "
          f"(+{spread[0] * 100:.2f}% / {spread[1] * 100:.2f}%), threads {threads}, fds {fds} -> {'FLAT' if ok else 'NOT FLAT'}")
    return {"minutes": args.soak_minutes, "frames": final["frames_out"], "rss_median_mb": med, "rss_spread": spread,
            "threads": threads, "fds": fds, "flat": ok, "samples": samples, "drops": final["drops"]["total"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["efficiency", "ultralytics", "soak"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--video", required=True)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--soak-minutes", type=float, default=30.0)
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--warmup-s", type=float, default=60.0)
    ap.add_argument("--instances", type=int, default=1, help="edgeinfer engine instances (ultralytics mode)")
    ap.add_argument("--intra-op-threads", type=int, default=0, help="ONNX Runtime threads per instance (0: default)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    print(machine())
    result = {"cmd": args.mode, "machine": machine(), **{"ultralytics": cmd_ultralytics, "efficiency": cmd_efficiency,
                                                         "soak": cmd_soak}[args.mode](args)}
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(result, fh, indent=2)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
