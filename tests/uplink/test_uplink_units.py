"""Backoff bounds, idempotency keys across restarts, ordering per source, URIs and bad settings."""
from __future__ import annotations

import json
import random
import time
from collections import defaultdict

import pytest
from uplink_receivers import wait_until

from edgeinfer.errors import ConfigError, UplinkError
from edgeinfer.uplink import Backoff, Uplink
from edgeinfer.uplink.identity import boot_id


def test_backoff_grows_within_jitter_bounds_and_caps():
    b = Backoff(initial=0.5, cap=8.0, rng=random.Random(1))
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for top in ceilings:
        for _ in range(1):
            d = b.next_delay()
            assert top / 2 <= d <= top
    b.reset()
    assert 0.25 <= b.next_delay() <= 0.5


def test_backoff_jitter_spreads_and_survives_huge_failure_counts():
    delays = []
    for seed in range(200):
        b = Backoff(initial=1.0, cap=30.0, rng=random.Random(seed))
        b.failures = 10
        delays.append(b.next_delay())
    assert min(delays) >= 15.0 and max(delays) <= 30.0
    assert max(delays) - min(delays) > 5.0  # really jittered, not a constant
    b = Backoff(initial=1.0, cap=30.0)
    b.failures = 10_000  # weeks offline: no float overflow
    assert 15.0 <= b.next_delay() <= 30.0


def test_backoff_rejects_bad_settings():
    with pytest.raises(ConfigError):
        Backoff(initial=0, cap=1)
    with pytest.raises(ConfigError):
        Backoff(initial=5, cap=1)


