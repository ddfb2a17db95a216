#!/usr/bin/env python3
"""Tracking benchmark: edgeinfer's ByteTrack vs Ultralytics' BYTETracker, fed the very same detections.

1. Cost per frame at 10 / 50 / 200 objects (target: <= 0.5 ms at 50 on a 2-core host), median of
   per-frame CPU times (thread time, so other processes on a shared host do not count) over a
   generated scene, both trackers side by side in one run.
2. Accuracy on generated scenes with ground-truth tracks (crossings, occlusions with low-score or
   missed boxes; tests/analytics/scenes.py): MOTA, IDF1 and ID switches with motmetrics, per seed and
   in total, for both trackers.

Usage: python scripts/bench_tracking.py [--frames 300] [--seeds 0,1,2,3,4]
Needs ultralytics (host venv) for the comparison and motmetrics for the scores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "analytics"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_line  # noqa: E402
from scenes import make_scene, score  # noqa: E402

from edgeinfer.analytics import ByteTracker  # noqa: E402
from edgeinfer.analytics.matching import solver  # noqa: E402
from edgeinfer.runtime.detections import Detections  # noqa: E402


class _UltraDets:
    """What Ultralytics' BYTETracker.update reads: conf, cls, xywh, boolean indexing."""

    def __init__(self, xyxy, conf, cls):
        self.xyxy = np.asarray(xyxy, np.float32)
        self.conf, self.cls = np.asarray(conf, np.float32), np.asarray(cls, np.float32)
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        self.xywh = np.concatenate([self.xyxy[:, :2] + wh / 2, wh], axis=1)

    def __len__(self):
        return len(self.conf)

    def __getitem__(self, i):
        return _UltraDets(self.xyxy[i], self.conf[i], self.cls[i])


def _ultra_tracker():
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    cfg = IterableSimpleNamespace(**YAML.load(check_yaml("bytetrack.yaml")))
    return BYTETracker(cfg)


def run_ours(dets, frame_rate=30):
    t = ByteTracker(frame_rate=frame_rate)
    out, times = [], []
    for boxes, scores, cls in dets:
        d = Detections(boxes, scores, cls)
        t0 = time.thread_time()
        r = t.update(d)
        times.append(time.thread_time() - t0)
        out.append((r.track_id, r.xyxy))
    return out, times


def run_ultra(dets):
    t = _ultra_tracker()
    out, times = [], []
    for boxes, scores, cls in dets:
        d = _UltraDets(boxes, scores, cls)
        t0 = time.thread_time()
        r = t.update(d)
        times.append(time.thread_time() - t0)
        out.append((r[:, 4].astype(int) if len(r) else np.zeros(0, int), r[:, :4] if len(r) else np.zeros((0, 4))))
    return out, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    args = ap.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    print(machine_line())
    print(f"assignment solver: {solver()}")
    load0 = os.getloadavg()
    # CPU time of this thread (time.thread_time), not wall time: on a shared, loaded host the wall clock
    # mostly measures the other processes; BLAS is single-threaded at these sizes.
    print("\n== cost per frame (median CPU ms of the calling thread; same detections to both) ==")
    print(f"{'objects':>8} {'edgeinfer':>10} {'ultralytics':>12} {'ratio':>6}")
    for n in (10, 50, 200):
        _, dets = make_scene(objects=n, frames=args.frames, size=(1920, 1080), seed=0, box=(30, 70))
        _, ours = run_ours(dets)
        _, ultra = run_ultra(dets)
        a, b = statistics.median(ours[10:]) * 1e3, statistics.median(ultra[10:]) * 1e3
        print(f"{n:>8} {a:>10.3f} {b:>12.3f} {a / b:>6.2f}")
    print("\n== accuracy (motmetrics) on generated scenes with crossings and occlusions ==")
    print(f"{'seed':>4} | {'MOTA':>6} {'IDF1':>6} {'IDsw':>5} (edgeinfer) | {'MOTA':>6} {'IDF1':>6} {'IDsw':>5} (ultralytics)")
    tot = {"ours": [], "ultra": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
        gt, dets = make_scene(objects=12, frames=args.frames, seed=seed)
        a = score(gt, run_ours(dets)[0])
        b = score(gt, run_ultra(dets)[0])
        tot["ours"].append(a)
        tot["ultra"].append(b)
        print(f"{seed:>4} | {a['mota']:>6.3f} {a['idf1']:>6.3f} {a['id_switches']:>5}             | "
              f"{b['mota']:>6.3f} {b['idf1']:>6.3f} {b['id_switches']:>5}")
    for name, rows in tot.items():
        print(f"mean {name:>11}: MOTA {statistics.mean(r['mota'] for r in rows):.3f}  "
              f"IDF1 {statistics.mean(r['idf1'] for r in rows):.3f}  IDsw {sum(r['id_switches'] for r in rows)}")
    print(f"\nload average before {load0[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
