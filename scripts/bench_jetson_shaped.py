#!/usr/bin/env python3
"""Jetson-shaped pipeline benchmark: edgeinfer's Pipeline vs Ultralytics predict(stream=True), same stand-in accelerator.

On a Jetson the engine runs on the GPU/DLA while a few Arm cores decode, pre- and post-process. Here the engine
is a stand-in of known latency (edgeinfer.runtime.standin.StandInEngine): after ONE real ONNX Runtime call on the
real model, every inference takes ``--engine-ms`` of device time and returns that first output; waiting for it
sleeps with the GIL released, as a CUDA sync does. Decode (OpenCV, a real 640x480 video), pre-processing,
post-processing (NMS) and threads are real on both sides.

  edgeinfer    edgeinfer.load(model) with its backend wrapped by the stand-in, Pipeline(..., batch=1). The stand-in
               is asynchronous like TensorRT on a CUDA stream (submit returns at once, runs queue back to back on
               the device, wait sleeps until the run's end), so the pipeline can queue frame N+1 behind N;
               ``--sync-engine`` makes it synchronous (each call sleeps engine_ms), as in the 0.2 measurements.
  ultralytics  YOLO(model).predict(source=video, stream=True, imgsz=...) with the same stand-in, synchronous (its
               loop makes one blocking engine call per frame, as its TensorRT path's execute_v2 does), patched into
               its ONNX Runtime session (AutoBackend -> ONNXBackend.session.run)

Each core count runs in a child re-executed under ``taskset -c 0..N-1``; inside, the sides alternate
(ours, theirs, theirs, ours, ...) for ``--repeats`` runs each, and the median and spread (min..max) per side are
reported with the load average before and after. Efficiency = end-to-end FPS / (1000 / engine_ms): 1.0 means
the engine never waits for the CPU. For edgeinfer the stand-in also reports the share of runs that were queued
behind the previous one (the device went straight on to the next frame). Targets (3.4 ms engine): 2 cores >= 0.95 and >= 1.8x Ultralytics;
4 cores >= 0.97.

``--engine-ms 0`` runs the real ONNX Runtime engine instead (CPU inference), with ``--intra-op 1,2,0`` to
measure how many ONNX Runtime threads to give the engine next to the decode/pre/post threads.

Model: a real YOLOv8n export, NudeNet's ``320n.onnx`` from the ``nudenet`` wheel (default), or ``--model``.
Video: made with ``edgeinfer.demo.make_video`` (640x480, 300 frames) unless ``--video`` is given.

Usage:
  python scripts/bench_jetson_shaped.py [--cores 2,4] [--engine-ms 3.4,8] [--repeats 5] [--frames 300]
  python scripts/bench_jetson_shaped.py --cores 2 --engine-ms 0 --intra-op 1,2,0 --sides edgeinfer
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def default_model() -> str:
    import nudenet  # the wheel ships the ONNX file

    return str(Path(nudenet.__file__).parent / "320n.onnx")


class StandInSession:
    """Ultralytics' ONNX Runtime session with the same stand-in: one real ``run``, then sleep and that output."""

    def __init__(self, session: Any, engine_s: float) -> None:
        self._s, self._engine_s, self._first = session, engine_s, None
        self.waits: List[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)

    def run(self, output_names: Any, feed: Any, *args: Any) -> Any:
        if self._first is None:
            self._first = self._s.run(output_names, feed, *args)
        t0 = time.perf_counter()
        time.sleep(self._engine_s)
        self.waits.append(time.perf_counter() - t0)
        return self._first


def run_edgeinfer(args: argparse.Namespace, engine_ms: float, intra_op: int = 0) -> Dict[str, float]:
    import edgeinfer
    from edgeinfer.pipeline.pipeline import Pipeline
    from edgeinfer.runtime.standin import StandInEngine

    model = edgeinfer.load(args.model, backend="onnxruntime", device="cpu", warmup=1, intra_op_threads=intra_op,
                           conf=0.25, iou=0.45)

    stand_in = None
    if engine_ms > 0:
        stand_in = model.backend = StandInEngine(model.backend, engine_ms=engine_ms, asynchronous=not args.sync_engine)
    try:
        with Pipeline(model, sources=[args.video], batch=1, max_frames=args.frames, telemetry=None,
                      overlap=not args.serial) as p:
            count, t0, last = 0, None, 0.0
            for _ in p:
                last = time.perf_counter()
                if t0 is None:
                    t0 = last  # from the first result: open and first decode excluded on both sides
                count += 1
            elapsed = last - t0  # to the last result, as on the other side (not to the end of the stream's clean-up)
    finally:
        model.close()
    out = {"fps": (count - 1) / elapsed, "frames": count}
    if stand_in is not None and stand_in.jobs:
        # what one engine run really cost the pipeline: its device time plus how late the waiting thread woke
        out["engine_ms_measured"] = engine_ms + statistics.mean(stand_in.late_ms[1:] or stand_in.late_ms)
        out["queued_behind"] = stand_in.queued_behind / stand_in.jobs
    return out


