"""Read what still reads out of a damaged spool file, row by row; :func:`recover` a spool with it.

SQLite's own ``.recover`` lives in the ``sqlite3`` shell (and the ``sqlite_dbdata`` extension),
neither of which a device is sure to have, and Python's ``sqlite3`` module cannot call it. So the
salvage walks the ``records`` table in ``seq`` order with plain ``SELECT``s: a query that runs into
a damaged page fails, and the walk then looks for the first ``seq`` beyond the damage that reads
again (doubling steps, then bisection), so one bad page costs the rows on that page, not the file.
Every row is checked (a JSON envelope with ``key`` and ``record`` whose ``seq`` matches) before it is
kept. The ``meta`` table is read the same way, for the counters and the queued count at the last
commit, which turns "some records were lost" into a number.

Example:
    >>> import tempfile, pathlib, sqlite3
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "spool.db"
    >>> c = sqlite3.connect(str(p))
    >>> _ = c.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, ts REAL, body BLOB)")
    >>> _ = c.execute("INSERT INTO records VALUES (0, 1.0, ?)", (b'{"key":"k","seq":0,"record":{}}',))
    >>> c.commit(); c.close()
    >>> s = salvage(p)
    >>> len(s.rows), s.bad_rows, s.meta
    (1, 0, {})
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

log = logging.getLogger(__name__)

_CHUNK = 1000  # rows per query, and per transaction in the fresh spool
_SEQ_MAX = 1 << 62
Row = Tuple[int, float, bytes]


@dataclass
class Salvage:
    """What came out of a damaged spool: good rows in seq order (``rows``, when not streamed to a
    sink), how many, the gaps between their seqs, rows that read but were garbage, the readable
    meta, and whether the file opened at all."""

    rows: List[Row] = field(default_factory=list)
    kept: int = 0
    holes: int = 0
    last_seq: Optional[int] = None
    bad_rows: int = 0
    meta: Dict[str, str] = field(default_factory=dict)
    opened: bool = False

    def lost(self, expected: Optional[int]) -> Tuple[int, bool]:
        """(records lost, exact?): exact when the queued count at the last commit is known."""
        if expected is None and "queued" in self.meta:
            try:
                expected = int(self.meta["queued"])
            except ValueError:
                expected = None
        if expected is not None:
            return max(0, expected - self.kept), True
        # Unknown total: the holes in the salvaged seq range plus rows that read as garbage are a floor.
        return self.holes + self.bad_rows, False


def salvage(path: Path, sink: Optional[Callable[[List[Row]], None]] = None) -> Salvage:
    """Every row of ``records`` that reads and checks out, and the readable ``meta`` of ``path``.

    With ``sink``, good rows are handed over in chunks as they are read (a 256 MiB spool is not
    held in memory); without, they are collected in ``rows``.
    """
    out = Salvage()
    sink = sink or out.rows.extend
    try:
        conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None)
    except sqlite3.Error as exc:
        log.debug("salvage: cannot open %s: %s", path, exc)
        return out
    try:
        try:
            out.meta = {str(k): str(v) for k, v in conn.execute("SELECT k, v FROM meta")}
        except sqlite3.DatabaseError as exc:
            log.debug("salvage: meta of %s unreadable: %s", path, exc)
        try:
            conn.execute("SELECT seq FROM records LIMIT 0")
            out.opened = True
        except sqlite3.DatabaseError as exc:
            log.debug("salvage: records of %s unreadable: %s", path, exc)
            return out
        _walk(conn, out, sink)
    finally:
        conn.close()
    return out


def _walk(conn: sqlite3.Connection, out: Salvage, sink: Callable[[List[Row]], None]) -> None:
    last = -1
    while True:
        try:
            got = conn.execute("SELECT seq, ts, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                               (last, _CHUNK)).fetchall()
        except sqlite3.DatabaseError:
            got = _one_by_one(conn, last)
            if not got:
                nxt = _next_readable(conn, last + 1)
                if nxt is None:
                    return
                last = nxt - 1
                continue
        if not got:
            return
        good = [row for row in (_checked(out, *r) for r in got) if row is not None]
        if good:
            sink(good)
        last = got[-1][0]


def _one_by_one(conn: sqlite3.Connection, last: int) -> List[Tuple[int, float, bytes]]:
    """Rows after ``last`` read singly, up to the first one that fails (the damaged page)."""
    got: List[Tuple[int, float, bytes]] = []
    while len(got) < _CHUNK:
        try:
            row = conn.execute("SELECT seq, ts, body FROM records WHERE seq > ? ORDER BY seq LIMIT 1",
                               (last,)).fetchone()
        except sqlite3.DatabaseError:
            break
        if row is None:
            break
        got.append(row)
        last = row[0]
    return got


def _readable_from(conn: sqlite3.Connection, start: int) -> bool:
    try:
        conn.execute("SELECT seq, ts, body FROM records WHERE seq >= ? ORDER BY seq LIMIT 1", (start,)).fetchone()
        return True
    except sqlite3.DatabaseError:
        return False


def _next_readable(conn: sqlite3.Connection, bad: int) -> Optional[int]:
    """The smallest start > ``bad`` from which a read works again (None: nothing after the damage reads)."""
    step = 1
    while bad + step < _SEQ_MAX and not _readable_from(conn, bad + step):
        step *= 2
    if bad + step >= _SEQ_MAX:
        return None
    lo, hi = bad + step // 2, bad + step  # reading from lo fails (or lo == bad), from hi works
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _readable_from(conn, mid):
            hi = mid
        else:
            lo = mid
    return hi


def _checked(out: Salvage, seq, ts, body) -> Optional[Row]:
    try:
        data = bytes(body)
        env = json.loads(data)
        ok = isinstance(env, dict) and "key" in env and "record" in env and env.get("seq") == seq
        ok = ok and isinstance(seq, int) and isinstance(ts, (int, float))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        out.bad_rows += 1
        return None
    if out.last_seq is not None:
        out.holes += max(0, seq - out.last_seq - 1)
    out.kept, out.last_seq = out.kept + 1, seq
    return int(seq), float(ts), data


def recover(spool, exc: BaseException, *, expected: Optional[int]) -> None:
    """Quarantine ``spool``'s damaged file, copy what still reads into a fresh spool, count the rest.

    ``expected``: records queued when the damage was found (known while running); at open it comes
    from the ``queued`` count the last commit stored in ``meta``, if that still reads. Called with
    the spool's lock held (or before its threads start).
    """
    target = _quarantine(spool)
    spool._connect_and_load(check=False)
    found = salvage(target, sink=lambda rows: _insert(spool._conn, rows))
    lost, exact = found.lost(expected)
    _adopt(spool, found)
    spool._bump_drops({"spool_corrupt": lost})
    how_many = (str(lost) if exact else f"at least {lost}") if found.opened else "an unknown number of"
    log.error("uplink spool %s is corrupt (%s); quarantined it as %s and started a fresh spool with the "
              "%d records that still read; %s queued records were lost (counted as spool_corrupt)",
              spool.path, exc, target, found.kept, how_many)


def _insert(conn: sqlite3.Connection, rows: List[Row]) -> None:
    conn.execute("BEGIN IMMEDIATE")  # one transaction (one fsync) per chunk read
    try:
        conn.executemany("INSERT INTO records VALUES (?,?,?)", rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _quarantine(spool) -> Path:
    """Close and rename the damaged file (with its WAL) aside, never over an earlier one; returns the new name."""
    spool._close_conn()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = spool.path.name
    target = spool.dir / f"{base}.corrupt-{stamp}"
    n = 1
    while target.exists():
        target, n = spool.dir / f"{base}.corrupt-{stamp}-{n}", n + 1
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(spool.path) + suffix)
        if src.exists():
            os.replace(str(src), str(target) + suffix)
    return target


_KEEP = ("sent", "retries", "last_ack", "ring.run", "ring.spooled", "ring.drops", "ring.accounted")


def _adopt(spool, found: Salvage) -> None:
    """Carry the salvaged counters over; the rows are in already (keys unchanged: receivers de-duplicate)."""
    meta = {k: v for k, v in found.meta.items() if k in _KEEP or k.startswith("drops.")}
    top = max(-1 if found.last_seq is None else found.last_seq, _int(found.meta.get("next_seq")) - 1,
              spool.next_seq - 1) + 1
    meta.update(next_seq=str(top), queued=str(found.kept))
    spool._conn.executemany("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", list(meta.items()))
    spool._load()


def _int(text: Optional[str]) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
