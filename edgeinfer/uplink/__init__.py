"""Store-and-forward of results to HTTP, MQTT or a file: non-blocking put(), durable SQLite spool.

Example:
    >>> from edgeinfer.uplink import Uplink
    >>> with Uplink("http://127.0.0.1:8080/ingest", spool_dir="/var/lib/edgeinfer/spool") as up:  # doctest: +SKIP
    ...     up.put({"source": "cam0", "frame": 12, "detections": []})
    True
"""
from __future__ import annotations

from ..errors import UplinkError
from .backoff import Backoff
from .status import read_spool_status
from .uplink import Uplink

__all__ = ["Backoff", "Uplink", "UplinkError", "read_spool_status"]
