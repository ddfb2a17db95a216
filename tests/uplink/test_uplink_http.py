"""HTTP uplink against a real stdlib server: outages, hangs, errors, full spool, corrupt spool."""
from __future__ import annotations

import logging
import os
import time

import pytest
from uplink_receivers import Producer, Receiver, wait_until

from edgeinfer.uplink import Uplink, read_spool_status


def _produce(up, start, stop, rate_hz, produced):
    for n in range(start, stop):
        if up.put({"source": "cam0", "n": n}):
            produced.append(n)
        time.sleep(1.0 / rate_hz)


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("down_s", [30.0])
def test_server_down_then_up_loses_nothing(tmp_path, receiver, down_s):
    up = Uplink(receiver.url, spool_dir=tmp_path / "spool", batch_size=50, backoff_initial=0.1, backoff_max=2.0)
    producer = Producer(up, period=0.02).start()
    produced = producer.produced
    time.sleep(1.0)
    receiver.stop()
    time.sleep(down_s)
    during = up.stats()
    receiver.start()
    time.sleep(1.0)
    producer.stop()
    assert during["state"] == "backing_off" and during["queued"] > 0 and during["oldest_age_s"] > down_s / 2
    assert wait_until(lambda: len(receiver.by_key) >= len(produced), 30)
    stats = up.stats()
    up.close()
    assert sorted(receiver.values()) == produced  # all of them, none invented, after de-duplication
    assert stats["retries"] > 0 and stats["state"] == "connected" and stats["dropped_total"] == 0


@pytest.mark.integration
def test_put_never_blocks_while_server_hangs(tmp_path, receiver):
    receiver.mode = "hang"
    up = Uplink(receiver.url, spool_dir=tmp_path / "spool", timeout=30.0, backoff_initial=0.05, backoff_max=0.2)
    up.put({"n": 0})
    assert wait_until(lambda: receiver.hanging >= 1, 10)  # the sender is stuck inside a request now
    worst, t0 = 0.0, time.perf_counter()
    for n in range(1, 5001):
        a = time.perf_counter()
        assert up.put({"n": n})
        worst = max(worst, time.perf_counter() - a)
    total = time.perf_counter() - t0
    # The server holds the sender for 30 s; if put() waited on it these would be seconds, not ms.
    assert total < 2.0 and worst < 0.5, (total, worst)
    receiver.mode = "ok"
    receiver.release.set()  # the hung request ends without an answer: the uplink must resend it
    assert wait_until(lambda: len(receiver.by_key) == 5001, 60)
    up.close()
    assert sorted(receiver.values()) == list(range(5001))


@pytest.mark.integration
def test_close_never_hangs_and_keeps_unsent_records(tmp_path, receiver):
    receiver.mode = "hang"
    up = Uplink(receiver.url, spool_dir=tmp_path / "spool", timeout=60.0)
    for n in range(100):
        up.put({"n": n})
    assert wait_until(lambda: receiver.hanging >= 1, 10)
    t0 = time.monotonic()
    up.close(timeout=1.0)
    assert time.monotonic() - t0 < 4.0
    assert read_spool_status(tmp_path / "spool")["queued"] == 100  # nothing acknowledged, nothing lost


@pytest.mark.integration
def test_gzip_token_and_header_from_environment(tmp_path, receiver, monkeypatch):
    monkeypatch.setenv("EI_TEST_TOKEN", "s3cret")
    monkeypatch.setenv("EI_TEST_KEY", "k-42")
    url = receiver.url + "?token_env=EI_TEST_TOKEN&gzip=1&header_env=X-Api-Key:EI_TEST_KEY"
    with Uplink(url, spool_dir=tmp_path / "spool") as up:
        for n in range(30):
            up.put({"n": n})
        assert wait_until(lambda: len(receiver.by_key) == 30, 10)
    assert receiver.headers["Authorization"] == "Bearer s3cret"
    assert receiver.headers["X-Api-Key"] == "k-42"
    assert receiver.headers["Content-Encoding"] == "gzip"