def run_ultralytics(args: argparse.Namespace, engine_ms: float) -> Dict[str, float]:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    yolo = YOLO(args.model, task="detect")
    kw = dict(imgsz=args.imgsz, conf=0.25, iou=0.45, max_det=300, verbose=False, device="cpu")
    for _ in yolo.predict(source=args.video, stream=True, **kw):  # builds the predictor and AutoBackend
        break
    stand_in = None
    if engine_ms > 0:
        backend = yolo.predictor.model.backend
        stand_in = backend.session = StandInSession(backend.session, engine_ms / 1000.0)
    count, t0 = 0, None
    for _ in yolo.predict(source=args.video, stream=True, **kw):
        if t0 is None:
            t0 = time.perf_counter()
        count += 1
        if count >= args.frames:
            break
    out = {"fps": (count - 1) / (time.perf_counter() - t0), "frames": count}
    if stand_in is not None and stand_in.waits:
        out["engine_ms_measured"] = 1000 * statistics.mean(stand_in.waits[1:])
    return out


def summary(values: List[float]) -> Dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def child(args: argparse.Namespace) -> Dict[str, Any]:
    """One core count (already under taskset): every engine time, sides alternating."""
    import cv2

    if args.switch_interval_ms > 0:
        sys.setswitchinterval(args.switch_interval_ms / 1000.0)
    if args.timer_slack_us > 0:
        import ctypes

        ctypes.CDLL(None).prctl(29, args.timer_slack_us * 1000, 0, 0, 0)  # PR_SET_TIMERSLACK, in ns
    cores = len(os.sched_getaffinity(0))
    cv2.setNumThreads(cores)  # what OpenCV would pick for this affinity on both sides
    out: Dict[str, Any] = {"cores": cores, "cv2_threads": cv2.getNumThreads(), "runs": [],
                           "switch_interval_ms": round(sys.getswitchinterval() * 1000, 3),
                           "timer_slack_us": args.timer_slack_us or "default"}
    for engine_ms in args.engine_ms:
        for intra in (args.intra_op if engine_ms <= 0 else [0]):
            fps: Dict[str, List[float]] = {s: [] for s in args.sides}
            measured: Dict[str, List[float]] = {s: [] for s in args.sides}
            queued: List[float] = []
            for rep in range(args.repeats):
                order = args.sides if rep % 2 == 0 else list(reversed(args.sides))
                for side in order:
                    r = run_edgeinfer(args, engine_ms, intra) if side == "edgeinfer" else run_ultralytics(args, engine_ms)
                    fps[side].append(r["fps"])
                    if "engine_ms_measured" in r:
                        measured[side].append(r["engine_ms_measured"])
                    if "queued_behind" in r:
                        queued.append(r["queued_behind"])
            row: Dict[str, Any] = {"engine_ms": engine_ms, "intra_op_threads": intra if engine_ms <= 0 else None}
            for side in args.sides:
                row[side] = summary(fps[side])
                if engine_ms > 0:
                    row[side]["efficiency"] = round(statistics.median(fps[side]) / (1000.0 / engine_ms), 3)
                    row[side]["engine_ms_measured"] = round(statistics.median(measured[side]), 3)
                    # against what a run really took the waiting thread (time.sleep wakes late by the timer slack
                    # and more): the synchronous side pays this every frame; a queued run does not wait for it
                    row[side]["efficiency_vs_measured"] = round(
                        statistics.median(fps[side]) / (1000.0 / row[side]["engine_ms_measured"]), 3)
            if queued:
                row["edgeinfer"]["queued_behind"] = round(statistics.median(queued), 3)
            if len(args.sides) == 2:
                row["ratio"] = round(row["edgeinfer"]["median"] / row["ultralytics"]["median"], 2)
            out["runs"].append(row)
    return out


