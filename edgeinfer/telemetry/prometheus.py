"""Prometheus text exposition of pipeline stats over stdlib ``http.server`` (127.0.0.1 by default),
plus the probes a fleet needs: ``/healthz`` (the process answers: alive) and ``/readyz`` (200 when
the model is loaded, every source connected and the uplink not stuck; 503 with the reasons otherwise).

Example:
    >>> text = render_prometheus({"fps": 29.5, "frames_out": 10, "drops": {"total": 1}, "reconnects": 0,
    ...                           "latency": {"end_to_end": {"p50_ms": 20.0, "p95_ms": 30.0, "p99_ms": 35.0}}})
    >>> "edgeinfer_fps 29.5" in text, 'edgeinfer_latency_ms{stage="end_to_end",quantile="0.95"} 30.0' in text
    (True, True)
"""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

log = logging.getLogger(__name__)


def _esc(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(stats: Dict[str, Any]) -> str:
    """Stats dict → Prometheus text format 0.0.4."""
    lines: List[str] = []

    def metric(name: str, kind: str, helptext: str, samples) -> None:
        samples = [(labels, v) for labels, v in samples if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not samples:
            return
        lines.append(f"# HELP edgeinfer_{name} {helptext}")
        lines.append(f"# TYPE edgeinfer_{name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            lines.append(f"edgeinfer_{name}{{{lab}}} {value}" if lab else f"edgeinfer_{name} {value}")

    metric("fps", "gauge", "Output frames per second (recent).", [({}, stats.get("fps"))])
    metric("frames_out_total", "counter", "Frames with a result.", [({}, stats.get("frames_out"))])
    metric("frames_in_total", "counter", "Frames read from sources.", [({}, stats.get("frames_in"))])
    metric("drops_total", "counter", "Frames dropped anywhere in the pipeline.", [({}, stats.get("drops", {}).get("total"))])
    metric("reconnects_total", "counter", "Source rebuilds by the watchdog.", [({}, stats.get("reconnects"))])
    quant = []
    for stage, summary in (stats.get("latency") or {}).items():
        for q, key in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
            quant.append(({"stage": stage, "quantile": q}, (summary or {}).get(key)))
    metric("latency_ms", "gauge", "Stage latency percentiles in milliseconds.", quant)
    queues = stats.get("queues") or {}
    metric("queue_depth", "gauge", "Frames waiting per queue.",
           [({"queue": f"hub:{sid}"}, d) for sid, d in (queues.get("hub") or {}).items()]
           + [({"queue": "sink"}, queues.get("sink")), ({"queue": "results"}, queues.get("results"))])
    sources = stats.get("sources") or {}
    metric("source_connected", "gauge", "1 while a source delivers frames.",
           [({"source": sid}, 1 if s.get("state") == "connected" else 0) for sid, s in sources.items()])
    metric("source_fps", "gauge", "Capture FPS per source.", [({"source": sid}, s.get("fps")) for sid, s in sources.items()])
    tel = stats.get("telemetry") or {}
    metric("power_watts", "gauge", "Board input power.", [({}, tel.get("power_w"))])
    metric("fps_per_watt", "gauge", "Output FPS per watt.", [({}, tel.get("fps_per_watt"))])
    metric("temperature_celsius", "gauge", "Thermal zones.", [({"zone": z}, t) for z, t in (tel.get("temperatures") or {}).items()])
    metric("failover_active", "gauge", "1 after an instance switched to its fallback backend.",
           [({}, 1 if (stats.get("failover") or {}).get("active") else 0)])
    model = stats.get("model") or {}
    if model.get("model_id"):
        metric("model_info", "gauge", "The running model (bundle name @ manifest hash, version).",
               [({"model_id": model["model_id"], "model_version": model.get("model_version") or ""}, 1)])
        statuses: Dict[str, int] = {}
        for swap in model.get("swaps") or []:
            statuses[swap.get("status", "?")] = statuses.get(swap.get("status", "?"), 0) + 1
        metric("model_swaps", "gauge", "Hot swaps by outcome (last 20).", [({"status": k}, v) for k, v in sorted(statuses.items())])
    return "\n".join(lines) + "\n"


class MetricsServer:
    """Serves ``GET /metrics`` (and ``/``) from ``stats_fn()``, ``/healthz`` and ``/readyz`` in a daemon thread.

    ``ready_fn()`` returns the list of reasons the service is not ready (empty: ready).
    """

    def __init__(self, stats_fn: Callable[[], Dict[str, Any]], *, port: int = 9464, host: str = "127.0.0.1",
                 ready_fn: Optional[Callable[[], List[str]]] = None) -> None:
        self._stats_fn = stats_fn
        self._ready_fn = ready_fn
        self._host, self._port = host, int(port)
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._port

    def start(self) -> "MetricsServer":
        stats_fn, ready_fn = self._stats_fn, self._ready_fn

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    return self._answer(200, b"ok\n", "text/plain; charset=utf-8")
                if path == "/readyz":
                    try:
                        problems = list(ready_fn()) if ready_fn is not None else []
                    except Exception as exc:  # a probe must answer, never hang or crash the server
                        problems = [f"readiness check failed: {exc!r}"]
                    body = ("ready\n" if not problems else "not ready: " + "; ".join(problems) + "\n").encode()
                    return self._answer(503 if problems else 200, body, "text/plain; charset=utf-8")
                if path not in ("/", "/metrics"):
                    self.send_error(404)
                    return
                self._answer(200, render_prometheus(stats_fn()).encode(), "text/plain; version=0.0.4; charset=utf-8")

            def _answer(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args) -> None:
                log.debug("metrics: " + fmt, *args)

        self._server = ThreadingHTTPServer((self._host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="metrics-http", daemon=True)
        self._thread.start()
        log.info("Prometheus metrics on http://%s:%d/metrics", self._host, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(2.0)
            self._server = None