@pytest.mark.integration
def test_record_the_server_refuses_is_isolated_and_counted(tmp_path, receiver):
    receiver.reject_if = lambda env: env["record"].get("poison", False)
    with Uplink(receiver.url, spool_dir=tmp_path / "spool", batch_size=64) as up:
        for n in range(200):
            up.put({"n": n, "poison": n == 77})
        assert wait_until(lambda: len(receiver.by_key) == 199, 20)
        assert wait_until(lambda: up.stats()["queued"] == 0, 10)
        stats = up.stats()
    assert sorted(receiver.values()) == [n for n in range(200) if n != 77]
    assert stats["drops"] == {"rejected_by_server": 1}


@pytest.mark.integration
@pytest.mark.parametrize("policy", ["drop_oldest", "reject_new"])
def test_spool_full_drops_are_exactly_counted(tmp_path, receiver, policy):
    receiver.stop()
    spool = tmp_path / "spool"
    up = Uplink(receiver.url, spool_dir=spool, max_spool_bytes=20_000, full_policy=policy, backoff_initial=5.0)
    produced, accepted = 600, []
    for n in range(produced):
        if up.put({"source": "cam0", "n": n, "pad": "x" * 40}):
            accepted.append(n)
        if n % 100 == 99:
            assert up.flush(10)
    up.close(timeout=0.5)
    on_disk = read_spool_status(spool)
    assert 50 < on_disk["queued"] < produced and on_disk["spool_bytes"] <= 20_000
    receiver.start()
    with Uplink(receiver.url, spool_dir=spool, max_spool_bytes=20_000, full_policy=policy) as up2:
        assert wait_until(lambda: up2.stats()["queued"] == 0, 20)
        stats = up2.stats()
    delivered = sorted(receiver.values())
    assert len(delivered) + stats["dropped_total"] == produced
    reason = "spool_full_oldest" if policy == "drop_oldest" else "spool_full_rejected"
    assert stats["drops"] == {reason: produced - len(delivered)}
    if policy == "drop_oldest":
        assert accepted == list(range(produced))  # put() accepts; the spool evicts the oldest
        assert delivered == list(range(produced - len(delivered), produced))  # the newest survive
    else:
        # put() is truthful: exactly the records it said True for are delivered, the rest were refused there.
        assert delivered == accepted
        assert accepted[:50] == list(range(50))  # the first ones survive


@pytest.mark.integration
def test_corrupt_spool_is_quarantined_and_uplink_keeps_running(tmp_path, receiver, caplog):
    receiver.stop()
    spool = tmp_path / "spool"
    up = Uplink(receiver.url, spool_dir=spool, backoff_initial=5.0)
    for n in range(20):
        up.put({"n": n})
    up.close(timeout=0.3)
    db = spool / "spool.db"
    size = db.stat().st_size
    db.write_bytes(os.urandom(size))  # garbage over the whole file
    receiver.start()
    with caplog.at_level(logging.ERROR, logger="edgeinfer.uplink"):
        up = Uplink(receiver.url, spool_dir=spool)
    assert any("corrupt" in r.getMessage() and "quarantined" in r.getMessage() for r in caplog.records)
    quarantined = list(spool.glob("spool.db.corrupt-*"))
    assert len(quarantined) == 1 and quarantined[0].stat().st_size == size
    for n in range(100, 110):
        assert up.put({"n": n})
    assert wait_until(lambda: len(receiver.by_key) == 10, 10)
    up.close()
    assert sorted(receiver.values()) == list(range(100, 110))


@pytest.mark.integration
def test_https_verifies_the_server_by_default(tmp_path, tls_cert):
    rec = Receiver().start(tls_cert=tls_cert)
    try:
        # Self-signed and not trusted: nothing may be delivered, the error says why.
        with Uplink(rec.url, spool_dir=tmp_path / "untrusted", backoff_initial=0.1, backoff_max=0.2) as up:
            up.put({"n": 0})
            assert wait_until(lambda: up.stats()["retries"] >= 2, 10)
            stats = up.stats()
        assert "CERTIFICATE_VERIFY_FAILED" in stats["last_error"] and stats["queued"] == 1
        assert rec.by_key == {}
        with Uplink(rec.url, spool_dir=tmp_path / "trusted", ca_file=str(tls_cert[0])) as up:
            up.put({"n": 1})
            assert wait_until(lambda: len(rec.by_key) == 1, 10)
        assert rec.values() == [1]
    finally:
        rec.stop()
