"""Where records go: ``http(s)://`` JSON batch POST, ``file://`` JSON lines (``mqtt(s)://`` in mqtt.py).

A transport sends a batch of ``(seq, envelope_bytes)`` and returns the seqs the far end
acknowledged; anything else raises :class:`SendError` (with the seqs that *were* acknowledged
for a partly sent batch). Transports never touch the spool: deleting is the sender's job.

Example:
    >>> t = make_transport("file:///tmp/edgeinfer-doctest.jsonl")
    >>> t.send([(0, b'{"key":"k0"}')])
    [0]
    >>> t.close()
"""
from __future__ import annotations

import gzip as gzip_mod
import http.client
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import ConfigError, UplinkError

log = logging.getLogger(__name__)

Batch = Sequence[Tuple[int, bytes]]
SCHEME_HINT = ("use http(s)://host[:port]/path, mqtt(s)://host[:port]/topic or file://path/results.jsonl "
               "(see docs/uplink.md)")
# Status codes that say "this batch will never be accepted as it is": split it, then drop the culprit.
REJECTED_STATUSES = (400, 413, 415, 422)


class SendError(Exception):
    """A send that did not (fully) go through. ``acked``: seqs delivered anyway; ``rejected``: permanent."""

    def __init__(self, message: str, *, acked: Sequence[int] = (), rejected: bool = False) -> None:
        super().__init__(message)
        self.acked = list(acked)
        self.rejected = rejected


def env_value(var: str, what: str) -> str:
    """The value of environment variable ``var``; UplinkError when unset (naming the variable)."""
    value = os.environ.get(var)
    if value is None:
        raise UplinkError(f"environment variable {var} (the uplink {what}) is not set",
                          hint=f"export {var}=... before starting, or pass the {what} as a keyword argument")
    return value


def redact(url: str) -> str:
    """The URL without query string or user info, safe for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class FileTransport:
    """Append envelopes as JSON lines; flush (and fsync unless fsync="off") before acknowledging."""

    name = "file"

    def __init__(self, url: str, *, fsync: str = "batch") -> None:
        parts = urlsplit(url)
        raw = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not raw:
            raise ConfigError(f"file URI {url!r} names no file", hint="use file://results.jsonl or file:///abs/path.jsonl")
        self.path = Path(raw)
        self.fsync = fsync
        self._fh: Optional[Any] = None
        self.connected = False

    def send(self, batch: Batch) -> List[int]:
        try:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "ab")
            self._fh.write(b"\n".join(body for _, body in batch) + b"\n")
            self._fh.flush()
            if self.fsync != "off":
                os.fsync(self._fh.fileno())
        except OSError as exc:
            self.close()
            raise SendError(f"cannot append to {self.path}: {exc}") from exc
        self.connected = True
        return [seq for seq, _ in batch]

    def abort(self) -> None:
        """Nothing to interrupt: file writes do not hang on the network."""

    def close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None
        self.connected = False


class HttpTransport:
    """POST ``{"records": [envelope, ...]}`` to the URL over one kept-alive connection; 2xx = acknowledged.

    URL query options (removed before sending): ``token_env=VAR`` (``Authorization: Bearer $VAR``),
    ``header_env=Name:VAR`` (header ``Name: $VAR``), ``gzip=1``, ``ca=/path/ca.pem``, ``timeout=S``.
    """

    name = "http"

    def __init__(self, url: str, *, token: Optional[str] = None, headers: Optional[Dict[str, str]] = None,
                 gzip: bool = False, timeout: float = 10.0, ca_file: Optional[str] = None,
                 verify_tls: bool = True) -> None:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ConfigError(f"HTTP uplink URI {url!r} has no host", hint="use http://host:port/path")
        options, kept = {}, []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in ("token_env", "header_env", "gzip", "ca", "timeout"):
                options[key] = value
            else:
                kept.append((key, value))
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{urlencode(kept)}" if kept else "")
        self.gzip = gzip or options.get("gzip", "0").lower() in ("1", "true", "yes")
        self.timeout = float(options.get("timeout", timeout))
        self.headers = {"Content-Type": "application/json", "User-Agent": "edgeinfer-uplink"}
        if "token_env" in options:
            token = env_value(options["token_env"], "bearer token")
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        if "header_env" in options:
            name, sep, var = options["header_env"].partition(":")
            if not sep or not name or not var:
                raise ConfigError(f"bad header_env={options['header_env']!r}", hint="use header_env=X-Api-Key:MY_ENV_VAR")
            self.headers[name] = env_value(var, f"{name} header")
        self.headers.update(headers or {})
        self._ssl = self._ssl_context(options.get("ca", ca_file), verify_tls) if self.https else None
        self._conn: Optional[http.client.HTTPConnection] = None
        self.connected = False

    @staticmethod
    def _ssl_context(ca_file: Optional[str], verify: bool) -> ssl.SSLContext:
        if ca_file and not os.path.isfile(ca_file):
            raise ConfigError(f"CA file {ca_file} does not exist", hint="pass ca_file= (or ?ca=) pointing at a PEM bundle")
        ctx = ssl.create_default_context(cafile=ca_file)
        if not verify:  # explicit opt-out only; verification is on by default
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.https:
                self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._ssl)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def send(self, batch: Batch) -> List[int]:
        body = b'{"records":[' + b",".join(b for _, b in batch) + b"]}"
        headers = dict(self.headers)
        if self.gzip:
            body = gzip_mod.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        try:
            conn = self._connection()
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            detail = resp.read(2048)
            while resp.read(65536):  # drain so the connection can be reused
                pass
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise SendError(f"POST to {self.host}:{self.port} failed: {exc!r}") from exc
        if resp.will_close:
            self.close()
        if 200 <= resp.status < 300:
            self.connected = True
            return [seq for seq, _ in batch]
        text = detail[:200].decode("utf-8", "replace").strip()
        raise SendError(f"server answered HTTP {resp.status} {resp.reason}: {text}",
                        rejected=resp.status in REJECTED_STATUSES)

    def abort(self) -> None:
        """Unblock a send stuck on a hung server (called from another thread at close)."""
        conn = self._conn
        sock = getattr(conn, "sock", None) if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None
        self.connected = False


def make_transport(url: str, **options: Any):
    """The transport for ``url``'s scheme; keyword options not used by that scheme are ignored.

    Raises:
        UplinkError: unknown scheme (with the supported forms as hint).
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        keys = ("token", "headers", "gzip", "timeout", "ca_file", "verify_tls")
        return HttpTransport(url, **{k: v for k, v in options.items() if k in keys and v is not None})
    if scheme in ("mqtt", "mqtts"):
        from .mqtt import MqttTransport

        keys = ("client_id", "username", "password", "ca_file", "verify_tls", "timeout", "max_inflight",
                "records_per_message")
        return MqttTransport(url, **{k: v for k, v in options.items() if k in keys and v is not None})
    if scheme == "file":
        return FileTransport(url, fsync=options.get("fsync") or "batch")
    raise UplinkError(f"unknown uplink URI scheme {scheme or '(none)'!r} in {redact(url)!r}", hint=SCHEME_HINT)
