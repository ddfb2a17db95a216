"""Thread-safe latency recorders (P50/P95/P99 over a sliding window) and rate meters.

A recorder keeps the last ``window`` samples in a preallocated ring, so recording is O(1),
allocation-free and bounded in memory for a 30-day run; percentiles are computed on demand.

Example:
    >>> rec = LatencyRecorder(window=100)
    >>> for ms in range(1, 101): rec.record(ms / 1000.0)
    >>> s = rec.summary()
    >>> s["count"], s["p50_ms"], s["p99_ms"]
    (100, 50.5, 99.01)
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Dict, Optional

import numpy as np


class LatencyRecorder:
    """Durations in seconds; summaries in milliseconds."""

    def __init__(self, *, window: int = 4096) -> None:
        self._ring = np.zeros(int(window), dtype=np.float64)
        self._next = 0
        self._filled = 0
        self._total = 0
        self._lock = threading.Lock()

    def record(self, seconds: float) -> None:
        with self._lock:
            self._ring[self._next] = seconds
            self._next = (self._next + 1) % len(self._ring)
            self._filled = min(self._filled + 1, len(self._ring))
            self._total += 1

    @property
    def count(self) -> int:
        return self._total

    def values(self) -> np.ndarray:
        """A copy of the samples in the window (seconds, oldest first)."""
        with self._lock:
            if self._filled < len(self._ring):
                return self._ring[: self._filled].copy()
            return np.concatenate([self._ring[self._next:], self._ring[: self._next]])

    def summary(self) -> Dict[str, Optional[float]]:
        vals = self.values()
        if len(vals) == 0:
            return {"count": self._total, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
        p50, p95, p99 = np.percentile(vals, [50, 95, 99]) * 1000.0
        return {
            "count": self._total,
            "mean_ms": round(float(vals.mean() * 1000.0), 3),
            "p50_ms": round(float(p50), 3),
            "p95_ms": round(float(p95), 3),
            "p99_ms": round(float(p99), 3),
            "max_ms": round(float(vals.max() * 1000.0), 3),
        }


class RateMeter:
    """Events per second over the last ``horizon`` seconds, plus a lifetime count."""

    def __init__(self, *, horizon: float = 5.0) -> None:
        self._horizon = float(horizon)
        self._times: deque = deque()
        self._total = 0
        self._start = time.perf_counter()
        self._lock = threading.Lock()

    def tick(self, n: int = 1, *, now: Optional[float] = None) -> None:
        now = time.perf_counter() if now is None else now
        with self._lock:
            self._total += n
            for _ in range(n):
                self._times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        limit = now - self._horizon
        while self._times and self._times[0] < limit:
            self._times.popleft()

    @property
    def total(self) -> int:
        return self._total

    def rate(self, *, now: Optional[float] = None) -> float:
        """Recent rate; over the whole lifetime while younger than the horizon."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            self._trim(now)
            span = min(self._horizon, now - self._start)
            if span <= 0:
                return 0.0
            return len(self._times) / span

    def average(self, *, now: Optional[float] = None) -> float:
        """Lifetime average rate."""
        now = time.perf_counter() if now is None else now
        span = now - self._start
        return self._total / span if span > 0 else 0.0


class Counter:
    """A thread-safe integer counter."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._value += n

    @property
    def value(self) -> int:
        return self._value
