#!/usr/bin/env python3
"""Soak test: pipeline (demo model, ONNX Runtime, looping video) -> Uplink -> a real HTTP receiver.

Runs for --minutes, with a receiver outage of --outage-s every --outage-every-min minutes (the
receiver process is killed and restarted: the uplink must back off, keep records in its spool and
deliver them afterwards). Every --sample-s seconds it records this process's RSS, open file
descriptors and threads, plus the uplink's counters. At the end it closes the pipeline and the
uplink, waits for delivery and checks:

- nothing lost: records accepted by put() == unique records at the receiver + counted drops (0 expected);
- flat resources: after a warm-up, the last fifth of the samples vs the first fifth: RSS grows less
  than --max-rss-growth-mb, the fd and thread counts do not grow.

Exit 0 when every check holds, 1 otherwise; --json writes the samples and the verdict.

Usage: nice -n 10 .venv/bin/python scripts/soak.py --minutes 30 --json soak.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine import machine_info  # scripts/ is sys.path[0]

RECEIVER = r"""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
keys, lock, total = set(), threading.Lock(), [0]
log = open(sys.argv[2], "a")  # every key, so the count survives this process being killed
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        records = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["records"]
        with lock:
            total[0] += len(records)
            keys.update(r["key"] for r in records)
            log.write("".join(r["key"] + "\n" for r in records)); log.flush()
        self._answer(b"{}")
    def do_GET(self):
        with lock:
            self._answer(json.dumps({"unique": len(keys), "total": total[0]}).encode())
    def _answer(self, body):
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """The receiver in its own process; every key it acknowledged is in ``keys.txt`` (survives its kills)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.script = workdir / "receiver.py"
        self.script.write_text(RECEIVER)
        self.keys = workdir / "keys.txt"
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(self.script), str(self.port), str(self.keys)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.count() is not None:
                return
            time.sleep(0.1)
        raise RuntimeError("receiver did not start")

    def count(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as r:
                return json.loads(r.read())["unique"]
        except OSError:
            return None

    def unique(self) -> int:
        """Distinct keys acknowledged by every receiver process so far (duplicates from resends removed)."""
        return len(set(self.keys.read_text().split())) if self.keys.exists() else 0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None


def sample(up, t0: float) -> dict:
    status = Path("/proc/self/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
    st = up.stats()
    return {"t_s": round(time.monotonic() - t0, 1), "rss_mb": round(rss_kb / 1024, 1),
            "fds": len(os.listdir("/proc/self/fd")), "threads": threading.active_count(),
            "tasks": len(os.listdir("/proc/self/task")), "put": st["put_count"], "queued": st["queued"],
            "sent": st["sent"], "dropped": st["dropped_total"], "state": st["state"], "healthy": st["health"]["ok"]}


def verdict(samples, *, accepted, delivered, dropped, max_rss_growth_mb, warmup_s) -> dict:
    steady = [s for s in samples if s["t_s"] >= warmup_s] or samples
    k = max(1, len(steady) // 5)
    head, tail = steady[:k], steady[-k:]
    rss_growth = statistics.median(s["rss_mb"] for s in tail) - statistics.median(s["rss_mb"] for s in head)
    fd_growth = max(s["fds"] for s in tail) - max(s["fds"] for s in head)
    thread_growth = max(s["tasks"] for s in tail) - max(s["tasks"] for s in head)
    checks = {
        "nothing_lost": delivered == accepted and dropped == 0,
        "rss_flat": rss_growth < max_rss_growth_mb,
        "fds_flat": fd_growth <= 0,
        "threads_flat": thread_growth <= 0,
        "always_healthy": all(s["healthy"] for s in samples),
    }
    return {"ok": all(checks.values()), "checks": checks, "rss_growth_mb": round(rss_growth, 1),
            "fd_growth": fd_growth, "thread_growth": thread_growth, "accepted": accepted,
            "delivered_unique": delivered, "dropped": dropped}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--fps", type=float, default=15.0, help="pace of results into the uplink")
    ap.add_argument("--sample-s", type=float, default=30.0)
    ap.add_argument("--outage-every-min", type=float, default=5.0, help="0: no receiver outages")
    ap.add_argument("--outage-s", type=float, default=20.0)
    ap.add_argument("--warmup-s", type=float, default=120.0)
    ap.add_argument("--max-rss-growth-mb", type=float, default=8.0)
    ap.add_argument("--model", default=None, help="bundle or ONNX (default: the demo ONNX on ONNX Runtime)")
    ap.add_argument("--source", default=None, help="video file or camera URI (default: a generated looping video)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from edgeinfer.demo import demo_model_path, make_video
    from edgeinfer.pipeline.pipeline import Pipeline
    from edgeinfer.uplink import Uplink

    work = Path(tempfile.mkdtemp(prefix="edgeinfer-soak-"))
    video = args.source or str(make_video(work / "soak.mp4", frames=90, size=(320, 240)))
    model = args.model or str(demo_model_path("onnx"))
    receiver = Receiver(work)
    receiver.start()
    load_before = os.getloadavg()
    up = Uplink(f"http://127.0.0.1:{receiver.port}/ingest", spool_dir=work / "spool", backoff_initial=0.2,
                backoff_max=5.0)
    period = 1.0 / args.fps
    next_at = [time.monotonic()]

    def pace(_result) -> None:  # back-pressure on a looping file source: hold the pipeline to --fps
        next_at[0] += period
        delay = next_at[0] - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at[0] = time.monotonic()

    pipe = Pipeline(model, sources=[video], uplink=up, on_result=pace, loop=True,
                    telemetry=None, collect_results=False)
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    samples, outages = [], 0
    next_outage = t0 + args.outage_every_min * 60 if args.outage_every_min > 0 else float("inf")
    pipe.start()
    try:
        while time.monotonic() < end:
            samples.append(sample(up, t0))
            print(json.dumps(samples[-1]), flush=True)
            if time.monotonic() >= next_outage:
                receiver.stop()
                time.sleep(args.outage_s)
                receiver.start()
                outages += 1
                next_outage += args.outage_every_min * 60
            time.sleep(max(0.0, min(args.sample_s, end - time.monotonic())))
        samples.append(sample(up, t0))
    finally:
        pipe.close(raise_error=False)
    deadline = time.monotonic() + 60
    while up.stats()["queued"] and time.monotonic() < deadline:
        time.sleep(0.5)
    final = up.stats()
    up.close()
    receiver.stop()
    delivered = receiver.unique()
    result = verdict(samples, accepted=final["put_count"], delivered=delivered, dropped=final["dropped_total"],
                     max_rss_growth_mb=args.max_rss_growth_mb, warmup_s=args.warmup_s)
    result.update(minutes=args.minutes, fps=args.fps, model=model, source=video, outages=outages,
                  retries=final["retries"],
                  load_before=[round(v, 2) for v in load_before], load_after=[round(v, 2) for v in os.getloadavg()],
                  machine=machine_info())
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"result": result, "samples": samples}, indent=1))
    if result["ok"]:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept the spool and the receiver's key log for inspection in {work}", file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
