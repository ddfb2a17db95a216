"""`edgeinfer uplink status SPOOL_DIR` reads the spool from disk; clear errors for non-spools."""
from __future__ import annotations

import json

from uplink_receivers import free_port

from edgeinfer.uplink import Uplink


def _offline_spool(tmp_path, n):
    spool = tmp_path / "spool"
    url = f"http://127.0.0.1:{free_port()}/ingest"  # nobody listens: everything stays queued
    up = Uplink(url, spool_dir=spool, ring_size=3, flush_interval=5.0, backoff_initial=5.0)
    accepted = sum(up.put({"n": i}) for i in range(n))
    up.close(timeout=0.3)
    return spool, accepted


def test_status_json_shows_queue_and_drops(tmp_path, run_cli):
    spool, accepted = _offline_spool(tmp_path, 50)  # a ring of 3 overflows in a burst of 50 puts
    res = run_cli("uplink", "status", spool, "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert 3 <= accepted < 50 and info["queued"] == accepted
    assert info["drops"] == {"ring_overflow": 50 - accepted} and info["dropped_total"] == 50 - accepted
    assert info["spool_bytes"] > 0 and info["oldest_age_s"] >= 0
    assert info["last_ack"] is None and info["sent"] == 0


def test_status_text(tmp_path, run_cli):
    spool, _ = _offline_spool(tmp_path, 2)
    res = run_cli("uplink", "status", spool)
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(None, 1) for line in res.stdout.splitlines() if not line.startswith(("oldest", "last")))
    assert lines["queued"].strip() == "2"
    assert "last ack       never" in res.stdout


def test_status_errors_for_missing_and_non_spool_dirs(tmp_path, run_cli):
    res = run_cli("uplink", "status", tmp_path / "nope")
    assert res.returncode == 1 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("uplink", "status", tmp_path)
    assert res.returncode == 1 and "not an uplink spool" in res.stderr
    (tmp_path / "spool.db").write_bytes(b"garbage" * 1000)
    res = run_cli("uplink", "status", tmp_path)
    assert res.returncode == 1 and "cannot be read" in res.stderr and "Traceback" not in res.stderr
