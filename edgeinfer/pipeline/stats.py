"""Build the ``Pipeline.stats()`` dictionary and the one-line status.

Example:
    >>> status_line({"uptime_s": 3.0, "fps": 29.7, "frames_out": 90, "latency": {"end_to_end": {"p95_ms": 41.2}},
    ...              "drops": {"total": 2}, "sources": {"0": {"state": "connected"}}, "queues": {"hub": {"0": 1}},
    ...              "reconnects": 0, "failover": {"active": False}, "telemetry": {}})
    '[3s] 29.7 FPS | frames 90 | e2e p95 41.2 ms | drops 2 | reconnects 0 | queue 1 | 0:connected'
"""
from __future__ import annotations

import time
from typing import Any, Dict


def describe_instance(name: str, model: Any) -> Dict[str, Any]:
    """One engine instance: its backend, execution provider and device (as ``bench`` records them), reason, model id.

    Example:
        >>> class Ort:
        ...     name, providers = "onnxruntime", ["CPUExecutionProvider"]
        >>> class M:
        ...     backend, backend_name, backend_reason, model_id = Ort(), "onnxruntime", "ONNX Runtime ...", "m@ab"
        >>> describe_instance("ort0", M())["device"]
        'cpu'
    """
    from .config import describe_engine as backend_provider_device

    return {"instance": name, **backend_provider_device(model),
            "providers": [str(p) for p in (getattr(getattr(model, "backend", None), "providers", None) or [])],
            "reason": getattr(model, "backend_reason", None), "model_id": getattr(model, "model_id", None)}


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def status_line(stats: Dict[str, Any]) -> str:
    """A compact, single-line summary of :meth:`Pipeline.stats` for terminals and logs."""
    e2e = stats.get("latency", {}).get("end_to_end", {})
    queued = sum(stats.get("queues", {}).get("hub", {}).values())
    states = " ".join(f"{sid}:{s.get('state')}" for sid, s in stats.get("sources", {}).items())
    parts = [
        f"[{stats.get('uptime_s', 0):.0f}s] {stats.get('fps', 0.0):.1f} FPS",
        f"frames {stats.get('frames_out', 0)}",
        f"e2e p95 {_ms(e2e.get('p95_ms'))} ms",
        f"drops {stats.get('drops', {}).get('total', 0)}",
        f"reconnects {stats.get('reconnects', 0)}",
        f"queue {queued}",
    ]
    if stats.get("failover", {}).get("active"):
        parts.append("FAILOVER")
    tel = stats.get("telemetry", {})
    if tel.get("power_w") is not None:
        parts.append(f"{tel['power_w']:.1f} W")
    if tel.get("fps_per_watt") is not None:
        parts.append(f"{tel['fps_per_watt']:.2f} FPS/W")
    return " | ".join(parts) + (f" | {states}" if states else "")


def build_stats(p) -> Dict[str, Any]:
    """Collect every counter of a running or finished Pipeline ``p`` into a JSON-ready dict."""
    now = time.perf_counter()
    captures, workers = p._captures, p._workers
    sources = {}
    pool_drops = {}
    queue_drops = {}
    for cap in captures:
        sid = cap.source_id
        queue_drops[sid] = p._hub.drops(sid)
        pool_drops[sid] = cap.pool_drops.value
        sources[sid] = {
            "uri": p._describe[sid], "kind": cap.spec.kind, "live": cap.live, "state": cap.state,
            "frames": cap.frames, "fps": round(cap.fps.rate(now=now), 2), "reconnects": cap.reconnects.value,
            "drops": queue_drops[sid] + pool_drops[sid], "read": cap.read_latency.summary(),
            "last_frame_age_s": round(now - cap.last_frame_mono, 3),
        }
    sink_drops = p._sink.queue.drops if p._sink else 0
    result_drops = p._results.drops
    total_drops = sum(queue_drops.values()) + sum(pool_drops.values()) + sink_drops + result_drops
    batches = sum(w.batches.value for w in workers)
    frames_inferred = sum(w.frames.value for w in workers)
    infer_latency = [w.latency for w in workers]
    out = {
        "uptime_s": round(now - p._started_mono, 3) if p._started_mono else 0.0,
        "running": p.running,
        "frames_in": sum(c.frames for c in captures),
        "frames_out": p._out_fps.total,
        "fps": round(p._out_fps.rate(now=now), 2),
        "fps_avg": round(p._out_fps.average(now=now), 2),
        "latency": {
            "capture": _merge([c.read_latency for c in captures]),
            "queue": _merge([w.queue_wait for w in workers]),
            "infer": _merge(infer_latency),
            "sink": p._sink.latency.summary() if p._sink else None,
            "end_to_end": p._e2e.summary(),
        },
        "batch": {"max_batch": p.max_batch, "max_delay_ms": p.max_delay * 1000.0, "batches": batches,
                  "mean_size": round(frames_inferred / batches, 3) if batches else None},
        "queues": {"hub": p._hub.depths(), "sink": len(p._sink.queue) if p._sink else 0, "results": len(p._results),
                   "reorder_pending": p._collector.pending()},
        "drops": {"source_queue": queue_drops, "pool": pool_drops, "sink": sink_drops, "results": result_drops,
                  "total": total_drops},
        "reconnects": sum(c.reconnects.value for c in captures),
        "reordered": p._collector.reordered.value,
        "sources": sources,
        "instances": [{"name": w.name, "backend": w.backend, "batches": w.batches.value, "frames": w.frames.value,
                       "failed_over": w.failed_over, "overlapped": getattr(w, "overlapped", False),
                       "fps": round(w.fps.rate(now=now), 2)} for w in workers],
        "failover": {"active": any(w.failed_over for w in workers), "events": list(p._failovers)},
        "events": [e.__dict__ for e in list(p._events)[-20:]],
        "uplink": _uplink_stats(p._uplink),
        "model": p.model_state() if hasattr(p, "model_state") else None,
        "telemetry": p._telemetry_snapshot(),
        "leaked_threads": list(p._leaked),
    }
    return out


def _uplink_stats(uplink) -> Any:
    if uplink is None:
        return None
    try:
        return uplink.stats()
    except Exception as exc:  # stats must never break because the uplink misbehaves
        return {"error": repr(exc)}


def _merge(recorders) -> Dict[str, Any]:
    """Percentiles over the union of several recorders' windows."""
    import numpy as np

    from ..telemetry.latency import LatencyRecorder

    if len(recorders) == 1:
        return recorders[0].summary()
    vals = [r.values() for r in recorders]
    merged = LatencyRecorder(window=max(1, sum(len(v) for v in vals)))
    for v in vals:
        for x in np.asarray(v):
            merged.record(float(x))
    summary = merged.summary()
    summary["count"] = sum(r.count for r in recorders)
    return summary