def print_rows(result: Dict[str, Any]) -> None:
    print(f"-- {result['cores']} cores (taskset), GIL switch interval {result['switch_interval_ms']} ms, "
          f"timer slack {result['timer_slack_us']} us, "
          f"load average before {result['load_before']} after {result['load_after']}")
    for row in result["runs"]:
        engine = f"engine {row['engine_ms']:.1f} ms" if row["engine_ms"] > 0 else \
            f"real ONNX Runtime engine, intra-op threads {row['intra_op_threads'] or 'default'}"
        parts = []
        for side in ("edgeinfer", "ultralytics"):
            if side in row:
                s = row[side]
                eff = ""
                if "queued_behind" in s:  # queued runs: the waiter's late wake-up is off the device's path
                    eff = f", efficiency {s['efficiency']:.3f}, {100 * s['queued_behind']:.1f}% of runs queued behind " \
                          f"the previous one (the waiter woke {s['engine_ms_measured'] - row['engine_ms']:.2f} ms late)"
                elif "efficiency" in s:
                    eff = f", efficiency {s['efficiency']:.3f} (a run ends for its waiter after " \
                          f"{s['engine_ms_measured']:.2f} ms on average: {s['efficiency_vs_measured']:.3f} of that)"
                parts.append(f"{side} {s['median']:.1f} FPS [{s['min']:.1f}..{s['max']:.1f}]{eff}")
        ratio = f" | ratio {row['ratio']:.2f}x" if "ratio" in row else ""
        print(f"  {engine}: " + " | ".join(parts) + ratio)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="YOLO detector ONNX (default: NudeNet's YOLOv8n 320n.onnx)")
    ap.add_argument("--video", default=None, help="video file (default: a 640x480 demo video made now)")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cores", default="2,4", help="comma list of core counts; 'all' for every core")
    ap.add_argument("--engine-ms", default="3.4,8", help="stand-in engine times (0: the real ONNX Runtime engine)")
    ap.add_argument("--intra-op", default="0", help="ONNX Runtime intra-op threads to try with --engine-ms 0")
    ap.add_argument("--sides", default="edgeinfer,ultralytics")
    ap.add_argument("--serial", action="store_true", help="edgeinfer without overlap (pre/engine/post in turn)")
    ap.add_argument("--sync-engine", action="store_true",
                    help="edgeinfer's stand-in synchronous too (each call sleeps engine_ms; no queuing on the device)")
    ap.add_argument("--timer-slack-us", type=int, default=0,
                    help="Linux timer slack for the child (both sides; 0: the kernel's default, 50 us): how late the "
                         "stand-in's sleep may wake")
    ap.add_argument("--switch-interval-ms", type=float, default=0.0,
                    help="sys.setswitchinterval for both sides (0: Python's default, 5 ms)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.engine_ms = [float(v) for v in str(args.engine_ms).split(",")]
    args.intra_op = [int(v) for v in str(args.intra_op).split(",")]
    args.sides = [s for s in args.sides.split(",") if s]
    if args.child:
        print("JSON " + json.dumps(child(args)), flush=True)
        return
    from _machine import machine_line

    args.model = args.model or default_model()
    tmp = None
    if not args.video:
        from edgeinfer.demo.video import make_video

        tmp = tempfile.TemporaryDirectory()
        args.video = str(make_video(Path(tmp.name) / "shapes-640x480.mp4", frames=args.frames, size=(640, 480), seed=0))
    total = os.cpu_count() or 1
    counts = [total if c == "all" else int(c) for c in args.cores.split(",")]
    print(machine_line())
    print(f"model {Path(args.model).name}, imgsz {args.imgsz}, video {Path(args.video).name}, {args.frames} frames, "
          f"{args.repeats} runs per side, sides alternate; efficiency = FPS / (1000 / engine_ms); edgeinfer's "
          f"stand-in {'synchronous' if args.sync_engine else 'asynchronous (CUDA-stream-like)'}, Ultralytics' synchronous")
    results = []
    for n in counts:
        if n > total:
            print(f"-- {n} cores: skipped, this machine has {total}")
            continue
        cmd = ["taskset", "-c", f"0-{n - 1}", sys.executable, __file__, "--child", "--model", args.model, "--video",
               args.video, "--imgsz", str(args.imgsz), "--frames", str(args.frames), "--repeats", str(args.repeats),
               "--engine-ms", ",".join(map(str, args.engine_ms)), "--intra-op", ",".join(map(str, args.intra_op)),
               "--sides", ",".join(args.sides), "--switch-interval-ms", str(args.switch_interval_ms),
               "--timer-slack-us", str(args.timer_slack_us)] + \
            (["--serial"] if args.serial else []) + (["--sync-engine"] if args.sync_engine else [])
        before = [round(v, 2) for v in os.getloadavg()]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        after = [round(v, 2) for v in os.getloadavg()]
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("JSON ")]
        if proc.returncode != 0 or not lines:
            print(f"-- {n} cores: the run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            continue
        result = json.loads(lines[-1][5:])
        result.update(load_before=before, load_after=after)
        print_rows(result)
        results.append(result)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine_line(), "results": results}, indent=1))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
