"""The wire envelope around each record: built once when the record is spooled, byte-identical on every retry.

``{"key": ..., "seq": ..., "ts": ..., "device_id": ..., "record": <your dict>}``; see docs/uplink.md.

Example:
    >>> envelope(b'{"n":1}', device_id="cam-1", boot="b00710ad", epoch="a1b2c3d4", seq=7, ts=1.5)
    b'{"key":"cam-1:b00710ad:a1b2c3d4:7","seq":7,"ts":1.500000,"device_id":"cam-1","record":{"n":1}}'
"""
from __future__ import annotations

import json
from typing import Any

from .identity import make_key


def envelope(data: bytes, *, device_id: str, boot: str, epoch: str, seq: int, ts: float) -> bytes:
    """The envelope bytes for a record whose JSON is ``data``."""
    key = make_key(device_id, boot, epoch, seq)
    head = f'{{"key":{json.dumps(key)},"seq":{seq},"ts":{ts:.6f},"device_id":{json.dumps(device_id)},"record":'
    return head.encode() + data + b"}"


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and Paths show up in detection records; make them plain JSON.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def json_bytes(record: Any) -> bytes:
    """The compact JSON of ``record`` as the spool stores it (TypeError/ValueError when it cannot)."""
    return json.dumps(record, separators=(",", ":"), default=_json_default).encode()


def envelope_overhead(device_id: str) -> int:
    """An upper bound of an envelope's bytes beyond its record's JSON (20-digit seq, any timestamp)."""
    return len(envelope(b"", device_id=device_id, boot="f" * 8, epoch="f" * 8, seq=10 ** 20 - 1, ts=99999999999.0))
