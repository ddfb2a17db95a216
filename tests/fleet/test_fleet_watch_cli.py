"""`edgeinfer run --watch` end to end: a looping video, a real HTTP uplink, bundles delivered by atomic rename.

A new signed bundle is swapped in between two frames (every frame index exactly once, records change
model_id at one frame, a model_swap event arrives); unsigned, corrupt, wrong-device and disagreeing
(shadow comparison) bundles are refused while the old model keeps running; SIGTERM ends it cleanly.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fleet_helpers import DEVICE, EDGEINFER, corrupt_onnx, make_variant, zero_scores

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uplink"))
from uplink_receivers import Receiver, wait_until  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]


def _records(rec):
    with rec.lock:
        return [env["record"] for env in rec.by_key.values()]


def _events(rec, status=None):
    return [r for r in _records(rec) if r.get("event") == "model_swap" and (status is None or r["status"] == status)]


def test_watch_swaps_in_a_signed_bundle_and_refuses_bad_ones(signed_bundle, keys, loop_video, tmp_path):
    ota, staging = tmp_path / "ota", tmp_path / "staging"
    ota.mkdir()
    staging.mkdir()
    make_variant(signed_bundle, ota / "shapes-v1.bundle", minutes=0, key=keys["key"], staging=staging)
    rec = Receiver().start()
    stats_path = tmp_path / "stats.json"
    cmd = [*EDGEINFER, "run", "--watch", ota, "--source", loop_video, "--loop", "--uplink", rec.url,
           "--uplink-spool", tmp_path / "spool", "--trust", keys["pub"], "--device-profile", DEVICE,
           "--watch-interval", "0.2", "--health-frames", "8", "--shadow-frames", "6", "--stats", stats_path,
           "--status-interval", "0"]
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: len(_records(rec)) >= 10, 90), proc.stderr.read() if proc.poll() is not None else "no records"
        make_variant(signed_bundle, ota / "shapes-v2.bundle", minutes=1, key=keys["key"], staging=staging)
        assert wait_until(lambda: _events(rec, "committed"), 90), "no swap event"
        bad = {
            "unsigned": dict(minutes=2),
            "corrupt": dict(minutes=3, key=keys["key"], before_publish=corrupt_onnx),
            "device": dict(minutes=4, key=keys["key"], rename_device="orin-nx-16gb"),
            "blind": dict(minutes=5, key=keys["key"], onnx_transform=zero_scores),
        }
        for name, kw in bad.items():
            make_variant(signed_bundle, ota / f"shapes-{name}.bundle", staging=staging, **kw)
            assert wait_until(lambda n=name: any(f"shapes-{n}" in str(e.get("path")) for e in _events(rec)), 90), name
        n_before = len(_records(rec))
        assert wait_until(lambda: len(_records(rec)) >= n_before + 5, 60)  # the v2 model keeps running
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        rec_final = _records(rec)
        rec.stop()
    assert proc.returncode == 143, err
    events = [r for r in rec_final if r.get("event") == "model_swap"]
    by_path = {Path(e["path"]).name: e for e in events}
    assert by_path["shapes-v2.bundle"]["status"] == "committed"
    reasons = {n: by_path[f"shapes-{n}.bundle"] for n in bad}
    assert all(e["status"] == "refused" for e in reasons.values()), reasons
    assert "not signed" in reasons["unsigned"]["reason"]
    assert "corrupt" in reasons["corrupt"]["reason"]
    assert "no entry for this device" in reasons["device"]["reason"]
    assert "agree" in reasons["blind"]["reason"]

    frames = sorted((r for r in rec_final if "frame_index" in r), key=lambda r: r["frame_index"])
    stats = json.loads(stats_path.read_text())
    assert [r["frame_index"] for r in frames] == list(range(stats["frames_out"]))  # each frame exactly once
    ids = [r["model_id"] for r in frames]
    switches = [i for i in range(1, len(ids)) if ids[i] != ids[i - 1]]
    v2 = by_path["shapes-v2.bundle"]
    assert len(switches) == 1 and frames[switches[0]]["frame_index"] == v2["first_frames"]["0"]
    assert ids[0].startswith("shapes-v1@") and ids[-1] == v2["to_model_id"] and ids[-1].startswith("shapes-v2@")
    assert stats["model"]["model_id"] == v2["to_model_id"]
    assert stats["uplink"]["queued"] == 0  # nothing left behind: every record reached the receiver
    assert os.path.isdir(ota / "shapes-v1.bundle")  # kept for rollback (--keep 3)
