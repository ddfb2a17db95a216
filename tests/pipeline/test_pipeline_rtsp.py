"""Live RTSP from a real GStreamer RTSP server on loopback: frames, drop-oldest, watchdog reconnect with backoff."""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from pipeline_helpers import OrtMeanModel

from edgeinfer.pipeline.capture import ReconnectPolicy
from edgeinfer.pipeline.pipeline import Pipeline

SYSTEM_PY = "/usr/bin/python3"
SERVER = Path(__file__).with_name("rtsp_server.py")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _has_rtsp_server() -> bool:
    if not os.path.exists(SYSTEM_PY):
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PY, "-c", probe], capture_output=True, timeout=30).returncode == 0


if not _has_rtsp_server():
    pytest.skip("needs Debian's GStreamer RTSP server for /usr/bin/python3 "
                "(apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi; see tests/pipeline/rtsp_server.py)",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/test"

    def start(self) -> "RtspServer":
        self.proc = subprocess.Popen([SYSTEM_PY, str(SERVER), str(self.port)], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        assert line == "ready", f"RTSP server did not start: {line!r}"
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture()
def server():
    srv = RtspServer(_free_port()).start()
    yield srv
    srv.stop()


def test_rtsp_live_source_keeps_newest_frames_and_counts_drops(mean_onnx, server):
    got = []
    # A model slower than the 15 FPS stream: live frames must be dropped (oldest first), never queued up.
    model = OrtMeanModel(mean_onnx, delay=0.15)
    p = Pipeline(model, sources=[server.url], on_result=lambda r: got.append(r), telemetry=None,
                 reconnect=ReconnectPolicy(timeout_s=3.0))
    with p:
        _wait(lambda: len(got) >= 8, 40, "8 results")
        stats = p.stats()
    assert stats["sources"]["0"]["live"] and stats["sources"]["0"]["kind"] == "rtsp"
    assert stats["drops"]["source_queue"]["0"] > 0
    indices = [r.frame_index for r in got]
    assert indices == sorted(indices) and indices[-1] - indices[0] > len(indices)  # gaps = dropped stale frames
    assert got[0].detections.image_shape == (240, 320)


def test_rtsp_watchdog_reconnects_with_backoff(mean_onnx, server):
    policy = ReconnectPolicy(timeout_s=1.5, initial_s=0.3, max_s=1.2, factor=2.0, jitter=0.1)
    hooked = []
    with Pipeline(OrtMeanModel(mean_onnx), sources={"cam": server.url}, on_result=lambda r: None, telemetry=None,
                  reconnect=policy, join_timeout=8, on_event=lambda e: hooked.append(e.state)) as p:
        src = lambda: p.stats()["sources"]["cam"]  # noqa: E731
        _wait(lambda: src()["state"] == "connected" and src()["frames"] > 10, 40, "first frames")
        server.stop()
        _wait(lambda: p.stats()["reconnects"] >= 1, 20, "the watchdog to notice the stream is gone")
        time.sleep(3.0)  # several failed attempts while the server is down
        frames_down = src()["frames"]
        server.start()
        _wait(lambda: src()["state"] == "connected" and src()["frames"] > frames_down + 10, 40, "frames after the restart")
        stats = p.stats()
    states = [e["state"] for e in stats["events"] if e["source_id"] == "cam"]
    assert "lost" in states and states.count("connected") >= 2
    assert hooked[:2] == ["connecting", "connected"] and "lost" in hooked and "reconnecting" in hooked
    retries = [e for e in stats["events"] if e["state"] == "reconnecting" and e["detail"].startswith("next attempt")]
    delays = [float(e["detail"].split()[3]) for e in retries]
    assert len(delays) >= 2 and max(delays) > min(delays)  # exponential backoff, capped at max_s (+ jitter)
    assert max(delays) <= 1.2 * 1.1 + 1e-6
    assert stats["leaked_threads"] == []


def test_rtsp_frozen_connection_is_detected_by_the_watchdog(mean_onnx, server):
    """A server that stops sending but keeps the TCP connection open (SIGSTOP): no frame for T → rebuild."""
    import signal

    policy = ReconnectPolicy(timeout_s=2.0, initial_s=0.3, max_s=1.0, jitter=0.0)
    with Pipeline(OrtMeanModel(mean_onnx), sources={"cam": server.url}, on_result=lambda r: None, telemetry=None,
                  reconnect=policy, join_timeout=8) as p:
        src = lambda: p.stats()["sources"]["cam"]  # noqa: E731
        _wait(lambda: src()["state"] == "connected" and src()["frames"] > 10, 40, "first frames")
        server.proc.send_signal(signal.SIGSTOP)
        try:
            t0 = time.perf_counter()
            _wait(lambda: p.stats()["reconnects"] >= 1, 15, "the watchdog to notice the frozen stream")
            detected = time.perf_counter() - t0
        finally:
            server.proc.send_signal(signal.SIGCONT)
        frames_before = src()["frames"]
        _wait(lambda: src()["state"] == "connected" and src()["frames"] > frames_before + 10, 40, "frames after resume")
    assert detected < policy.timeout_s + 3.0  # our watchdog (the backend's own read retries took ~3x timeout_s)
