"""BundleWatcher without a pipeline: which bundle it picks, what it refuses, what it prunes; /healthz and /readyz."""
from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fleet_helpers import DEVICE, make_variant

from edgeinfer.errors import ConfigError
from edgeinfer.fleet.watch import BundleWatcher


@pytest.fixture()
def ota(signed_bundle, keys, tmp_path):
    folder = tmp_path / "ota"
    folder.mkdir()
    for i in range(4):
        make_variant(signed_bundle, folder / f"v{i}.bundle", minutes=i + 1, key=keys["key"], staging=tmp_path)
    return folder


def test_newest_valid_bundle_wins_and_bad_ones_are_skipped(ota, signed_bundle, keys, tmp_path):
    make_variant(signed_bundle, ota / "v9-unsigned.bundle", minutes=9, staging=tmp_path)
    (ota / ".v10.bundle.partial-123-x").mkdir()  # an OTA tool's temp dir: never considered
    w = BundleWatcher(ota, trust=[keys["pub"]], device=DEVICE)
    assert w.newest_valid().name == "v3.bundle"
    assert any("not signed" in why for why in w.rejected.values())
    assert [p.name for p in w.candidates()] == ["v9-unsigned.bundle", "v3.bundle", "v2.bundle", "v1.bundle", "v0.bundle"]


def test_current_symlink_decides(ota, keys):
    os.symlink("v1.bundle", ota / "current")
    w = BundleWatcher(ota, trust=[keys["pub"]])
    assert w.newest_valid().name == "v1.bundle"


def test_wrong_device_refused_at_start(ota, keys):
    with pytest.raises(ConfigError, match="no valid bundle"):
        BundleWatcher(ota, trust=[keys["pub"]], device="orin-nx-16gb").newest_valid()


def test_prune_keeps_the_last_k(ota, keys):
    w = BundleWatcher(ota, trust=[keys["pub"]], keep=2)
    w.active = (ota / "v2.bundle", "x")
    w.history = [ota / "v0.bundle", ota / "v2.bundle"]
    removed = w.prune()
    # kept: v3 (newer than the running one), v2 (running), v1 (newest older one), v0 (in the last 2 committed)
    assert removed == [] and len(w.candidates()) == 4
    w.history = [ota / "v2.bundle"]
    assert [p.name for p in w.prune()] == ["v0.bundle"]
    assert sorted(p.name for p in w.candidates()) == ["v1.bundle", "v2.bundle", "v3.bundle"]


def test_missing_watch_folder_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        BundleWatcher(tmp_path / "nope")


def test_healthz_and_readyz_over_http(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
    from pipeline_helpers import OrtMeanModel, build_mean_onnx, write_levels_video

    from edgeinfer.pipeline.pipeline import Pipeline

    model = OrtMeanModel(build_mean_onnx(tmp_path / "m.onnx"))
    video = write_levels_video(tmp_path / "v.mp4", 10)

    def get(url):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    with Pipeline(model, sources=[video], loop=True, telemetry=None, collect_results=False, metrics_port=0) as p:
        base = p.metrics_url.rsplit("/", 1)[0]
        assert get(base + "/healthz") == (200, "ok\n")
        # ready once the source delivers frames (503 "connecting" until its first frame is read)
        deadline = time.monotonic() + 10
        while get(base + "/readyz") != (200, "ready\n") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert get(base + "/readyz") == (200, "ready\n")
        assert "edgeinfer_fps" in get(base + "/metrics")[1]
    bad = Pipeline(model, sources=["rtsp://127.0.0.1:9/none"], telemetry=None, collect_results=False, metrics_port=0)
    with bad:
        base = bad.metrics_url.rsplit("/", 1)[0]
        code, body = get(base + "/readyz")
        assert code == 503 and "source 0 is" in body, body
        assert get(base + "/healthz")[0] == 200  # alive, just not ready


def test_readiness_reads_uplink_health_and_degrades_gracefully():
    from edgeinfer.pipeline._fleet import readiness_problems

    ok = {"running": True, "sources": {"0": {"state": "connected"}}}
    assert readiness_problems(dict(ok, uplink={"state": "connected", "queued": 3}), model_loaded=True) == []
    assert readiness_problems(dict(ok, uplink={"sender": {"stuck": True, "last_error": "503"}}), model_loaded=True) \
        == ["uplink sender stuck: 503"]
    stuck = {"state": "backing_off", "oldest_age_s": 600.0, "last_error": "connection refused"}
    assert "uplink stuck" in readiness_problems(dict(ok, uplink=stuck), model_loaded=True)[0]
    assert readiness_problems(dict(ok, uplink=None), model_loaded=False) == ["no model loaded"]


def test_run_without_watch_says_when_its_bundle_is_replaced(signed_bundle, keys, tmp_path, caplog):
    import shutil
    import time
    import types

    from edgeinfer.cli._fleet_opts import _watch_for_replacement

    running = tmp_path / "shapes.bundle"
    shutil.copytree(signed_bundle, running)
    stop = _watch_for_replacement(str(running), types.SimpleNamespace(running=True), interval=0.05)
    try:
        time.sleep(0.2)
        assert "replaced on disk" not in caplog.text
        shutil.rmtree(running)  # `edgeinfer package --force` over the running bundle
        make_variant(signed_bundle, running, minutes=7, key=keys["key"], staging=tmp_path)
        deadline = time.monotonic() + 10
        while "replaced on disk" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "the old model keeps running" in caplog.text
    finally:
        stop.set()


def test_systemd_notifier_sends_ready_and_watchdog_only_while_frames_flow(tmp_path):
    import socket
    import types

    from edgeinfer.fleet.sdnotify import SystemdNotifier

    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    sock.settimeout(5)
    stats = {"frames_out": 1, "sources": {"0": {"state": "connected"}}}
    pipe = types.SimpleNamespace(running=True, stats=lambda: stats)
    n = SystemdNotifier(pipe, env={"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "200000"}).start()
    try:
        assert sock.recv(64) == b"READY=1"
        assert sock.recv(64) == b"WATCHDOG=1"  # frames advanced (first check)
        stats["frames_out"] = 5
        assert sock.recv(64) == b"WATCHDOG=1"
        # frames stop advancing with a connected source: a hang, no more pings
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            while True:
                sock.recv(64)
    finally:
        n.stop()
        sock.close()


def test_readyz_reads_the_uplinks_own_health(tmp_path):
    from edgeinfer.pipeline._fleet import uplink_problems
    from edgeinfer.uplink import Uplink

    up = Uplink("http://127.0.0.1:9/ingest", spool_dir=str(tmp_path / "spool"))
    try:
        stats = up.stats()
        assert stats["health"]["ok"] is True and uplink_problems(stats) == []
    finally:
        up.close()
    # what Uplink.health() reports when its sender is stuck or its disk is full (uplink/health.py)
    broken = dict(stats, health={"ok": False, "problems": ["sender stuck for 75 s", "spool write failing: ENOSPC"]})
    assert uplink_problems(broken) == ["uplink: sender stuck for 75 s", "uplink: spool write failing: ENOSPC"]
