"""Who is sending: device id and boot id, the parts of every record's idempotency key.

The key is ``<device_id>:<boot_id>:<spool_epoch>:<seq>``. ``seq`` is a monotonic counter
persisted in the spool; ``spool_epoch`` is random per spool file, so a fresh spool (after a
corrupt one was quarantined, or a wiped disk) never reuses the keys of an old one; the boot id
tells the receiver which boot produced the record.

Example:
    >>> make_key("cam-7", "3f2a9c1e", "a1b2c3d4", 42)
    'cam-7:3f2a9c1e:a1b2c3d4:42'
"""
from __future__ import annotations

import os
import socket
import uuid
from typing import Optional

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"

# Fallback when the kernel file is missing (not Linux, a sandbox): random per process start,
# which is still unique; it just changes on every restart instead of every boot.
_PROCESS_BOOT_ID = uuid.uuid4().hex[:8]


def boot_id(path: str = BOOT_ID_PATH) -> str:
    """The first 8 hex digits of the kernel's boot id, or a per-process random id."""
    try:
        with open(path, encoding="ascii") as fh:
            value = fh.read().strip().replace("-", "")
    except OSError:
        return _PROCESS_BOOT_ID
    return value[:8] if value else _PROCESS_BOOT_ID


def default_device_id(explicit: Optional[str] = None) -> str:
    """``explicit``, else ``$EDGEINFER_DEVICE_ID``, else the host name."""
    value = explicit or os.environ.get("EDGEINFER_DEVICE_ID") or socket.gethostname() or "device"
    # ':' separates the key's parts; keep it out of the device id.
    return value.replace(":", "_")


def make_key(device_id: str, boot: str, epoch: str, seq: int) -> str:
    """The idempotency key receivers de-duplicate on."""
    return f"{device_id}:{boot}:{epoch}:{seq}"
