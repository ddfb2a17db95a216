"""SLA tuner for `edgeinfer bench --sla-p95-ms`: per (batch, max queue delay, instances) the knee, i.e.
the largest throughput whose P95 latency stays at or under the target, and the best candidate.

Per candidate: measure the capacity (every frame queued at once), check a low offered rate (it must
meet the SLA, else the candidate cannot), then the capacity itself and, while that still passes, up
to ``max_overload`` × capacity (a queue that grows for a short sample can stay under a loose SLA);
then bisect between the highest passing and the lowest failing rate until they are within
``resolution``. Every rate is measured with :func:`~.bench.measure_stable` (repeated until its P95
is stable), so the verdict at each rate is a median, not one noisy sample. The knee and the first
rate above it that breaks the SLA are both reported.

Example:
    >>> check_batches([1, 2], limit=1, engine="model.onnx (static batch 1)")
    ([1], ['batch 2: model.onnx (static batch 1) takes at most 1 frame per call'])
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError
from .bench import capacity_fps, measure_stable

Progress = Optional[Callable[[str, Dict[str, Any]], None]]


@dataclasses.dataclass
class TuneSettings:
    """How hard the tuner looks. ``duration``: seconds per sample; ``k``/``tolerance``/``max_repeats``: a
    rate is sampled until the last k P95s agree within tolerance (relative), at most max_repeats times; a sample
    is made longer where needed to hold ``min_frames`` frames."""

    sla_p95_ms: float
    duration: float = 2.0
    min_frames: int = 30
    k: int = 3
    tolerance: float = 0.15
    max_repeats: int = 6
    resolution: float = 0.05
    low_fraction: float = 0.1
    max_overload: float = 4.0
    max_steps: int = 8

    def __post_init__(self) -> None:
        if not self.sla_p95_ms > 0:
            raise ConfigError(f"sla_p95_ms={self.sla_p95_ms} must be > 0", hint="e.g. --sla-p95-ms 50")
        if not self.duration > 0 or self.max_repeats < 1 or self.k < 1 or not 0 < self.resolution < 1:
            raise ConfigError("duration must be > 0, max_repeats and k >= 1, resolution in (0, 1)",
                              hint="e.g. duration=2, k=3, max_repeats=6, resolution=0.05")


def engine_batch_limit(model: Any) -> Optional[int]:
    """Frames one engine call takes: the first input's static batch dimension; None when dynamic or unknown.

    (A dynamic TensorRT engine reports its optimisation profile's maximum, the shape it runs with.)
    """
    limit = getattr(model, "max_batch", None)
    if isinstance(limit, int) and limit > 0:
        return limit
    inputs = getattr(getattr(model, "backend", None), "inputs", None)
    if not inputs:
        return None
    shape = list(getattr(inputs[0], "shape", None) or [])
    b = shape[0] if shape else None
    return int(b) if isinstance(b, int) and b > 0 else None


def batch_limit(models: Sequence[Any]) -> Tuple[Optional[int], str]:
    """The smallest batch limit over engine instances, and words naming the engine for messages."""
    limits = [(engine_batch_limit(m), m) for m in models]
    known = [(lim, m) for lim, m in limits if lim is not None]
    if not known:
        return None, "the engine"
    lim, m = min(known, key=lambda x: x[0])
    inputs = getattr(getattr(m, "backend", None), "inputs", None) or []
    shape = f", input shape {list(inputs[0].shape)}" if inputs else ""
    name = getattr(getattr(m, "info", None), "source", None) or "the engine"
    return lim, f"{name} (static batch {lim}{shape})"


def check_batches(batches: Sequence[int], *, limit: Optional[int], engine: str) -> Tuple[List[int], List[str]]:
    """Batch sizes the engine can take, and a reason per skipped one; ConfigError when none is left."""
    usable = [b for b in batches if limit is None or b <= limit]
    skipped = [f"batch {b}: {engine} takes at most {limit} frame{'s' if limit != 1 else ''} per call"
               for b in batches if b not in usable]
    if not usable:
        raise ConfigError(f"cannot benchmark batch {', '.join(map(str, batches))}: {engine} takes at most {limit} "
                          "frame(s) per call", hint=f"use --batch {limit} or lower, or package the model with a larger "
                          "--batch (or --dynamic)")
    return usable, skipped


def find_knee(models: Sequence[Any], frames: List[np.ndarray], *, batch: int, max_delay_ms: float,
              settings: TuneSettings, capacity: Optional[float] = None, progress: Progress = None) -> Dict[str, Any]:
    """The knee of one candidate: the highest offered rate whose median P95 meets the SLA, and the lowest above it that does not."""
    s = settings
    cap = capacity if capacity is not None else capacity_fps(models, frames, batch=batch, duration=s.duration)
    points: List[Dict[str, Any]] = []

    def probe(rate: float) -> Dict[str, Any]:
        p = measure_stable(models, frames, batch=batch, max_delay=max_delay_ms / 1000.0, rate=rate, duration=s.duration,
                           k=s.k, tolerance=s.tolerance, max_repeats=s.max_repeats, give_up_above_ms=3 * s.sla_p95_ms,
                           min_frames=s.min_frames)
        p.update(batch=batch, max_delay_ms=max_delay_ms, capacity_fps=cap)
        p["meets_sla"] = p["p95_ms"] is not None and p["p95_ms"] <= s.sla_p95_ms
        points.append(p)
        if progress:
            progress("point", p)
        return p

    # light, but fast enough that min_frames fit in about two sample durations; well under the capacity
    low = probe(min(max(cap * s.low_fraction, s.min_frames / (2.0 * s.duration)), cap * 0.5))
    out: Dict[str, Any] = {"batch": batch, "max_delay_ms": max_delay_ms, "capacity_fps": cap, "points": points,
                           "knee": None, "breaking": None, "note": None}
    if not low["meets_sla"]:
        out["breaking"] = low
        out["note"] = f"P95 {low['p95_ms']:.1f} ms already at {low['offered_fps']:.1f} FPS (a light load)"
        return out
    good, bad = low, None
    rate = cap
    while bad is None:
        p = probe(rate)
        if not p["meets_sla"]:
            bad = p
        else:
            good = p
            if rate >= cap * s.max_overload:
                out["note"] = (f"P95 met even at {rate:.1f} FPS offered ({rate / cap:.1f}x capacity): the queue did not grow "
                               "long enough in one sample; use a longer --duration")
                break
            rate = min(rate * 1.5, cap * s.max_overload)
    steps = 0
    while bad is not None and steps < s.max_steps and bad["offered_fps"] - good["offered_fps"] > s.resolution * bad["offered_fps"]:
        mid = probe((good["offered_fps"] + bad["offered_fps"]) / 2.0)
        good, bad = (mid, bad) if mid["meets_sla"] else (good, mid)
        steps += 1
    out["knee"], out["breaking"] = good, bad
    if (good["throughput_fps"] or 0.0) > 1.15 * cap and out["note"] is None:
        out["note"] = (f"{good['throughput_fps']:.1f} FPS is above the {cap:.1f} FPS capacity measured first: the machine's "
                       "load changed during the run; compare candidates on a quiet machine")
    return out


def pick_best(candidates: Sequence[Dict[str, Any]], *, resolution: float) -> Optional[Dict[str, Any]]:
    """The candidate with the highest knee throughput; knees within ``resolution`` of it count as equal (closer
    is noise), and among those the lowest P95, then the smallest batch and delay win.

    Example:
        >>> c = lambda b, fps, p95: {"batch": b, "max_delay_ms": 0, "knee": {"throughput_fps": fps, "p95_ms": p95}}
        >>> pick_best([c(1, 100.0, 40.0), c(2, 102.0, 60.0), c(4, 80.0, 10.0)], resolution=0.05)["batch"]
        1
    """
    with_knee = [c for c in candidates if c["knee"] is not None and c["knee"]["throughput_fps"]]
    if not with_knee:
        return None
    top = max(c["knee"]["throughput_fps"] for c in with_knee)
    close = [c for c in with_knee if c["knee"]["throughput_fps"] >= top * (1.0 - resolution)]
    return min(close, key=lambda c: (c["knee"]["p95_ms"] if c["knee"]["p95_ms"] is not None else math.inf,
                                     c["batch"], c["max_delay_ms"]))


def tune(instance_sets: Sequence[Tuple[Optional[str], Sequence[Any]]], frames: List[np.ndarray], *,
         batches: Sequence[int], delays_ms: Sequence[float], settings: TuneSettings, progress: Progress = None) -> Dict[str, Any]:
    """Knee of every (instances, batch, delay) candidate; ``best`` is the knee with the highest achieved throughput.

    ``instance_sets``: (label such as ``"2"`` or ``"gpu,dla0"`` or None, the loaded models). Batch
    sizes an engine cannot take are skipped with a reason (``skipped``); none left is a ConfigError.
    """
    candidates, skipped = [], []
    for label, models in instance_sets:
        limit, engine = batch_limit(models)
        usable, why = check_batches(batches, limit=limit, engine=engine)
        skipped.extend(why)
        for msg in why:
            if progress:
                progress("skip", {"instances": label, "reason": msg})
        for b in usable:
            if progress:
                progress("capacity", {"instances": label, "batch": b})
            cap = capacity_fps(models, frames, batch=b, duration=settings.duration)
            for d in delays_ms:
                if progress:
                    progress("candidate", {"instances": label, "batch": b, "max_delay_ms": d, "capacity_fps": cap})
                res = find_knee(models, frames, batch=b, max_delay_ms=d, settings=settings, capacity=cap, progress=progress)
                res["instances"] = label
                for p in res["points"]:
                    p["instances"] = label
                candidates.append(res)
                if progress:
                    progress("knee", res)
    best = pick_best(candidates, resolution=settings.resolution)
    return {"mode": "tune", "sla_p95_ms": settings.sla_p95_ms, "settings": dataclasses.asdict(settings),
            "candidates": candidates, "skipped": skipped, "best": best,
            "points": [p for c in candidates for p in c["points"]]}
