"""Load generator for `edgeinfer bench`: batch/delay sweeps and SLA scenarios on the real hub + workers.

Frames arrive on a schedule (open loop) into the same FrameHub, InferWorker and Collector the
Pipeline uses; latency is measured from the *scheduled* arrival to the result, so a backed-up
queue shows up as latency instead of silently slowing the generator (no coordinated omission).

Scenarios: ``single`` (one frame at a time, next after the previous result), ``burst`` (bursts of
2×max_batch frames), ``sustained`` (constant rate at a fraction of the measured capacity).

Example:
    >>> arrivals = schedule("burst", rate=100.0, duration=1.0, burst=8)
    >>> len(arrivals), float(arrivals[8])
    (96, 0.08)
"""
from __future__ import annotations

import statistics
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import BackendError, ConfigError
from ..telemetry.latency import LatencyRecorder
from .frames import FramePool
from .hub import FrameHub
from .infer import Collector, InferWorker

SCENARIOS = ("single", "burst", "sustained")


def schedule(kind: str, *, rate: float, duration: float, burst: int = 8) -> np.ndarray:
    """Arrival offsets in seconds for an open-loop scenario at ``rate`` frames/s on average."""
    n = max(1, int(rate * duration))
    if kind == "sustained":
        return np.arange(n) / rate
    if kind == "burst":
        period = burst / rate
        return np.array([(i // burst) * period for i in range(n - n % burst or burst)])
    raise ConfigError(f"unknown scenario {kind!r}", hint=f"use one of {', '.join(SCENARIOS)}")


def synthetic_frames(n: int = 8, *, size=(640, 480), seed: int = 0) -> List[np.ndarray]:
    """Deterministic BGR frames (coloured rectangles on grey) when no video is given."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        img = np.full((size[1], size[0], 3), 114, np.uint8)
        for _ in range(5):
            x, y = int(rng.integers(0, size[0] - 60)), int(rng.integers(0, size[1] - 60))
            img[y:y + 50, x:x + 50] = rng.integers(0, 255, 3)
        frames.append(img)
    return frames


def video_frames(path: str, n: int = 16) -> List[np.ndarray]:
    from .sources import open_reader
    from .uri import parse_source

    reader = open_reader(parse_source(path))
    try:
        frames = []
        while len(frames) < n:
            f = reader.read()
            if f is None:
                break
            frames.append(f.copy())
    finally:
        reader.close()
    if not frames:
        raise ConfigError(f"no frames in {path!r}", hint="pass a readable video")
    return frames


class _Run:
    def __init__(self, models: Sequence[Any], frames: List[np.ndarray], *, batch: int, max_delay: float, capacity: int) -> None:
        self.hub = FrameHub()
        self.hub.add_source("bench", live=False, capacity=capacity)
        self.pool = FramePool(shape=frames[0].shape, slots=capacity + batch * len(models) + 4)
        self.frames = frames
        self.latency = LatencyRecorder(window=1 << 16)
        self.series: List[tuple] = []  # (arrival offset s, latency s)
        self.done = 0
        self.cond = threading.Condition()
        self.errors: List[BaseException] = []
        self.collector = Collector(self._emit)
        self.workers = [InferWorker(f"i{k}", m, self.hub, self.collector, max_batch=batch, max_delay=max_delay,
                                    fallback=None, on_error=self._fail, on_failover=lambda info: None)
                        for k, m in enumerate(models)]
        self.t0 = 0.0

    def _fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.hub.close()  # wakes a generator blocked on a full queue
        with self.cond:
            self.cond.notify_all()

    def _emit(self, result, ref) -> None:
        now = time.perf_counter()
        lat = now - ref.capture_mono
        self.latency.record(lat)
        self.series.append((ref.capture_mono - self.t0, lat))
        ref.release()
        with self.cond:
            self.done += 1
            self.cond.notify_all()

    def _submit(self, i: int, at: float) -> None:
        ref = self.pool.acquire(timeout=30.0)
        if ref is None:
            raise BackendError("bench: no frame slot came back within 30 s", hint="the model stopped returning results")
        np.copyto(ref.array, self.frames[i % len(self.frames)])
        ref.source_id, ref.index, ref.capture_ts, ref.capture_mono = "bench", i, time.time(), at
        self.hub.put(ref)

    def go(self, arrivals: Optional[np.ndarray], *, closed_loop_n: int = 0) -> Dict[str, Any]:
        for w in self.workers:
            w.start()
        self.t0 = time.perf_counter()
        if arrivals is None:  # closed loop: one in flight at a time
            for i in range(closed_loop_n):
                if self.errors:
                    break
                self._submit(i, time.perf_counter())
                with self.cond:
                    self.cond.wait_for(lambda i=i: self.done > i or bool(self.errors), timeout=30.0)
            total = closed_loop_n
        else:
            for i, offset in enumerate(arrivals):
                if self.errors:
                    break
                at = self.t0 + float(offset)
                delay = at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                self._submit(i, at)
            total = len(arrivals)
        self.hub.source_done("bench")
        with self.cond:
            self.cond.wait_for(lambda: self.done >= total or bool(self.errors), timeout=120.0)
        elapsed = time.perf_counter() - self.t0
        self.hub.close()
        for w in self.workers:
            w.join(5.0)
        if self.errors:
            raise self.errors[0]
        summary = self.latency.summary()
        summary.update({"frames": self.done, "seconds": round(elapsed, 3), "throughput_fps": round(self.done / elapsed, 2),
                        "mean_batch": round(sum(w.frames.value for w in self.workers) / max(1, sum(w.batches.value for w in self.workers)), 3)})
        return summary


def measure(models: Sequence[Any], frames: List[np.ndarray], *, batch: int, max_delay: float,
            arrivals: Optional[np.ndarray] = None, closed_loop_n: int = 0, capacity: Optional[int] = None,
            keep_series: bool = False) -> Dict[str, Any]:
    """Run one load shape; returns latency percentiles (ms), throughput and mean batch size."""
    run = _Run(models, frames, batch=batch, max_delay=max_delay, capacity=capacity or max(64, 4 * batch))
    out = run.go(arrivals, closed_loop_n=closed_loop_n)
    if keep_series:
        out["series"] = [(round(a, 5), round(lat * 1000.0, 3)) for a, lat in run.series]
    return out


def is_stable(values: Sequence[float], *, k: int = 3, tolerance: float = 0.15, floor_ms: float = 1.0) -> bool:
    """True when the last ``k`` values lie within ``tolerance`` of their median (or ``floor_ms``, for tiny latencies).

    Example:
        >>> is_stable([40.0, 12.0, 11.0, 11.5]), is_stable([12.0, 30.0, 11.0])
        (True, False)
    """
    if len(values) < max(1, k):
        return False
    last = list(values)[-k:]
    return max(last) - min(last) <= max(tolerance * statistics.median(last), floor_ms)


def measure_stable(models: Sequence[Any], frames: List[np.ndarray], *, batch: int, max_delay: float, rate: float,
                   duration: float, k: int = 3, tolerance: float = 0.15, max_repeats: int = 6,
                   give_up_above_ms: Optional[float] = None, min_frames: int = 0) -> Dict[str, Any]:
    """One offered rate, sampled again until the last ``k`` samples' P95 agree within ``tolerance``.

    A sample lasts ``duration`` seconds, longer where needed to hold ``min_frames`` frames (the P95
    of ten frames is their maximum, and a slow model at a low rate would give no more).

    Reports the medians over all samples, the P95 of every sample and their spread. A point whose
    first two samples are both above ``give_up_above_ms`` stops early: an overloaded queue's P95
    only says how long the sample was, and more samples would not change the verdict.
    """
    k = max(1, min(int(k), int(max_repeats)))
    samples: List[Dict[str, Any]] = []
    stable = False
    duration = max(duration, min_frames / rate)
    while len(samples) < max(1, int(max_repeats)):
        samples.append(measure(models, frames, batch=batch, max_delay=max_delay,
                               arrivals=schedule("sustained", rate=rate, duration=duration)))
        p95s = [s["p95_ms"] for s in samples]
        stable = is_stable(p95s, k=k, tolerance=tolerance)
        if stable or (give_up_above_ms is not None and len(p95s) >= 2 and min(p95s) > give_up_above_ms):
            break
    p95s = [s["p95_ms"] for s in samples]

    def med(key: str) -> Optional[float]:
        vals = [s[key] for s in samples if s.get(key) is not None]
        return round(float(statistics.median(vals)), 3) if vals else None

    return {"offered_fps": round(rate, 2), "p50_ms": med("p50_ms"), "p95_ms": med("p95_ms"), "p99_ms": med("p99_ms"),
            "throughput_fps": med("throughput_fps"), "mean_batch": med("mean_batch"), "frames": sum(s["frames"] for s in samples),
            "repeats": len(samples), "stable": stable, "sample_seconds": round(duration, 3), "p95_samples_ms": p95s,
            "p95_spread_ms": [min(p95s), max(p95s)] if p95s else None}


def capacity_fps(models: Sequence[Any], frames: List[np.ndarray], *, batch: int, duration: float) -> float:
    """Saturation throughput: every frame queued at t=0 with a queue of 2×batch per instance."""
    probe = measure(models, frames, batch=batch, max_delay=0.0, closed_loop_n=0,
                    arrivals=np.zeros(max(2 * batch, int(8 * batch))), capacity=2 * batch * len(models))
    rough = probe["throughput_fps"]
    n = max(4 * batch, int(rough * duration))
    return measure(models, frames, batch=batch, max_delay=0.0, arrivals=np.zeros(n),
                   capacity=2 * batch * len(models))["throughput_fps"]


def sweep(models: Sequence[Any], frames: List[np.ndarray], *, batches: Sequence[int], delays_ms: Sequence[float],
          loads: Sequence[float] = (0.5, 0.8, 0.95), duration: float = 3.0, sla_p95_ms: Optional[float] = None,
          progress=None, stability: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """For each batch size and delay, offered loads as fractions of that batch size's capacity.

    Each point is repeated until its P95 is stable (``stability``: k, tolerance, max_repeats of
    :func:`measure_stable`); medians and the spread are reported.
    """
    points = []
    for b in batches:
        cap = capacity_fps(models, frames, batch=b, duration=duration)
        for d in delays_ms:
            for frac in loads:
                rate = max(1.0, cap * frac)
                res = measure_stable(models, frames, batch=b, max_delay=d / 1000.0, rate=rate, duration=duration,
                                     **(stability or {}))
                point = {"batch": b, "max_delay_ms": d, "capacity_fps": cap, **res}
                point["meets_sla"] = None if sla_p95_ms is None else bool(res["p95_ms"] is not None and res["p95_ms"] <= sla_p95_ms)
                points.append(point)
                if progress:
                    progress(point)
    best = None
    eligible = [p for p in points if p["meets_sla"] or sla_p95_ms is None]
    if eligible:
        best = max(eligible, key=lambda p: p["throughput_fps"])
    return {"points": points, "best": best, "sla_p95_ms": sla_p95_ms}


def scenarios(models: Sequence[Any], frames: List[np.ndarray], *, names: Sequence[str], batch: int, max_delay_ms: float,
              duration: float, sla_p95_ms: Optional[float], load: float = 0.8) -> Dict[str, Any]:
    """Replay load shapes; P50/P95/P99 per scenario and pass/fail against the SLA."""
    cap = capacity_fps(models, frames, batch=batch, duration=duration)
    report = {}
    for name in names:
        if name == "single":
            n = max(5, int(min(cap, 1000.0) * duration / 2))
            res = measure(models, frames, batch=batch, max_delay=max_delay_ms / 1000.0, closed_loop_n=n, keep_series=True)
        else:
            arrivals = schedule(name, rate=max(1.0, cap * load), duration=duration, burst=2 * batch)
            res = measure(models, frames, batch=batch, max_delay=max_delay_ms / 1000.0, arrivals=arrivals, keep_series=True)
        res["pass"] = None if sla_p95_ms is None else bool(res["p95_ms"] is not None and res["p95_ms"] <= sla_p95_ms)
        report[name] = res
    return {"capacity_fps": cap, "batch": batch, "max_delay_ms": max_delay_ms, "load": load, "sla_p95_ms": sla_p95_ms,
            "scenarios": report}
