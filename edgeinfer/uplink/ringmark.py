"""Counters of ``put()`` kept in a memory-mapped file, so a SIGKILL cannot hide what it lost.

Records in the memory ring are not on disk yet; a SIGKILL loses them. To *count* that loss on the
next start, ``put()`` mirrors its counters (records accepted, records refused by reason) into a
48-byte ``MAP_SHARED`` mapping of ``spool_dir/spool.ring``. A store into a shared file mapping
lands in the kernel's page cache at once, and the kernel keeps (and later writes back) that page
when the process dies, however it dies. The spool writer stores, in the same SQLite transaction
as the records, how many of this run's accepted records it has moved into the spool. On the next
start: lost = accepted (from the mapping) - spooled (from the spool), counted as ``lost_in_ring``.

Limits: a power cut can lose the page-cache copy (then nothing is counted: the loss is unknown);
where ``mmap`` is missing (not a POSIX/Windows system) counting is off. Cost in ``put()``: one
item store into a memoryview (~50 ns).

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> m = RingMark.create(d / "spool.ring")
    >>> m.counts[0] = 5
    >>> RingMark.read(d / "spool.ring") == (m.run, (5, 0, 0, 0, 0))
    True
    >>> m.close()
"""
from __future__ import annotations

import logging
import mmap
import os
import struct
import uuid
from pathlib import Path
from typing import Dict, Optional, Tuple

log = logging.getLogger(__name__)

MAGIC = b"EIRING01"
# puts accepted, then refused in put(): ring_overflow, spool_full_rejected, after_close, unserializable
FIELDS = ("puts", "ring_overflow", "spool_full_rejected", "after_close", "unserializable")
_SIZE = 16 + 8 * len(FIELDS)


class RingMark:
    """The live mapping; ``counts`` is a writable sequence of unsigned 64-bit counters (see FIELDS)."""

    def __init__(self, path: Path, run: str, fd: int, mm: "mmap.mmap") -> None:
        self.path, self.run = path, run
        self._fd, self._mm = fd, mm
        self.counts = memoryview(mm)[16:_SIZE].cast("Q")

    @classmethod
    def create(cls, path: Path) -> "RingMark":
        """A fresh mapping with a new run id and zero counters (replaces the previous run's file)."""
        run = uuid.uuid4().hex[:16]
        fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, _SIZE)
            os.pwrite(fd, MAGIC + run.encode("ascii")[:8] + bytes(8 * len(FIELDS)), 0)
            mm = mmap.mmap(fd, _SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, run[:8], fd, mm)

    @staticmethod
    def read(path: Path) -> Optional[Tuple[str, Tuple[int, ...]]]:
        """(run id, counters) left by the previous run, or None when absent or unreadable."""
        try:
            data = Path(path).read_bytes()
        except OSError:
            return None
        if len(data) < _SIZE or data[:8] != MAGIC:
            return None
        return data[8:16].decode("ascii", "replace"), tuple(struct.unpack_from(f"@{len(FIELDS)}Q", data, 16))

    def close(self) -> None:
        """Unmap (the counters stay in the file for the next start)."""
        try:
            self.counts.release()
            self._mm.close()
        finally:
            os.close(self._fd)


def open_mark(path: Path) -> Optional[RingMark]:
    """RingMark.create, or None (logged) where the mapping cannot be made: counting is then off."""
    try:
        return RingMark.create(path)
    except (OSError, ValueError) as exc:
        log.warning("uplink: cannot map %s (%s); records lost in the memory ring on a kill will not be counted",
                    path, exc)
        return None


def account_previous_run(spool, path: Path) -> Dict[str, int]:
    """Count, once, what the previous run accepted in put() but never got into ``spool``; returns the drops added.

    The previous run's counters come from ``path``; what it spooled and which of its put()
    refusals it persisted come from the spool's meta (``ring.*``, written with the records).
    """
    prev = RingMark.read(path)
    meta = spool.meta
    if prev is None or meta.get("ring.accounted") == prev[0]:
        return {}
    run, counts = prev
    same = meta.get("ring.run") == run
    spooled = int(meta.get("ring.spooled", "0")) if same else 0
    persisted = [int(v) for v in meta.get("ring.drops", "").split(",") if v] if same else []
    persisted += [0] * (len(FIELDS) - 1 - len(persisted))
    dropped = {"lost_in_ring": max(0, counts[0] - spooled)}
    for name, now, before in zip(FIELDS[1:], counts[1:], persisted):
        dropped[name] = max(0, now - before)
    dropped = {k: v for k, v in dropped.items() if v}
    spool.add_drops(dropped, meta={"ring.accounted": run})
    if dropped.get("lost_in_ring"):
        log.warning("uplink: the previous run was stopped with %d accepted records still in memory (not spooled); "
                    "counted as lost_in_ring", dropped["lost_in_ring"])
    return dropped
