#!/usr/bin/env python3
"""Hot-swap benchmark: swap latency (bundle appears in the watched folder -> first frame on the new model),
frames dropped or repeated, and the longest pause between two results around the switch, on a looping video
paced at 30 FPS (inference paced to one frame per 33.3 ms, which is what a 30 FPS camera delivers).

Run:  .venv/bin/python scripts/bench_swap.py --swaps 3
      .venv/bin/python scripts/bench_swap.py --bundle out/shapes.bundle --fps 30 --interval 0.5

Uses the demo model (packaged fp16 here unless --bundle), real ONNX Runtime, real signatures, BundleWatcher
polling the folder. Prints load average before and after: figures from a loaded machine are not claims.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _cli(*args) -> None:
    subprocess.run([sys.executable, "-m", "edgeinfer", *map(str, args)], check=True, capture_output=True, text=True)


def _variant(src: Path, dst: Path, minutes: int, key: Path, staging: Path, *, publish: bool = True) -> Path:
    """A newer signed package of the same model, staged; ``publish`` delivers it by one atomic rename."""
    import datetime

    from edgeinfer.bundle.manifest import MANIFEST_NAME, dump_manifest, load_manifest_text

    work = staging / dst.name
    shutil.copytree(src, work)
    (work / "manifest.sig").unlink(missing_ok=True)
    manifest = load_manifest_text((work / MANIFEST_NAME).read_text(), source=str(work))
    created = datetime.datetime.fromisoformat(manifest["created"]) + datetime.timedelta(minutes=minutes)
    manifest["created"] = created.isoformat()
    (work / MANIFEST_NAME).write_text(dump_manifest(manifest))
    _cli("sign", work, key)
    if publish:
        os.replace(work, dst)
    return work


def _pace(fps: float) -> None:
    """Emulate a camera at ``fps``: each inference call takes at least one frame period."""
    from edgeinfer.runtime.model import Model

    period, original = 1.0 / fps, Model.infer_batch

    def paced(self, frames):
        t0 = time.perf_counter()
        out = original(self, frames)
        rest = period * len(frames) - (time.perf_counter() - t0)
        if rest > 0:
            time.sleep(rest)
        return out

    Model.infer_batch = paced


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=None, help="a bundle to start from (default: package the demo)")
    ap.add_argument("--swaps", type=int, default=3)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--interval", type=float, default=0.5, help="watch poll interval, seconds")
    ap.add_argument("--health-frames", type=int, default=15)
    args = ap.parse_args()

    from edgeinfer.demo.video import make_video
    from edgeinfer.fleet import HealthPolicy
    from edgeinfer.fleet.watch import BundleWatcher
    from edgeinfer.pipeline.pipeline import Pipeline

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-swap-"))
    try:
        _cli("keygen", work / "k")
        base = work / "base.bundle"
        if args.bundle:
            shutil.copytree(args.bundle, base)
        else:
            demo = REPO / "edgeinfer" / "_data" / "demo" / "shapes-yolo11n-320.onnx"
            _cli("package", demo, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", base)
        ota, staging = work / "ota", work / "staging"
        ota.mkdir()
        staging.mkdir()
        _variant(base, ota / "m0.bundle", 0, work / "k.key", staging)
        video = work / "loop.mp4"
        make_video(video, frames=60, size=(640, 480), fps=30)
        _pace(args.fps)

        times, lock = [], threading.Lock()

        def on_result(r):
            with lock:
                times.append((r.frame_index, time.perf_counter(), r.model_id))

        policy = HealthPolicy(frames=args.health_frames, timeout_s=30)
        p = Pipeline(str(ota / "m0.bundle"), sources=[str(video)], loop=True, telemetry=None, on_result=on_result,
                     load_kwargs={"trust": [str(work / "k.pub")]})
        watcher = BundleWatcher(ota, pipeline=p, interval=args.interval, trust=[str(work / "k.pub")], policy=policy)
        watcher.newest_valid()
        rows = []
        with p:
            watcher.start()
            time.sleep(3.0)
            for i in range(1, args.swaps + 1):
                staged = _variant(base, ota / f"m{i}.bundle", i, work / "k.key", staging, publish=False)
                n0 = len(watcher.reports)
                appear = time.perf_counter()
                os.replace(staged, ota / f"m{i}.bundle")  # the OTA tool's atomic rename: the bundle appears
                while len(watcher.reports) == n0:
                    time.sleep(0.01)
                rep = watcher.reports[-1]
                rows.append((rep, appear))
                time.sleep(2.0)
            watcher.stop()
        idx = [t[0] for t in times]
        dropped = len(set(range(max(idx) + 1))) - len(set(idx))
        repeated = len(idx) - len(set(idx))
        gaps = [b[1] - a[1] for a, b in zip(times, times[1:])]
        median_gap = statistics.median(gaps)
        print(f"frames {len(idx)}, dropped {dropped}, repeated {repeated}, median period {median_gap * 1000:.1f} ms "
              f"(target {1000 / args.fps:.1f} ms)")
        print("swap  status     appear->first frame  poll+verify  load+warm  switch->first frame  "
              "max pause around switch")
        lat = []
        for k, (rep, appear) in enumerate(rows, 1):
            first = rep.first_frame_mono
            switch = rep.switch_mono
            near = [g for (a, b), g in zip(zip(times, times[1:]), gaps) if first and abs(b[1] - first) < 1.0]
            total = (first - appear) if first else float("nan")
            lat.append(total)
            verify = (switch - appear - rep.prepare_s) if switch else float("nan")
            print(f"{k:>4}  {rep.status:<9}  {total * 1000:>17.0f} ms  {verify * 1000:>8.0f} ms  "
                  f"{rep.prepare_s * 1000:>6.0f} ms  "
                  f"{((first - switch) if first and switch else float('nan')) * 1000:>17.1f} ms  "
                  f"{max(near) * 1000 if near else float('nan'):>10.1f} ms (median period {median_gap * 1000:.1f} ms)")
        ok = [x for x in lat if x == x]
        if ok:
            print(f"swap latency median {statistics.median(ok) * 1000:.0f} ms, min {min(ok) * 1000:.0f}, "
                  f"max {max(ok) * 1000:.0f} ms over {len(ok)} swaps (poll interval {args.interval} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average before {load_before[0]:.2f} / after {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
