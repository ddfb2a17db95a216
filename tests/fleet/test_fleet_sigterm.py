"""SIGTERM = Ctrl-C for `edgeinfer run`, also as PID 1 (`docker stop`): finished MP4, stats, no record lost,
a stale temp file from a killed run swept at start. And `edgeinfer package` on SIGTERM leaves nothing behind."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fleet_helpers import DEMO_ONNX, EDGEINFER

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uplink"))
from uplink_receivers import Receiver, wait_until  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _children(pid: int):
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed child waits for a reaper; in some containers that never comes)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("as_pid1", [False, True], ids=["process", "pid1"])
def test_sigterm_finishes_the_mp4_writes_stats_and_loses_no_record(as_pid1, loop_video, tmp_path):
    if as_pid1 and shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for the PID 1 test")
    out = tmp_path / "out.mp4"
    stale = tmp_path / ".out.mp4.deadbeef.tmp.mp4"  # what a SIGKILLed run leaves behind
    stale.write_bytes(b"half a video")
    rec = Receiver().start()
    cmd = [*EDGEINFER, "run", DEMO_ONNX, "--source", loop_video, "--loop", "--sink", f"file://{out}", "--sink-lossless",
           "--uplink", rec.url, "--uplink-spool", tmp_path / "spool", "--stats", tmp_path / "stats.json",
           "--status-interval", "0"]
    prefix = ["unshare", "--pid", "--fork", "--mount-proc"] if as_pid1 else []
    proc = subprocess.Popen([str(c) for c in prefix + cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: len(rec.by_key) >= 10 or proc.poll() is not None, 120)
        target = proc.pid
        if as_pid1:  # signal the PID 1 of the namespace from outside, as `docker stop` does
            target = _children(proc.pid)[0]
            nspid = Path(f"/proc/{target}/status").read_text().split("NSpid:")[1].splitlines()[0].split()
            assert nspid[-1] == "1", nspid  # PID 1 inside its namespace: the kernel ignores SIGTERM without a handler
        t0 = time.monotonic()
        os.kill(target, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        rec.stop()
    assert proc.returncode == 143, err
    assert elapsed < 30 and "Traceback" not in err
    stats = json.loads((tmp_path / "stats.json").read_text())
    n = stats["frames_out"]
    assert n >= 10
    cv2 = pytest.importorskip("cv2")
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n  # finished, every frame in it
    cap.release()
    assert not stale.exists() and not list(tmp_path.glob(".*.tmp*"))
    indices = sorted(env["record"]["frame_index"] for env in rec.by_key.values())
    assert indices == list(range(n)) and stats["uplink"]["queued"] == 0  # every record delivered, none twice


def test_package_sigterm_removes_partial_and_stops_the_export_child(tmp_path):
    pt = DEMO_ONNX.with_name("shapes-yolo11n.pt")
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([str(c) for c in [*EDGEINFER, "package", pt, "--device", "orin-nano-8gb", "--precision", "fp16",
                                              "-o", out / "x.bundle"]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: _children(proc.pid) or proc.poll() is not None, 120), "no export child started"
        kids = _children(proc.pid)
        assert kids, proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert not [k for k in kids if _running(k)], "the .pt export child outlived the packager"
    assert list(out.iterdir()) == []  # no bundle, no .partial directory
