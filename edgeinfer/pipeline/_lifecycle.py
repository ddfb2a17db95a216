"""Pipeline set-up and tear-down helpers: source lists, uplink and telemetry construction, Ctrl-C during close.

Example:
    >>> sorted(parse_sources({"door": "rtsp://10.0.0.5/s1"}))
    ['door']
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Dict

from ..errors import ConfigError
from .uri import parse_source


@contextlib.contextmanager
def deferred_sigint():
    """Hold a Ctrl-C (or a SIGTERM turned into one) that arrives during close() until every bounded join is done.

    A KeyboardInterrupt raised half-way through close() would leave threads inside OpenCV /
    ONNX Runtime C++ code at interpreter exit (``terminate called without an active exception``).
    Yields a list that is non-empty when a Ctrl-C arrived. Main thread only (signal handlers).
    """
    caught: list = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    # SIGTERM too, when a Python handler turned it into a KeyboardInterrupt (edgeinfer.fleet.signals).
    held = [signal.SIGINT] + ([signal.SIGTERM] if callable(signal.getsignal(signal.SIGTERM)) else [])
    try:
        previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in held}
    except ValueError:  # not the main interpreter
        yield caught
        return
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parse_sources(sources) -> Dict[str, Any]:
    """URIs (a list, one URI, or a dict id → URI) → {source id: SourceSpec}; ids default to "0", "1", …"""
    if isinstance(sources, (str, int, os.PathLike)):
        sources = [sources]
    items = list(sources.items()) if isinstance(sources, dict) else [(str(i), s) for i, s in enumerate(sources or [])]
    if not items:
        raise ConfigError("no sources given", hint="pass sources=['video.mp4'] or a camera/stream URI")
    return {str(sid): parse_source(os.fspath(uri) if isinstance(uri, os.PathLike) else uri) for sid, uri in items}


def make_uplink(uplink, spool):
    """(uplink, owned): an object with ``put`` is used as is; a URL becomes an Uplink that the pipeline closes."""
    if uplink is None:
        return None, False
    if hasattr(uplink, "put"):
        return uplink, False
    from ..uplink import Uplink  # engineer U's store-and-forward uplink

    spool = spool or os.environ.get("EDGEINFER_SPOOL") or default_spool_for(str(uplink))
    return Uplink(str(uplink), spool_dir=spool), True


def default_spool_for(url: str) -> str:
    """``~/.cache/edgeinfer/spool/<destination>``: one spool per destination, so records queued for one
    server are never delivered to another by a later run with a different ``--uplink``.

    Example:
        >>> a, b = default_spool_for("http://a:8080/r"), default_spool_for("http://b:8080/r")
        >>> a != b and a == default_spool_for("http://user:pw@a:8080/r")
        True
    """
    import hashlib
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    bare = urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")
                                     if parts.hostname else parts.netloc))  # credentials do not change the target
    key = hashlib.sha256(bare.encode("utf-8")).hexdigest()[:12]
    scheme = "".join(ch for ch in parts.scheme if ch.isalnum()) or "uplink"
    return os.path.join(os.path.expanduser("~"), ".cache", "edgeinfer", "spool", f"{scheme}-{key}")


def make_telemetry(telemetry):
    """``"auto"`` → the best JetsonTelemetry source here; None/False → off; anything else is used as is."""
    if telemetry in (None, False):
        return None
    if telemetry == "auto":
        from ..telemetry.jetson import JetsonTelemetry

        return JetsonTelemetry.auto()
    return telemetry
