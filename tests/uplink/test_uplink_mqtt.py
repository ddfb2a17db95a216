"""MQTT uplink against a real Mosquitto broker: QoS 1 delivery, broker restart mid-stream."""
from __future__ import annotations

import time

import pytest
from uplink_receivers import Broker, Producer, Subscriber, free_port, wait_until

from edgeinfer.uplink import Uplink

TOPIC = "edgeinfer/test/results"


@pytest.mark.integration
def test_mqtt_delivers_every_record_once_keyed(tmp_path, broker):
    sub = Subscriber(broker.port, TOPIC)
    try:
        with Uplink(f"mqtt://127.0.0.1:{broker.port}/{TOPIC}", spool_dir=tmp_path / "spool",
                    device_id="cam-9", batch_size=100) as up:
            for n in range(1000):
                up.put({"source": f"cam{n % 2}", "n": n})
            assert wait_until(lambda: up.stats()["queued"] == 0, 30)
            stats = up.stats()
        assert wait_until(lambda: len(sub.by_key) == 1000, 10)
        assert sorted(sub.values()) == list(range(1000))
        assert stats["sent"] == 1000 and stats["state"] == "connected"
        assert all(key.startswith("cam-9:") for key in sub.by_key)
    finally:
        sub.close()


@pytest.mark.integration
def test_mqtt_packs_records_per_message(tmp_path, broker):
    sub = Subscriber(broker.port, TOPIC)
    try:
        url = f"mqtt://127.0.0.1:{broker.port}/{TOPIC}?records_per_message=25"
        with Uplink(url, spool_dir=tmp_path / "spool", batch_size=100) as up:
            for n in range(500):
                up.put({"n": n})
            assert wait_until(lambda: up.stats()["queued"] == 0, 30)
        assert wait_until(lambda: len(sub.by_key) == 500, 10)
        assert sorted(sub.values()) == list(range(500))
        assert 20 <= sub.messages < 100  # really packed (25 a message when batches are full)
    finally:
        sub.close()


@pytest.mark.integration
@pytest.mark.parametrize("per_message", [1, 10])
def test_broker_restart_mid_stream_loses_nothing(tmp_path, broker, per_message):
    sub = Subscriber(broker.port, TOPIC)
    up = Uplink(f"mqtt://127.0.0.1:{broker.port}/{TOPIC}", spool_dir=tmp_path / "spool",
                batch_size=50, backoff_initial=0.1, backoff_max=0.5, timeout=3.0, records_per_message=per_message)
    producer = Producer(up, period=0.002)
    produced = producer.produced
    try:
        producer.start()
        assert wait_until(lambda: len(sub.by_key) > 200, 20)
        broker.stop()  # graceful: the broker persists the subscriber's session and queue
        time.sleep(2.0)
        during = up.stats()
        broker.start()
        time.sleep(1.5)
        producer.stop()
        assert during["state"] == "backing_off" and during["retries"] > 0
        assert wait_until(lambda: up.stats()["queued"] == 0, 30)
        wait_until(lambda: len(sub.by_key) >= len(produced), 20)
        missing = sorted(set(produced) - set(sub.values()))
        assert not missing, (len(produced), missing[:20], len(missing), during)
    finally:
        producer.stop()
        up.close()
        sub.close()


@pytest.mark.integration
def test_mqtts_with_ca_file(tmp_path, tls_cert):
    broker = Broker(tmp_path)
    tls_port = free_port()
    with broker.conf.open("a") as fh:
        fh.write(f"listener {tls_port} 127.0.0.1\ncertfile {tls_cert[0]}\nkeyfile {tls_cert[1]}\n")
    broker.start()
    sub = Subscriber(broker.port, TOPIC)  # plain listener for the test's own subscriber
    try:
        url = f"mqtts://127.0.0.1:{tls_port}/{TOPIC}"
        with Uplink(url, spool_dir=tmp_path / "spool", ca_file=str(tls_cert[0])) as up:
            for n in range(20):
                up.put({"n": n})
            assert wait_until(lambda: len(sub.by_key) == 20, 15)
        assert sorted(sub.values()) == list(range(20))
    finally:
        sub.close()
        broker.stop()
