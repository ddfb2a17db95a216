"""``Uplink``: put() into a memory ring -> spool writer thread -> SQLite spool -> sender thread -> network.

put() only appends to a deque (no lock, no I/O, no serialisation), so the inference loop never
waits for the disk or the network. The writer thread moves the ring into the spool every
``flush_interval``; the sender thread sends the oldest records in batches and deletes them only
after the far end acknowledged them (HTTP 2xx, MQTT PUBACK, file flushed). Failures back off
exponentially with jitter up to a cap.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Deque, Dict, List, Optional, Tuple

from ..errors import ConfigError, UplinkError
from .backoff import Backoff
from .identity import boot_id, default_device_id
from .spool import Spool
from .status import read_spool_status
from .transports import SendError, make_transport, redact

log = logging.getLogger(__name__)

_WRITER_CHUNK = 2000  # records per spool transaction
_JOIN_SLACK_S = 1.0  # extra wait for a thread after aborting its network call


class Uplink:
    """Non-blocking, disk-backed store-and-forward of result records to HTTP, MQTT or a file.

    Args:
        url: ``http(s)://host/path``, ``mqtt(s)://host:port/topic`` or ``file://results.jsonl``.
        spool_dir: directory for the durable spool (``spool.db``); one Uplink per directory.
        max_spool_bytes: bound on queued record bytes on disk (default 256 MiB).
        full_policy: ``"drop_oldest"`` (default) or ``"reject_new"`` once the bound is reached.
        batch_size: records per HTTP POST / MQTT burst (default 500).
        flush_interval: seconds between ring -> spool moves (default 0.05).
        fsync: ``"batch"`` (default, one fsync per spool transaction), ``"always"`` (per record),
            ``"off"`` (survives a process crash, not a power cut).
        device_id: first part of the idempotency key (default $EDGEINFER_DEVICE_ID or host name).
        ring_size: records the memory ring holds before put() returns False (default 10000).
        backoff_initial, backoff_max: retry delays in seconds (defaults 0.5 and 30).
        timeout: network timeout per request / PUBACK wait in seconds (default 10).
        token, headers, gzip, ca_file, verify_tls: HTTP options (also settable in the URL).
        username, password, client_id: MQTT options (client id defaults to ``edgeinfer-<device_id>``).
        records_per_message: MQTT only; pack up to N records per message as ``{"records": [...]}`` (default 1).

    Example:
        >>> with Uplink("file:///tmp/results.jsonl", spool_dir="/tmp/edgeinfer-spool") as up:  # doctest: +SKIP
        ...     up.put({"source": "cam0", "frame": 1, "detections": []})
        True
    """

    def __init__(self, url: str, *, spool_dir: Any, max_spool_bytes: int = 256 << 20,
                 full_policy: str = "drop_oldest", batch_size: int = 500, flush_interval: float = 0.05,
                 fsync: str = "batch", device_id: Optional[str] = None, ring_size: int = 10000,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0, timeout: float = 10.0,
                 token: Optional[str] = None, headers: Optional[Dict[str, str]] = None, gzip: bool = False,
                 ca_file: Optional[str] = None, verify_tls: bool = True, username: Optional[str] = None,
                 password: Optional[str] = None, client_id: Optional[str] = None,
                 records_per_message: int = 1) -> None:
        if batch_size < 1 or ring_size < 1 or flush_interval <= 0 or timeout <= 0:
            raise ConfigError(
                f"bad uplink settings batch_size={batch_size}, ring_size={ring_size}, "
                f"flush_interval={flush_interval}, timeout={timeout}",
                hint="use batch_size >= 1, ring_size >= 1, flush_interval > 0 and timeout > 0")
        self.url = redact(url)
        self.device_id = default_device_id(device_id)
        self.batch_size, self.flush_interval, self.ring_size = int(batch_size), float(flush_interval), int(ring_size)
        self._backoff = Backoff(initial=backoff_initial, cap=backoff_max)
        self._transport = make_transport(
            url, token=token, headers=headers, gzip=gzip, timeout=timeout, ca_file=ca_file, verify_tls=verify_tls,
            username=username, password=password, client_id=client_id or f"edgeinfer-{self.device_id}", fsync=fsync,
            records_per_message=records_per_message)
        self._spool = Spool(spool_dir, device_id=self.device_id, boot=boot_id(), max_bytes=max_spool_bytes,
                            full_policy=full_policy, fsync=fsync)
        self._ring: Deque[Tuple[float, Dict[str, Any]]] = collections.deque()
        self._wake_at = max(1, self.ring_size // 4)
        # Counters bumped by put() without a lock (one producer is the normal case; the GIL keeps
        # each += whole enough for a counter); the writer persists the deltas.
        self._puts = self._ring_overflow = self._rejected_full = self._after_close = 0
        self._persisted_put_drops = (0, 0, 0)
        self._spooled = 0  # records the writer has taken out of the ring (stored or dropped)
        self._reject_now = False
        self._closed = False
        self._state, self._last_error = "idle", None
        self._batch_limit = self.batch_size
        self._wake, self._send_wake, self._stopping, self._stop_now = (threading.Event() for _ in range(4))
        self._flushed = threading.Condition()
        self._deadline = float("inf")
        self._writer = threading.Thread(target=self._writer_loop, name="edgeinfer-uplink-spool", daemon=True)
        self._sender = threading.Thread(target=self._sender_loop, name="edgeinfer-uplink-send", daemon=True)
        self._writer.start()
        self._sender.start()
        log.info("uplink to %s: spool %s (%d queued), device %s", self.url, self._spool.path, self._spool.count,
                 self.device_id)

    # ------------------------------------------------------------------ producer side
    def put(self, record: Dict[str, Any]) -> bool:
        """Queue one JSON-able record; never blocks, never raises on network trouble.

        Returns False (and counts a drop) when the memory ring is full, the spool is full under
        ``reject_new``, or the uplink is closed. Do not mutate nested objects of ``record`` afterwards.

        Example:
            >>> up.put({"source": "cam0", "frame": 7, "count": 3})  # doctest: +SKIP
            True
        """
        if self._closed:
            self._after_close += 1
            return False
        if self._reject_now:
            self._rejected_full += 1
            return False
        ring = self._ring
        if len(ring) >= self.ring_size:
            self._ring_overflow += 1
            return False
        try:
            item = (time.time(), dict(record))
        except (TypeError, ValueError):
            raise UplinkError(f"put() takes a dict, got {type(record).__name__}",
                              hint="pass a JSON-able dict, e.g. {'source': 'cam0', 'detections': [...]}") from None
        ring.append(item)
        self._puts += 1
        if len(ring) >= self._wake_at:
            self._wake.set()
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything put() so far is in the spool (durable); True if it got there in time."""
        target = self._puts
        self._wake.set()
        with self._flushed:
            return self._flushed.wait_for(lambda: self._spooled >= target or not self._writer.is_alive(),
                                          timeout=timeout) and self._spooled >= target

    # ------------------------------------------------------------------ spool writer thread
    def _writer_loop(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stopping = self._stopping.is_set()
            try:
                self._drain_ring()
            except Exception:  # noqa: BLE001 - the writer must outlive any single failure
                log.exception("uplink: moving records to the spool failed")
                if self._stop_now.wait(min(1.0, self.flush_interval * 10)):
                    return
            if stopping and not self._ring:
                return

    def _drain_ring(self) -> None:
        ring, spool = self._ring, self._spool
        while ring:
            items: List[Tuple[float, Dict[str, Any]]] = []
            while ring and len(items) < _WRITER_CHUNK:
                items.append(ring.popleft())
            try:
                spool.append(items)
            except Exception:
                ring.extendleft(reversed(items))  # keep them (in order) for the next cycle
                raise
            with self._flushed:
                self._spooled += len(items)
                self._flushed.notify_all()
            self._send_wake.set()
        self._persist_put_drops()
        self._update_reject_flag()

    def _persist_put_drops(self) -> None:
        now = (self._ring_overflow, self._rejected_full, self._after_close)
        before = self._persisted_put_drops
        if now != before:
            self._spool.add_drops({"ring_overflow": now[0] - before[0], "spool_full_rejected": now[1] - before[1],
                                   "after_close": now[2] - before[2]})
            self._persisted_put_drops = now

    def _update_reject_flag(self) -> None:
        spool = self._spool
        # Under reject_new, refuse in put() while the spool has less than one typical record of room.
        room = spool.max_bytes - spool.bytes
        typical = spool.bytes / spool.count if spool.count else 0
        self._reject_now = spool.full_policy == "reject_new" and spool.count > 0 and room < typical

    # ------------------------------------------------------------------ sender thread
    def _sender_loop(self) -> None:
        while True:
            if self._stopping.is_set() and (time.monotonic() >= self._deadline or self._stop_now.is_set()):
                return
            try:
                batch = self._spool.peek(self._batch_limit)
            except Exception:  # noqa: BLE001 - closed or broken spool: nothing more to send
                if self._stopping.is_set():
                    return
                log.exception("uplink: reading the spool failed")
                self._stop_now.wait(1.0)
                continue
            if not batch:
                if self._stopping.is_set() and not self._writer.is_alive():
                    return  # closing, ring drained, spool empty: done
                self._send_wake.wait(self.flush_interval)
                self._send_wake.clear()
                continue
            self._send_one(batch)

    def _send_one(self, batch: List[Tuple[int, bytes]]) -> None:
        try:
            acked = self._transport.send(batch)
        except SendError as exc:
            self._handle_failure(batch, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a transport bug must not kill the sender
            log.exception("uplink: unexpected error while sending")
            self._handle_failure(batch, SendError(repr(exc)))
            return
        self._spool.ack(acked)
        self._update_reject_flag()
        if self._state == "backing_off":
            log.info("uplink to %s: delivering again (%d queued)", self.url, self._spool.count)
        self._state, self._last_error = "connected", None
        self._backoff.reset()
        self._batch_limit = self.batch_size

    def _handle_failure(self, batch: List[Tuple[int, bytes]], exc: SendError) -> None:
        if exc.acked:
            self._spool.ack(exc.acked)
        self._last_error = str(exc)
        if exc.rejected:
            if len(batch) > 1:  # split until the record the server refuses is alone
                self._batch_limit = max(1, len(batch) // 2)
                return
            log.error("uplink: %s refused record seq %d permanently (%s); dropping it", self.url, batch[0][0], exc)
            self._spool.discard([batch[0][0]], reason="rejected_by_server")
            return
        self._spool.add_retry()
        delay = self._backoff.next_delay()
        if self._state != "backing_off":
            log.warning("uplink to %s: send failed (%s); retrying with backoff, %d queued", self.url, exc,
                        self._spool.count)
        self._state = "backing_off"
        if self._stopping.is_set():
            delay = min(delay, max(0.0, self._deadline - time.monotonic()))
        self._stop_now.wait(delay)

    # ------------------------------------------------------------------ reporting and shutdown
    def stats(self) -> Dict[str, Any]:
        """Queue and delivery counters.

        Keys: queued (ring + spool), ring, spool_bytes, spool_file_bytes, oldest_age_s, sent,
        retries, last_ack (epoch s), last_ack_age_s, drops (by reason), dropped_total, state
        ("idle" | "connected" | "backing_off" | "closed"), last_error, put_count, url.
        """
        try:
            snap = self._spool.snapshot()
        except UplinkError:  # closed: the counters on disk are the final word
            snap = read_spool_status(self._spool.dir)
        drops = dict(snap.get("drops", {}))
        pending = (self._ring_overflow, self._rejected_full, self._after_close)
        for name, now, before in zip(("ring_overflow", "spool_full_rejected", "after_close"), pending,
                                     self._persisted_put_drops):
            if now - before:
                drops[name] = drops.get(name, 0) + now - before
        # Put but not yet committed to the spool (in the ring or in the writer's hands right now).
        ring = max(0, self._puts - self._spooled)
        snap.update(queued=snap["queued"] + ring, ring=ring, drops=drops, dropped_total=sum(drops.values()),
                    state="closed" if self._closed and not self._sender.is_alive() else self._state,
                    last_error=self._last_error, put_count=self._puts, url=self.url, device_id=self.device_id)
        return snap

    def close(self, timeout: float = 5.0) -> None:
        """Move the ring to the spool, try a final send, and stop; returns within about ``timeout`` s.

        Records not sent in time stay in the spool and go out after the next start.
        """
        if self._closed:
            return
        self._closed = True
        self._deadline = time.monotonic() + max(0.0, timeout)
        self._stopping.set()
        self._wake.set()
        self._send_wake.set()
        self._writer.join(max(0.0, self._deadline - time.monotonic()) + _JOIN_SLACK_S)
        self._sender.join(max(0.0, self._deadline - time.monotonic()))
        if self._sender.is_alive():
            self._stop_now.set()
            self._transport.abort()
            self._sender.join(_JOIN_SLACK_S)
        self._stop_now.set()
        try:
            self._persist_put_drops()
        except Exception as exc:  # noqa: BLE001 - closing must not raise over a counter
            log.debug("uplink: could not persist drop counters at close: %r", exc)
        if self._writer.is_alive() or self._sender.is_alive():
            log.warning("uplink: a worker thread did not stop within the close timeout; unsent records stay spooled")
        self._transport.close()
        self._spool.close()
        self._state = "closed"

    def __enter__(self) -> "Uplink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Uplink({self.url!r}, spool={str(self._spool.path)!r}, state={self._state!r})"
