"""Credentials (plaintext refused, URL user info used), server hints (Retry-After) and broker refusal reasons."""
from __future__ import annotations

import base64
import email.utils
import logging
import subprocess
import time

import pytest
from uplink_receivers import Broker, wait_until

from edgeinfer.errors import ConfigError
from edgeinfer.uplink import Uplink
from edgeinfer.uplink.transports import HttpTransport

TOPIC = "edgeinfer/test/auth"


@pytest.mark.parametrize("url, kwargs, what", [
    ("http://10.1.2.3/ingest", {"token": "t0k"}, "Authorization"),
    ("http://ingest.example.com/x?header_env=X-Api-Key:EI_TEST_KEY", {}, "X-Api-Key"),
    ("http://alice:pw@10.1.2.3/ingest", {}, "Authorization"),
    ("mqtt://10.1.2.3:1883/t", {"username": "u", "password": "pw"}, "MQTT password"),
    ("mqtt://u:pw@10.1.2.3:1883/t", {}, "MQTT password"),
])
def test_credentials_over_plaintext_to_the_network_are_refused(tmp_path, monkeypatch, url, kwargs, what):
    monkeypatch.setenv("EI_TEST_KEY", "k-42")
    with pytest.raises(ConfigError, match="in clear text") as err:
        Uplink(url, spool_dir=tmp_path / "spool", **kwargs)
    assert what in str(err.value) and "allow_plaintext_credentials" in str(err.value)
    assert "pw" not in str(err.value) and "t0k" not in str(err.value)  # the message never shows the secret
    assert not (tmp_path / "spool").exists()  # refused before anything was created


def test_plaintext_opt_in_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="edgeinfer.uplink"):
        t = HttpTransport("http://10.1.2.3/ingest?allow_plaintext=1", token="t0k")
    assert t.headers["Authorization"] == "Bearer t0k"
    assert any("clear text" in r.getMessage() and "10.1.2.3" in r.getMessage() for r in caplog.records)


def test_user_info_in_http_url_is_sent_as_basic_auth(tmp_path, receiver):
    url = receiver.url.replace("http://", "http://alice:s%3Acr%40t@")  # percent-encoded ':' and '@'
    with Uplink(url, spool_dir=tmp_path / "spool") as up:
        assert "alice" not in up.url and "s%3A" not in up.url  # stats/logs show no credentials
        up.put({"n": 1})
        assert wait_until(lambda: len(receiver.by_key) == 1, 10)
    assert receiver.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:s:cr@t").decode()


@pytest.mark.integration
@pytest.mark.parametrize("value", ["seconds", "http-date"])
def test_retry_after_is_honoured(tmp_path, receiver, value):
    header = "2" if value == "seconds" else email.utils.formatdate(time.time() + 3, usegmt=True)
    receiver.answer_first = [(503 if value == "seconds" else 429, {"Retry-After": header})]
    with Uplink(receiver.url, spool_dir=tmp_path / "spool", backoff_initial=0.05, backoff_max=0.1) as up:
        up.put({"n": 1})
        assert wait_until(lambda: len(receiver.by_key) == 1, 15)
    gap = receiver.times[1] - receiver.times[0]
    assert gap >= 1.9, gap  # without the hint the retry came after 0.05-0.1 s
    assert gap < 6.0


def _auth_broker(tmp_path):
    broker = Broker(tmp_path)
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "cam7", "right-pw"], check=True, capture_output=True)
    pw.chmod(0o600)
    text = broker.conf.read_text().replace("allow_anonymous true", f"allow_anonymous false\npassword_file {pw}")
    broker.conf.write_text(text)
    return broker.start()


@pytest.mark.integration
def test_mqtt_user_info_authenticates_and_a_refusal_keeps_the_broker_reason(tmp_path):
    broker = _auth_broker(tmp_path)
    try:
        good = f"mqtt://cam7:right-pw@127.0.0.1:{broker.port}/{TOPIC}"
        with Uplink(good, spool_dir=tmp_path / "good") as up:
            for n in range(5):
                up.put({"n": n})
            assert wait_until(lambda: up.stats()["sent"] == 5, 15)  # PUBACKs from a broker that demands a password
        bad = f"mqtt://cam7:wrong@127.0.0.1:{broker.port}/{TOPIC}"
        with Uplink(bad, spool_dir=tmp_path / "bad", backoff_initial=0.1, backoff_max=0.2) as up:
            up.put({"n": 0})
            assert wait_until(lambda: up.stats()["retries"] >= 1, 15)
            stats = up.stats()
        assert stats["sent"] == 0 and stats["state"] == "backing_off"
        reason = stats["last_error"].lower()
        assert "refused the connection" in reason
        assert "bad user name or password" in reason or "not authori" in reason, stats["last_error"]
    finally:
        broker.stop()
