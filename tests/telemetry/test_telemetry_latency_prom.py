"""Latency percentiles, rate meters and the Prometheus endpoint served over real HTTP on loopback."""
from __future__ import annotations

import urllib.request

import numpy as np
import pytest

from edgeinfer.telemetry.latency import LatencyRecorder, RateMeter
from edgeinfer.telemetry.prometheus import MetricsServer, render_prometheus

pytestmark = pytest.mark.timeout(60)


def test_percentiles_match_numpy_over_the_window():
    rng = np.random.default_rng(0)
    values = rng.exponential(0.02, 5000)
    rec = LatencyRecorder(window=1000)
    for v in values:
        rec.record(float(v))
    window = values[-1000:]
    s = rec.summary()
    assert s["count"] == 5000
    for key, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        assert s[key] == pytest.approx(np.percentile(window, q) * 1000, abs=1e-3)
    assert LatencyRecorder().summary()["p95_ms"] is None


def test_rate_meter_counts_recent_events():
    meter = RateMeter(horizon=1.0)
    t0 = meter._start
    for i in range(100):
        meter.tick(now=t0 + 1.0 + i * 0.01)  # 100 events/s during [1, 2) s
    assert meter.rate(now=t0 + 2.0) == pytest.approx(100, rel=0.05)
    assert meter.rate(now=t0 + 10.0) == 0.0 and meter.total == 100


def test_metrics_server_serves_prometheus_text():
    stats = {"fps": 12.5, "frames_out": 40, "drops": {"total": 3}, "reconnects": 1,
             "latency": {"end_to_end": {"p50_ms": 10.0, "p95_ms": 20.0, "p99_ms": 30.0}},
             "sources": {"cam": {"state": "connected", "fps": 12.0}}, "telemetry": {"power_w": 7.5, "fps_per_watt": 1.67}}
    server = MetricsServer(lambda: stats, port=0).start()
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read().decode()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/nope", timeout=10)
    finally:
        server.stop()
    assert body == render_prometheus(stats)
    assert "edgeinfer_fps 12.5" in body and 'edgeinfer_source_connected{source="cam"} 1' in body
    assert 'edgeinfer_latency_ms{stage="end_to_end",quantile="0.99"} 30.0' in body and "edgeinfer_power_watts 7.5" in body
