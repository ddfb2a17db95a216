"""Spool state for ``stats()`` and ``edgeinfer uplink status``, read without the network.

Example:
    >>> read_spool_status("/var/lib/edgeinfer/spool")["queued"]  # doctest: +SKIP
    1234
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import UplinkError

DB_NAME = "spool.db"


def summary(path: Path, *, count: int, nbytes: int, oldest: Optional[float], sent: int, retries: int,
             last_ack: Optional[float], drops: Dict[str, int], epoch: str, next_seq: int,
             max_bytes: Optional[int], full_policy: Optional[str]) -> Dict[str, Any]:
    now = time.time()
    files = [Path(str(path) + s) for s in ("", "-wal")]
    return {
        "spool_path": str(path),
        "queued": count,
        "spool_bytes": nbytes,
        "spool_file_bytes": sum(f.stat().st_size for f in files if f.exists()),
        "max_spool_bytes": max_bytes,
        "full_policy": full_policy,
        "oldest_age_s": None if oldest is None else max(0.0, now - oldest),
        "sent": sent,
        "retries": retries,
        "last_ack": last_ack,
        "last_ack_age_s": None if last_ack is None else max(0.0, now - last_ack),
        "drops": drops,
        "dropped_total": sum(drops.values()),
        "epoch": epoch,
        "next_seq": next_seq,
    }


def read_spool_status(spool_dir: Any) -> Dict[str, Any]:
    """Spool state read straight from disk (no network, no writes); for ``edgeinfer uplink status``.

    Example:
        >>> read_spool_status("/var/lib/edgeinfer/spool")["queued"]  # doctest: +SKIP
        1234
    """
    path = Path(spool_dir) / DB_NAME
    hint = "pass the spool_dir the uplink was created with (the directory that holds spool.db)"
    if not Path(spool_dir).is_dir():
        raise UplinkError(f"spool directory {spool_dir} does not exist", hint=hint)
    if not path.is_file():
        raise UplinkError(f"{spool_dir} is not an uplink spool (no {DB_NAME} in it)", hint=hint)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
        try:
            meta = dict(conn.execute("SELECT k, v FROM meta"))
            count, total = conn.execute("SELECT count(*), total(length(body)) FROM records").fetchone()
            row = conn.execute("SELECT ts FROM records ORDER BY seq LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise UplinkError(f"{path} cannot be read as an uplink spool ({exc})",
                          hint="if it is corrupt, the uplink salvages the readable records into a fresh spool on its next start") from exc
    return summary(path, count=int(count), nbytes=int(total), oldest=None if row is None else float(row[0]),
                    sent=int(meta.get("sent", 0)), retries=int(meta.get("retries", 0)),
                    last_ack=float(meta["last_ack"]) if "last_ack" in meta else None,
                    drops={k[6:]: int(v) for k, v in meta.items() if k.startswith("drops.")},
                    epoch=meta.get("epoch", ""), next_seq=int(meta.get("next_seq", 0)),
                    max_bytes=None, full_policy=None)