def test_boot_id_falls_back_to_per_process_id(tmp_path):
    assert boot_id(str(tmp_path / "missing")) == boot_id(str(tmp_path / "also-missing"))
    f = tmp_path / "boot_id"
    f.write_text("12345678-aaaa-bbbb-cccc-000000000000\n")
    assert boot_id(str(f)) == "12345678"


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_keys_unique_and_seq_monotonic_across_restarts(tmp_path):
    out = tmp_path / "out.jsonl"
    for run in range(3):
        with Uplink(f"file://{out}", spool_dir=tmp_path / "spool", device_id="cam-1") as up:
            for i in range(50):
                assert up.put({"run": run, "n": i})
    envs = _lines(out)
    assert len(envs) == 150
    keys = [e["key"] for e in envs]
    assert len(set(keys)) == 150
    seqs = [e["seq"] for e in envs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 150
    assert all(k.startswith("cam-1:") for k in keys)
    assert [(e["record"]["run"], e["record"]["n"]) for e in envs] == [(r, i) for r in range(3) for i in range(50)]


def test_fresh_spool_never_reuses_keys(tmp_path):
    out = tmp_path / "out.jsonl"
    for spool in ("a", "b"):  # e.g. after a wiped or quarantined spool: seq restarts, the epoch differs
        with Uplink(f"file://{out}", spool_dir=tmp_path / spool, device_id="cam-1") as up:
            up.put({"n": 1})
    keys = [e["key"] for e in _lines(out)]
    assert len(keys) == 2 and keys[0] != keys[1]


def test_order_kept_per_source_through_server_errors(tmp_path, receiver):
    # Every third request fails with 500; each source must still arrive in order (first arrivals).
    receiver.fail_every = 3
    up = Uplink(receiver.url, spool_dir=tmp_path / "spool", batch_size=7, backoff_initial=0.01, backoff_max=0.05)
    counters = defaultdict(int)
    rng = random.Random(3)
    for i in range(600):
        src = f"cam{rng.randrange(4)}"
        up.put({"source": src, "i": counters[src], "n": i})
        counters[src] += 1
    assert wait_until(lambda: len(receiver.by_key) == 600, 60)
    up.close()
    assert up.stats()["retries"] > 0  # the failures really happened
    first_seen = []
    seen = set()
    for key in receiver.arrivals:
        if key not in seen:
            seen.add(key)
            first_seen.append(receiver.by_key[key]["record"])
    per_source = defaultdict(list)
    for rec in first_seen:
        per_source[rec["source"]].append(rec["i"])
    for src, seq in per_source.items():
        assert seq == list(range(counters[src])), src


def test_unknown_scheme_and_bad_settings(tmp_path):
    with pytest.raises(UplinkError, match="unknown uplink URI scheme") as err:
        Uplink("ftp://example.com/x", spool_dir=tmp_path / "s")
    assert "mqtt" in str(err.value)  # the hint lists what works
    with pytest.raises(ConfigError):
        Uplink("file://x.jsonl", spool_dir=tmp_path / "s", full_policy="drop_newest")
    with pytest.raises(ConfigError):
        Uplink("file://x.jsonl", spool_dir=tmp_path / "s", fsync="sometimes")
    with pytest.raises(ConfigError):
        Uplink("mqtt://127.0.0.1:1883/a/#", spool_dir=tmp_path / "s")
    with pytest.raises(UplinkError, match="EDGEINFER_TEST_NO_SUCH_TOKEN"):
        Uplink("http://127.0.0.1:9/x?token_env=EDGEINFER_TEST_NO_SUCH_TOKEN", spool_dir=tmp_path / "s")


def test_one_uplink_per_spool_dir(tmp_path):
    with Uplink(f"file://{tmp_path}/a.jsonl", spool_dir=tmp_path / "spool"):
        with pytest.raises(UplinkError, match="in use"):
            Uplink(f"file://{tmp_path}/b.jsonl", spool_dir=tmp_path / "spool")


def test_unserializable_and_after_close_are_counted(tmp_path):
    out = tmp_path / "out.jsonl"
    up = Uplink(f"file://{out}", spool_dir=tmp_path / "spool")
    loop = {}
    loop["self"] = loop
    assert up.put({"ok": 1})
    assert up.put({"loop": loop})  # accepted by put (no serialisation there), dropped by the writer
    with pytest.raises(UplinkError, match="takes a dict"):
        up.put("not a record")
    up.close()
    assert up.put({"late": 1}) is False
    stats = up.stats()
    assert stats["drops"]["unserializable"] == 1
    assert stats["drops"]["after_close"] == 1
    assert [e["record"] for e in _lines(out)] == [{"ok": 1}]


def test_ring_overflow_is_counted_not_blocking(tmp_path, receiver):
    receiver.stop()
    up = Uplink(receiver.url, spool_dir=tmp_path / "spool", ring_size=10, flush_interval=5.0)
    results = [up.put({"n": i}) for i in range(25)]
    assert results.count(True) >= 10 and results.count(False) >= 1
    assert up.stats()["drops"]["ring_overflow"] == results.count(False)
    up.close(timeout=0.5)
    assert up.stats()["drops"]["ring_overflow"] == results.count(False)  # persisted
    assert up.stats()["queued"] == results.count(True)


@pytest.mark.parametrize("fsync", ["always", "off"])
def test_fsync_modes_deliver_in_order(tmp_path, fsync):
    out = tmp_path / "out.jsonl"
    with Uplink(f"file://{out}", spool_dir=tmp_path / "spool", fsync=fsync) as up:
        for n in range(40):
            up.put({"n": n})
    assert [e["record"]["n"] for e in _lines(out)] == list(range(40))
    assert [e["seq"] for e in _lines(out)] == list(range(40))


def test_health_flags_a_sender_that_overruns_its_deadline():
    from edgeinfer.uplink.health import Health

    h = Health(send_budget=0.05, slack=0.05)
    h.busy()  # a send starts: due back within budget + slack
    ok = h.report(sender_alive=True, writer_alive=True, closed=False, state="connected")
    assert ok["ok"] and not ok["stuck"]
    time.sleep(0.2)
    late = h.report(sender_alive=True, writer_alive=True, closed=False, state="connected")
    assert late["stuck"] and not late["ok"] and "past its deadline" in late["problems"][0]
    h.idle(60.0)  # a long backoff wait is not "stuck"
    assert h.report(sender_alive=True, writer_alive=True, closed=False, state="backing_off")["ok"]
    dead = h.report(sender_alive=False, writer_alive=True, closed=False, state="backing_off")
    assert dead["problems"] == ["sender thread is not running"]
