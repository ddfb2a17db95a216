"""The durable local queue: one SQLite file in WAL mode under ``spool_dir``.

Rows are ``(seq, ts, body)`` where ``body`` is the full JSON envelope sent on the wire, built
once when the record is spooled (so the idempotency key never changes between retries).
``meta`` keeps what must survive a restart: the next sequence number, the spool epoch, sent
and retry counts, the last acknowledgement time and the drop counters by reason.

One connection, one lock: the spool writer and the sender thread take turns; network I/O is
never done under the lock. A corrupt file is renamed ``spool.db.corrupt-<UTC time>``, every row
that still reads is copied into a fresh spool (salvage.py), and what could not be read is counted
as ``spool_corrupt`` drops, with a log line saying so.

Example:
    >>> import tempfile
    >>> sp = Spool(tempfile.mkdtemp(), device_id="cam-1", boot="b00710ad")
    >>> sp.append([(1700000000.0, {"n": 1})])
    1
    >>> [seq for seq, _ in sp.peek(10)]
    [0]
    >>> sp.close()
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import ConfigError, UplinkError
from .envelope import envelope, json_bytes
from .salvage import recover
from .status import DB_NAME, summary

log = logging.getLogger(__name__)

LOCK_NAME = "spool.lock"
SCHEMA_VERSION = "1"
FULL_POLICIES = ("drop_oldest", "reject_new")
FSYNC_MODES = ("batch", "always", "off")
_SYNC_PRAGMA = {"batch": "FULL", "always": "FULL", "off": "OFF"}
_IN_CHUNK = 500  # stays under SQLite's old 999-parameter limit (JetPack 5 ships 3.31)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, ts REAL NOT NULL, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
)


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    # OperationalError covers "database is locked", "disk I/O error", "no such table": not corruption.
    return not isinstance(exc, sqlite3.OperationalError)


class AppendError(UplinkError):
    """The spool could not store records (disk full, I/O error); ``consumed`` items were stored first."""

    def __init__(self, message: str, *, consumed: int) -> None:
        super().__init__(message, hint="free disk space under the spool directory; the records stay queued in memory")
        self.consumed = consumed


class Spool:
    """Crash-safe FIFO of JSON envelopes with a byte bound and persisted counters."""

    def __init__(self, spool_dir: Any, *, device_id: str, boot: str, max_bytes: int = 256 << 20,
                 full_policy: str = "drop_oldest", fsync: str = "batch") -> None:
        if full_policy not in FULL_POLICIES:
            raise ConfigError(f"unknown full_policy {full_policy!r}", hint=f"use one of {', '.join(FULL_POLICIES)}")
        if fsync not in FSYNC_MODES:
            raise ConfigError(f"unknown fsync mode {fsync!r}", hint=f"use one of {', '.join(FSYNC_MODES)}")
        if int(max_bytes) < 4096:
            raise ConfigError(f"max_spool_bytes={max_bytes} is too small", hint="use at least 4096 bytes (default 256 MiB)")
        self.dir = Path(spool_dir)
        self.path = self.dir / DB_NAME
        self.device_id, self.boot = device_id, boot
        self.max_bytes, self.full_policy, self.fsync = int(max_bytes), full_policy, fsync
        self._lock = threading.RLock()
        self._conn: Optional[sqlite3.Connection] = None
        self.ring_run: Optional[str] = None  # set by the Uplink: its put() counters' run id (ringmark.py)
        self.meta: Dict[str, str] = {}
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UplinkError(f"cannot create spool directory {self.dir}: {exc}",
                              hint="pass a writable spool_dir, e.g. /var/lib/edgeinfer/spool") from exc
        self._lock_fd = _take_dir_lock(self.dir)
        try:
            self._open()
        except BaseException:
            os.close(self._lock_fd) if self._lock_fd is not None else None
            raise

    # ---------------------------------------------------------------- opening and recovery
    def _open(self) -> None:
        try:
            self._connect_and_load(check=True)
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc) and "not a database" not in str(exc):
                raise UplinkError(f"cannot open spool {self.path}: {exc}", hint="check disk space and permissions") from exc
            recover(self, exc, expected=None)

    def _connect_and_load(self, *, check: bool) -> None:
        conn = sqlite3.connect(str(self.path), timeout=10.0, isolation_level=None, check_same_thread=False)
        self._conn = conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={_SYNC_PRAGMA[self.fsync]}")
        if check:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                detail = " ".join(" ".join(problems[:3]).split())  # one log line, not a page dump
                raise sqlite3.DatabaseError(f"quick_check: {detail[:200]}")
        for stmt in _SCHEMA:
            conn.execute(stmt)
        self._load()

    def _close_conn(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def _load(self) -> None:
        """Read counters and sizes from the open connection (a new spool gets its epoch here)."""
        conn = self._conn
        meta = dict(conn.execute("SELECT k, v FROM meta"))
        self.meta = meta
        if "epoch" not in meta:
            meta = {"schema": SCHEMA_VERSION, "epoch": uuid.uuid4().hex[:8], "next_seq": "0",
                    "created": repr(time.time())}
            self._write_meta(meta)
        self.epoch = meta["epoch"]
        self.next_seq = int(meta.get("next_seq", "0"))
        self.sent = int(meta.get("sent", "0"))
        self.retries = int(meta.get("retries", "0"))
        self.last_ack = float(meta["last_ack"]) if "last_ack" in meta else None
        self.drops: Dict[str, int] = {k[6:]: int(v) for k, v in meta.items() if k.startswith("drops.")}
        count, total = conn.execute("SELECT count(*), total(length(body)) FROM records").fetchone()
        self.count, self.bytes = int(count), int(total)

    def _guarded(self, fn, *args):
        """Run a DB operation; on corruption salvage into a fresh spool and run it once more there."""
        with self._lock:
            if self._conn is None:
                raise UplinkError("the spool is closed", hint="create a new Uplink")
            try:
                return fn(*args)
            except sqlite3.DatabaseError as exc:
                if not _is_corruption(exc):
                    raise
                self._rollback()
                recover(self, exc, expected=self.count)
                return fn(*args)

    def _rollback(self) -> None:
        try:
            if self._conn is not None and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    @property
    def closed(self) -> bool:
        return self._conn is None

    # ---------------------------------------------------------------- writes
    def append(self, items: Sequence[Tuple[float, Any]], *, ring_base: Optional[int] = None) -> int:
        """Spool ``(ts, record)`` pairs in order; returns how many were stored (the rest are counted drops).

        ``record`` is a dict or its JSON bytes. ``ring_base``: how many of this run's records were
        spooled before these; the commit stores the new total with the rows (``ring.spooled``), so the
        next start can count what a kill left in the memory ring. Raises :class:`AppendError` (with
        ``consumed``: items committed before the failure) when the disk refuses the write.
        """
        groups: List[Tuple[int, List[Tuple[float, bytes]], int]] = []  # (end index, bodies, unserializable)
        bodies: List[Tuple[float, bytes]] = []
        bad = 0
        for i, (ts, record) in enumerate(items):
            try:
                data = record if isinstance(record, bytes) else json_bytes(record)
            except (TypeError, ValueError) as exc:
                bad += 1
                log.warning("uplink: dropped a record that is not JSON-serialisable: %s", exc)
                continue
            bodies.append((ts, data))
            if self.fsync == "always":  # one transaction (one fsync) per record
                groups.append((i + 1, bodies, bad))
                bodies, bad = [], 0
        if bodies or bad or not groups:
            groups.append((len(items), bodies, bad))
        stored, consumed = 0, 0
        for end, group, n_bad in groups:
            try:
                stored += self._guarded(self._append_locked, group, n_bad,
                                        None if ring_base is None else ring_base + end)
            except Exception as exc:
                raise AppendError(f"spool write failed after {consumed} of {len(items)} records: {exc}",
                                  consumed=consumed) from exc
            consumed = end
        return stored

    def _append_locked(self, bodies: List[Tuple[float, bytes]], bad: int, ring_mark: Optional[int]) -> int:
        first_seq = self.next_seq
        rows = [(seq, ts, envelope(data, device_id=self.device_id, boot=self.boot, epoch=self.epoch, seq=seq, ts=ts))
                for seq, (ts, data) in enumerate(bodies, start=first_seq)]
        self.next_seq = first_seq + len(rows)
        try:
            return self._commit_rows(rows, {"unserializable": bad} if bad else {}, ring_mark)
        except BaseException:
            self.next_seq = first_seq  # nothing was stored: the seqs (and keys) go to the retry
            raise

    def _commit_rows(self, rows: List[Tuple[int, float, bytes]], dropped: Dict[str, int],
                     ring_mark: Optional[int]) -> int:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows, room_drops, freed_rows, freed_bytes = self._make_room(rows)
            dropped = {k: dropped.get(k, 0) + room_drops.get(k, 0) for k in set(dropped) | set(room_drops)
                       if dropped.get(k, 0) + room_drops.get(k, 0)}
            conn.executemany("INSERT INTO records VALUES (?,?,?)", rows)
            meta = {"next_seq": str(self.next_seq), "queued": str(self.count + len(rows) - freed_rows)}
            if ring_mark is not None and self.ring_run:
                meta.update({"ring.run": self.ring_run, "ring.spooled": str(ring_mark)})
            self._write_meta(meta)
            self._write_drop_counts(dropped)
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        for reason, n in dropped.items():
            self.drops[reason] = self.drops.get(reason, 0) + n
        # bytes first, then count: put() reads them without the lock and must never see too much room.
        self.bytes += sum(len(r[2]) for r in rows) - freed_bytes
        self.count += len(rows) - freed_rows
        return len(rows)

    def _make_room(self, rows: List[Tuple[int, float, bytes]]):
        """Apply the full policy: (rows to insert, {reason: dropped}, rows freed, bytes freed)."""
        need = sum(len(r[2]) for r in rows)
        if self.bytes + need <= self.max_bytes:
            return rows, {}, 0, 0
        if self.full_policy == "reject_new":
            kept: List[Tuple[int, float, bytes]] = []
            room = self.max_bytes - self.bytes
            for row in rows:
                if len(row[2]) > room:
                    break  # keep order: once one is rejected, everything after it is too
                kept.append(row)
                room -= len(row[2])
            return kept, {"spool_full_rejected": len(rows) - len(kept)}, 0, 0
        # drop_oldest: the newest records win; if the new batch alone is too big, its own head goes.
        head_dropped = 0
        while rows and need > self.max_bytes:
            need -= len(rows.pop(0)[2])
            head_dropped += 1
        excess = self.bytes + need - self.max_bytes
        dropped, freed, cutoff = 0, 0, None
        if excess > 0:
            for seq, size in self._conn.execute("SELECT seq, length(body) FROM records ORDER BY seq"):
                dropped, freed, cutoff = dropped + 1, freed + size, seq
                if freed >= excess:
                    break
            if cutoff is not None:
                self._conn.execute("DELETE FROM records WHERE seq <= ?", (cutoff,))
        return rows, {"spool_full_oldest": dropped + head_dropped}, dropped, freed

    def _write_meta(self, values: Dict[str, str]) -> None:
        self._conn.executemany("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", list(values.items()))

    def _write_drop_counts(self, dropped: Dict[str, int]) -> None:
        values = {f"drops.{k}": str(self.drops.get(k, 0) + n) for k, n in dropped.items() if n}
        if values:
            self._write_meta(values)

    def _bump_drops(self, dropped: Dict[str, int]) -> None:
        dropped = {k: int(n) for k, n in dropped.items() if n}
        if not dropped:
            return
        self._write_drop_counts(dropped)
        for reason, n in dropped.items():
            self.drops[reason] = self.drops.get(reason, 0) + n

    def add_drops(self, dropped: Dict[str, int], *, meta: Optional[Dict[str, str]] = None) -> None:
        """Add to the persisted drop counters (e.g. ring overflow counted by ``put()``); ``meta``
        keys are written in the same transaction."""
        if not any(dropped.values()) and not meta:
            return

        def run() -> None:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._write_drop_counts(dropped)
                self._write_meta(dict(meta or {}))
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            for reason, n in dropped.items():
                if n:
                    self.drops[reason] = self.drops.get(reason, 0) + int(n)
        self._guarded(run)

    def add_retry(self) -> None:
        """Count one failed send attempt (persisted)."""
        def bump() -> None:
            self.retries += 1
            self._write_meta({"retries": str(self.retries)})
        self._guarded(bump)

    # ---------------------------------------------------------------- sender side
    def peek(self, limit: int) -> List[Tuple[int, bytes]]:
        """The oldest ``limit`` unacknowledged ``(seq, envelope)`` pairs, in order."""
        def read() -> List[Tuple[int, bytes]]:
            return [(seq, bytes(body)) for seq, body in
                    self._conn.execute("SELECT seq, body FROM records ORDER BY seq LIMIT ?", (int(limit),))]
        return self._guarded(read)

    def ack(self, seqs: Iterable[int], *, now: Optional[float] = None) -> int:
        """Delete acknowledged records; returns how many were still queued."""
        seqs = list(seqs)
        if not seqs:
            return 0
        stamp = time.time() if now is None else now
        return self._guarded(self._ack_locked, seqs, stamp)

    def _ack_locked(self, seqs: List[int], stamp: float) -> int:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            n_rows, n_bytes = 0, 0
            for i in range(0, len(seqs), _IN_CHUNK):
                chunk = seqs[i:i + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                c, b = conn.execute(f"SELECT count(*), total(length(body)) FROM records WHERE seq IN ({marks})",
                                    chunk).fetchone()
                conn.execute(f"DELETE FROM records WHERE seq IN ({marks})", chunk)
                n_rows, n_bytes = n_rows + int(c), n_bytes + int(b)
            self._write_meta({"sent": str(self.sent + n_rows), "last_ack": repr(stamp),
                              "queued": str(self.count - n_rows)})
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self.sent += n_rows
        self.last_ack = stamp
        self.count -= n_rows
        self.bytes -= n_bytes
        return n_rows

    def discard(self, seqs: List[int], *, reason: str) -> int:
        """Delete records that can never be delivered (e.g. a server answered 400), counting them as drops."""
        def run() -> int:
            n = 0
            for seq in seqs:
                n += self._conn.execute("DELETE FROM records WHERE seq = ?", (seq,)).rowcount
            self.count, self.bytes = [int(v) for v in self._conn.execute(
                "SELECT count(*), total(length(body)) FROM records").fetchone()]
            self._write_meta({"queued": str(self.count)})
            self._bump_drops({reason: n})
            return n
        return self._guarded(run)

    # ---------------------------------------------------------------- reporting
    def oldest_ts(self) -> Optional[float]:
        """Enqueue time of the oldest queued record, or None when empty."""
        row = self._guarded(lambda: self._conn.execute("SELECT ts FROM records ORDER BY seq LIMIT 1").fetchone())
        return None if row is None else float(row[0])

    def snapshot(self, *, wait: float = 0.2) -> Dict[str, Any]:
        """Counters for ``stats()`` and the CLI.

        Waits at most ``wait`` s for the lock: while a thread waits on a stalled disk, the counters
        in memory are returned and ``oldest_age_s`` is None, so a probe never hangs on the disk.
        """
        if self._conn is None:
            raise UplinkError("the spool is closed", hint="create a new Uplink")
        locked = self._lock.acquire(timeout=wait)
        try:
            oldest = self.oldest_ts() if locked else None
            return summary(self.path, count=self.count, nbytes=self.bytes, oldest=oldest, sent=self.sent,
                           retries=self.retries, last_ack=self.last_ack, drops=dict(self.drops),
                           epoch=self.epoch, next_seq=self.next_seq, max_bytes=self.max_bytes,
                           full_policy=self.full_policy)
        finally:
            if locked:
                self._lock.release()

    def close(self) -> None:
        """Checkpoint the WAL and close; safe to call twice."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error as exc:
                    log.debug("uplink: WAL checkpoint at close failed: %s", exc)
                self._conn.close()
                self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None


def _take_dir_lock(directory: Path) -> Optional[int]:
    """Hold an exclusive flock so two uplinks never send from one spool (the kernel drops it on kill -9)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process guard, documented
        return None
    fd = os.open(str(directory / LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise UplinkError(f"spool {directory} is in use by another uplink (process or Uplink object)",
                          hint="give each Uplink its own spool_dir, or close() the other one first") from exc
    return fd
