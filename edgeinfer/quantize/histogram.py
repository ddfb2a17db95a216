"""Streaming |x| histograms per tensor and the two threshold rules TensorRT-style INT8 uses.

* ``entropy``: TensorRT's EntropyCalibration2 rule (Migacz, GTC 2017 "8-bit inference with
  TensorRT"): a 2048-bin histogram of |x|; for each candidate threshold i (128..2048 bins) the
  clipped reference P (outliers folded into the last bin) is compared with Q, P quantized to 128
  levels and expanded back; the threshold with the smallest KL(P||Q) wins. Candidates are
  scanned with a stride of 8 bins (240 KL evaluations per tensor instead of 1920) to stay cheap on
  a 2-core host.
* ``percentile``: the |x| value below which ``p`` % of the samples lie.

Bins have a fixed width set by the first batch and are appended when a later batch is larger,
merged pairwise when they grow past ``_MAX_BINS``; edges are float64, so near-constant tensors
(1e-10 wide ranges) bin fine.

Speed: the largest |x| is taken over every value, but a tensor of more than ``sample`` values
(default 2**16) is histogrammed on an evenly strided subset whose offset moves from batch to batch.
A YOLO11n-640 forward produces tens of millions of activation values; binning all of them for
200 images cost more than the whole 2-minute packaging budget on a 2-core host, while 2**16
values per tensor and image still leave ~100 samples beyond the 99.999th percentile over 150+
calibration images (scripts/bench_package_stages.py --histogram measures the cost).

Example:
    >>> import numpy as np
    >>> h = AbsHistograms()
    >>> h.add("x", np.linspace(-2, 2, 10001, dtype=np.float32))
    >>> round(h.percentile(99.0)["x"], 2), round(h.amax["x"], 2)
    (1.98, 2.0)
"""
from __future__ import annotations

from typing import Any

import numpy as np

_BINS = 2048
_MAX_BINS = 8 * _BINS
_LEVELS = 128
_STRIDE = 8
_SAMPLE = 1 << 16


class AbsHistograms:
    """Per-tensor histogram of |x| over all calibration batches."""

    def __init__(self, *, sample: int = _SAMPLE) -> None:
        self._hist: dict[str, np.ndarray] = {}
        self._width: dict[str, float] = {}
        self._calls: dict[str, int] = {}
        self._sample = max(1, int(sample))
        self.amax: dict[str, float] = {}

    def add(self, name: str, value: Any) -> None:
        v = np.asarray(value, dtype=np.float32).ravel()
        if v.size == 0:
            return
        top = float(max(np.max(v), -np.min(v)))  # exact, over every value; no |x| temporary
        if v.size > self._sample:
            step = -(-v.size // self._sample)
            calls = self._calls[name] = self._calls.get(name, -1) + 1
            v = v[calls % step::step]
        a = np.abs(v)
        if not np.isfinite(top):
            a = a[np.isfinite(a)]
            top = float(a.max()) if a.size else 0.0
        self.amax[name] = max(self.amax.get(name, 0.0), top)
        if top == 0.0 and name not in self._width:
            self._hist.setdefault(name, np.zeros(0, np.int64))
            return
        if self._width.get(name, 0.0) == 0.0:
            self._width[name] = top / _BINS
            self._hist[name] = np.zeros(_BINS, np.int64)
        hist, width = self._grow(self._hist[name], self._width[name], top)
        idx = np.minimum((a / width).astype(np.int64), len(hist) - 1)
        hist += np.bincount(idx, minlength=len(hist))
        self._hist[name], self._width[name] = hist, width

    @staticmethod
    def _grow(hist: np.ndarray, width: float, top: float) -> tuple[np.ndarray, float]:
        needed = int(np.ceil(top / width)) if width > 0 else len(hist)
        while needed > _MAX_BINS:  # a much larger batch: halve the resolution instead of exploding
            if len(hist) % 2:
                hist = np.append(hist, 0)
            hist = hist.reshape(-1, 2).sum(axis=1)
            width *= 2.0
            needed = int(np.ceil(top / width))
        if needed > len(hist):
            hist = np.concatenate([hist, np.zeros(needed - len(hist), np.int64)])
        return hist, width

    def percentile(self, p: float) -> dict[str, float]:
        out = {}
        for name, hist in self._hist.items():
            total = hist.sum()
            if total == 0:
                out[name] = self.amax.get(name, 0.0)
                continue
            k = int(np.searchsorted(np.cumsum(hist) / total, p / 100.0))
            out[name] = min((k + 1) * self._width[name], self.amax[name])
        return out

    def entropy(self) -> dict[str, float]:
        out = {}
        for name, hist in self._hist.items():
            if hist.sum() == 0:
                out[name] = self.amax.get(name, 0.0)
                continue
            fixed = _rebin(hist, self._width[name], self.amax[name])
            width = self.amax[name] / _BINS
            out[name] = min((_best_kl_bin(fixed) + 0.5) * width, self.amax[name])
        return out


def _rebin(hist: np.ndarray, width: float, amax: float) -> np.ndarray:
    """Resample to exactly _BINS bins over [0, amax] (counts land in the bin of their left edge)."""
    centers = (np.arange(len(hist)) + 0.5) * width
    idx = np.minimum((centers / (amax / _BINS)).astype(np.int64), _BINS - 1)
    return np.bincount(idx, weights=hist, minlength=_BINS)


def _best_kl_bin(hist: np.ndarray) -> int:
    best_i, best_kl = len(hist), np.inf
    for i in range(_LEVELS, len(hist) + 1, _STRIDE):
        kl = _kl_for_threshold(hist, i)
        if kl < best_kl:
            best_i, best_kl = i, kl
    return best_i - 1


def _kl_for_threshold(hist: np.ndarray, i: int) -> float:
    p = hist[:i].astype(np.float64).copy()
    p[i - 1] += hist[i:].sum()
    nonzero = hist[:i] > 0
    edges = np.linspace(0, i, _LEVELS + 1).astype(np.int64)
    sums = np.add.reduceat(hist[:i].astype(np.float64), edges[:-1])
    counts = np.add.reduceat(nonzero.astype(np.float64), edges[:-1])
    level = np.repeat(np.arange(_LEVELS), np.diff(edges))
    q = np.where(nonzero, (sums / np.maximum(counts, 1))[level], 0.0)
    ps, qs = p.sum(), q.sum()
    if ps == 0 or qs == 0:
        return np.inf
    p, q = p / ps, q / qs
    mask = p > 0
    if np.any(q[mask] == 0):  # P has mass where Q has none (the folded outliers): smooth like TensorRT
        q = np.where(q == 0, 1e-4, q)
        q /= q.sum()
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
