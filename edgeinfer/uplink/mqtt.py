"""``mqtt(s)://host[:port]/topic``: one QoS 1 message per record through paho-mqtt 2.x.

Why a fresh paho client per connection, with ``clean_session=True``: paho's own session is
memory-only and its message ids restart on every connection (paho.mqtt.python#634), so it can
neither survive a restart nor identify a record. Our spool is the durable session; a record is
deleted only after its PUBACK arrives on the connection that sent it. Letting paho also replay
its in-memory queue on reconnect would only add duplicates and unbounded memory.

By default each message carries one record envelope. ``records_per_message=N`` packs up to N
envelopes into one message as ``{"records": [...]}`` (the HTTP body format): paho's per-message
Python cost is the throughput limit on a small CPU, so packing multiplies records/s.

URL query options: ``username_env=VAR``, ``password_env=VAR`` (defaults: $EDGEINFER_MQTT_USERNAME,
$EDGEINFER_MQTT_PASSWORD when set), ``ca=/path/ca.pem``, ``timeout=S`` (PUBACK wait),
``records_per_message=N``, ``allow_plaintext=1``. ``mqtt://user:password@host/topic`` sets the
username and password. A password over ``mqtt://`` to a host other than loopback is refused
without the opt-in. A broker's refusal keeps its reason (e.g. "Bad user name or password").

Example:
    >>> t = MqttTransport("mqtt://127.0.0.1:1883/edgeinfer/results", client_id="cam-7")  # doctest: +SKIP
    >>> t.send([(0, b'{"key":"cam-7:..."}')])  # doctest: +SKIP
    [0]
"""
from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from typing import Any, Dict, List, Optional, Set
from urllib.parse import parse_qsl, urlsplit

from .._deps import require
from ..errors import ConfigError
from .transports import Batch, SendError, check_plaintext, env_value, plaintext_opt_in, url_credentials

log = logging.getLogger(__name__)


