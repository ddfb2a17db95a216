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

import base64
import email.utils
import gzip as gzip_mod
import http.client
import ipaddress
import logging
import os
import socket
import ssl
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from ..errors import ConfigError, UplinkError

log = logging.getLogger(__name__)

Batch = Sequence[Tuple[int, bytes]]
SCHEME_HINT = ("use http(s)://host[:port]/path, mqtt(s)://host[:port]/topic or file://path/results.jsonl "
               "(see docs/uplink.md)")
# Status codes that say "this batch will never be accepted as it is": split it, then drop the culprit.
REJECTED_STATUSES = (400, 413, 415, 422)
RETRY_AFTER_STATUSES = (429, 503)  # RFC 9110 §10.2.3: the server may say how long to wait
# Header names that carry secrets (compared lower-case; also any name holding "token", "secret" or "key").
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie")


class SendError(Exception):
    """A send that did not (fully) go through. ``acked``: seqs delivered anyway; ``rejected``: permanent;
    ``retry_after``: seconds the server asked to wait (HTTP ``Retry-After``), if it said."""

    def __init__(self, message: str, *, acked: Sequence[int] = (), rejected: bool = False,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.acked = list(acked)
        self.rejected = rejected
        self.retry_after = retry_after


def env_value(var: str, what: str) -> str:
    """The value of environment variable ``var``; UplinkError when unset (naming the variable)."""
    value = os.environ.get(var)
    if value is None:
        raise UplinkError(f"environment variable {var} (the uplink {what}) is not set",
                          hint=f"export {var}=... before starting, or pass the {what} as a keyword argument")
    return value


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: traffic that never leaves the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_plaintext(url: str, host: str, what: List[str], allowed: bool) -> None:
    """Refuse ``what`` (credential names) over a plaintext scheme to a non-loopback host unless ``allowed``.

    Raises:
        ConfigError: credentials would cross the network in clear text without the opt-in.
    """
    if not what or is_loopback(host):
        return
    scheme = urlsplit(url).scheme
    if not allowed:
        raise ConfigError(f"the uplink would send {', '.join(what)} in clear text over {scheme}:// to {host}",
                          hint=f"use {scheme}s://, or opt in with allow_plaintext_credentials=True (URL: "
                               "?allow_plaintext=1) on a network you trust")
    log.warning("uplink: sending %s in clear text over %s:// to %s (allow_plaintext_credentials is set)",
                ", ".join(what), scheme, host)


def url_credentials(url: str) -> Tuple[Optional[str], Optional[str]]:
    """(user, password) from ``scheme://user:password@host``, percent-decoded; (None, None) when absent."""
    parts = urlsplit(url)
    if parts.username is None:
        return None, None
    return unquote(parts.username), None if parts.password is None else unquote(parts.password)


def plaintext_opt_in(options: Dict[str, str], allowed: bool) -> bool:
    """The keyword opt-in, or ``?allow_plaintext=1`` in the URL."""
    return allowed or options.get("allow_plaintext", "0").lower() in ("1", "true", "yes")


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Example:
        >>> parse_retry_after("120")
        120.0
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
        10.0
        >>> parse_retry_after("soon") is None
        True
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        import datetime

        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


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
    ``header_env=Name:VAR`` (header ``Name: $VAR``), ``gzip=1``, ``ca=/path/ca.pem``, ``timeout=S``,
    ``allow_plaintext=1``. ``http://user:password@host/...`` sends HTTP Basic auth (RFC 7617).
    Credentials over ``http://`` to a host other than loopback are refused without the opt-in.
    """

    name = "http"

    def __init__(self, url: str, *, token: Optional[str] = None, headers: Optional[Dict[str, str]] = None,
                 gzip: bool = False, timeout: float = 10.0, ca_file: Optional[str] = None,
                 verify_tls: bool = True, allow_plaintext_credentials: bool = False) -> None:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ConfigError(f"HTTP uplink URI {url!r} has no host", hint="use http://host:port/path")
        options, kept = {}, []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in ("token_env", "header_env", "gzip", "ca", "timeout", "allow_plaintext"):
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
        user, password = url_credentials(url)
        if user is not None:
            if "Authorization" in self.headers:
                raise ConfigError(f"{redact(url)}: credentials in the URL and a token/Authorization header",
                                  hint="give one of them")
            pair = f"{user}:{password or ''}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        secrets = [n for n in self.headers if n.lower() in SECRET_HEADERS
                   or any(w in n.lower() for w in ("token", "secret", "key"))]
        if not self.https:
            check_plaintext(url, self.host, [f"the {n} header" for n in secrets],
                            plaintext_opt_in(options, allow_plaintext_credentials))
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
        wait = parse_retry_after(resp.getheader("Retry-After")) if resp.status in RETRY_AFTER_STATUSES else None
        hint = "" if wait is None else f" (Retry-After: {wait:.0f} s)"
        raise SendError(f"server answered HTTP {resp.status} {resp.reason}{hint}: {text}",
                        rejected=resp.status in REJECTED_STATUSES, retry_after=wait)

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
        keys = ("token", "headers", "gzip", "timeout", "ca_file", "verify_tls", "allow_plaintext_credentials")
        return HttpTransport(url, **{k: v for k, v in options.items() if k in keys and v is not None})
    if scheme in ("mqtt", "mqtts"):
        from .mqtt import MqttTransport

        keys = ("client_id", "username", "password", "ca_file", "verify_tls", "timeout", "max_inflight",
                "records_per_message", "allow_plaintext_credentials")
        return MqttTransport(url, **{k: v for k, v in options.items() if k in keys and v is not None})
    if scheme == "file":
        return FileTransport(url, fsync=options.get("fsync") or "batch")
    raise UplinkError(f"unknown uplink URI scheme {scheme or '(none)'!r} in {redact(url)!r}", hint=SCHEME_HINT)