class MqttTransport:
    """Publish each envelope with QoS 1 and report which seqs got a PUBACK."""

    name = "mqtt"

    def __init__(self, url: str, *, client_id: str, username: Optional[str] = None,
                 password: Optional[str] = None, ca_file: Optional[str] = None, verify_tls: bool = True,
                 timeout: float = 10.0, max_inflight: int = 100, records_per_message: int = 1,
                 allow_plaintext_credentials: bool = False) -> None:
        self._mqtt = require("paho.mqtt.client", feature="the MQTT uplink")
        parts = urlsplit(url)
        self.topic = parts.path.lstrip("/")
        # A '#' starts a URL fragment, so look for wildcards in the raw URL too.
        if not parts.hostname or not self.topic or "+" in self.topic or "#" in url:
            raise ConfigError(f"MQTT uplink URI {url!r} needs a host and a topic without wildcards",
                              hint="use mqtt://broker:1883/edgeinfer/results")
        options: Dict[str, str] = dict(parse_qsl(parts.query))
        self.tls = parts.scheme == "mqtts"
        self.host, self.port = parts.hostname, parts.port or (8883 if self.tls else 1883)
        self.client_id = client_id
        self._reason: Optional[str] = None
        url_user, url_password = url_credentials(url)
        if url_user is not None and (username or password):
            raise ConfigError("MQTT credentials both in the URL and as arguments", hint="give them one way")
        self.username = url_user or username or _env_option(options, "username_env", "EDGEINFER_MQTT_USERNAME",
                                                            "MQTT username")
        self.password = (url_password if url_user is not None else password) or _env_option(
            options, "password_env", "EDGEINFER_MQTT_PASSWORD", "MQTT password")
        if self.password and not self.username:
            raise ConfigError("an MQTT password without a username", hint="set the username too (MQTT 3.1.1 §3.1.2.9)")
        if not self.tls:
            check_plaintext(url, self.host, ["the MQTT password"] if self.password else [],
                            plaintext_opt_in(options, allow_plaintext_credentials))
        self.ca_file = options.get("ca", ca_file)
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise ConfigError(f"CA file {self.ca_file} does not exist", hint="pass ca_file= (or ?ca=) pointing at a PEM bundle")
        self.verify_tls = verify_tls
        self.timeout = float(options.get("timeout", timeout))
        self.max_inflight = int(max_inflight)
        self.records_per_message = int(options.get("records_per_message", records_per_message))
        if self.records_per_message < 1:
            raise ConfigError(f"records_per_message={self.records_per_message}", hint="use 1 or more")
        self._client: Any = None
        self._cond = threading.Condition()
        self._acked: Set[int] = set()
        self._connack: Optional[bool] = None
        self._lost = False
        self.connected = False

    # ------------------------------------------------------------ paho callbacks (network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cond:
            self._connack = not reason_code.is_failure
            self._reason = None if self._connack else str(reason_code)  # e.g. "Bad user name or password"
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cond:
            self._lost = True
            self._cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if getattr(reason_code, "is_failure", False):
            return  # MQTT 5 broker refused it: not acknowledged, it will be retried
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    # ------------------------------------------------------------ connection
    def _connect(self) -> None:
        mqtt = self._mqtt
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True,
                             protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        client.max_inflight_messages_set(self.max_inflight)
        if self.tls:
            client.tls_set(ca_certs=self.ca_file, cert_reqs=ssl.CERT_REQUIRED if self.verify_tls else ssl.CERT_NONE)
            client.tls_insecure_set(not self.verify_tls)
        if self.username:
            client.username_pw_set(self.username, self.password)
        client.on_connect, client.on_disconnect, client.on_publish = self._on_connect, self._on_disconnect, self._on_publish
        with self._cond:
            self._connack, self._lost, self._reason = None, False, None
        self._client = client
        try:
            client.connect(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as exc:
            self._teardown()
            raise SendError(f"cannot connect to MQTT broker {self.host}:{self.port}: {exc!r}") from exc
        client.loop_start()
        with self._cond:
            self._cond.wait_for(lambda: self._connack is not None or self._lost, timeout=self.timeout)
            ok = bool(self._connack) and not self._lost
            reason = self._reason or (f"no CONNACK within {self.timeout:.0f} s" if self._connack is None
                                      else "connection closed")
        if not ok:
            self._teardown()
            raise SendError(f"MQTT broker {self.host}:{self.port} refused the connection: {reason}")
        self.connected = True

    def _teardown(self) -> None:
        client, self._client = self._client, None
        self.connected = False
        if client is None:
            return
        try:
            client.disconnect()
        except Exception as exc:  # noqa: BLE001 - paho raises assorted errors on a dead socket
            log.debug("uplink mqtt: disconnect failed: %r", exc)
        client.loop_stop()

    # ------------------------------------------------------------ sending
    def send(self, batch: Batch) -> List[int]:
        if self._client is None or self._lost:
            self._teardown()
            self._connect()
        mqtt, client = self._mqtt, self._client
        with self._cond:
            self._acked.clear()
        mids: Dict[int, List[int]] = {}
        error = None
        k = self.records_per_message
        for i in range(0, len(batch), k):
            part = batch[i:i + k]
            payload = part[0][1] if k == 1 else b'{"records":[' + b",".join(b for _, b in part) + b"]}"
            info = client.publish(self.topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                error = f"publish failed: {mqtt.error_string(info.rc)}"
                break
            mids[info.mid] = [seq for seq, _ in part]
        deadline = time.monotonic() + self.timeout
        with self._cond:
            self._cond.wait_for(lambda: self._lost or self._acked.issuperset(mids),
                                timeout=max(0.0, deadline - time.monotonic()))
            acked = sorted(seq for mid, seqs in mids.items() if mid in self._acked for seq in seqs)
            lost = self._lost
        if error is None and len(acked) == len(batch):
            return acked
        self._teardown()  # a fresh connection next time: paho mids are not durable across it
        reason = error or ("connection lost" if lost else f"no PUBACK within {self.timeout:.0f} s")
        raise SendError(f"MQTT {self.host}:{self.port}: {reason} ({len(acked)}/{len(batch)} acknowledged)", acked=acked)

    def abort(self) -> None:
        """Wake a send waiting for PUBACKs (called from another thread at close)."""
        with self._cond:
            self._lost = True
            self._cond.notify_all()

    def close(self) -> None:
        self._teardown()


def _env_option(options: Dict[str, str], key: str, default_var: str, what: str) -> Optional[str]:
    if key in options:
        return env_value(options[key], what)
    return os.environ.get(default_var)
