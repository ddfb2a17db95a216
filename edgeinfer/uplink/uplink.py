"""``Uplink``: put() into a memory ring -> spool writer thread -> SQLite spool -> sender thread -> network.

put() only appends to a deque (no lock, no I/O, no serialisation), so the inference loop never
waits for the disk or the network. The writer thread moves the ring into the spool every
``flush_interval``; the sender thread sends the oldest records in batches and deletes them only
after the far end acknowledged them (HTTP 2xx, MQTT PUBACK, file flushed). Failures back off
exponentially with jitter up to a cap, or as long as the server's ``Retry-After`` asks.

Neither thread dies on an error (a full disk, a broken transport): each loop catches, records the
error for :meth:`Uplink.health`, backs off and tries again.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Deque, Dict, List, Optional, Tuple

from ..errors import ConfigError, UplinkError
from .backoff import Backoff
from .envelope import envelope_overhead, json_bytes
from .health import Health
from .identity import boot_id, default_device_id
from .ringmark import account_previous_run, open_mark
from .spool import AppendError, Spool
from .status import read_spool_status
from .transports import SendError, make_transport, redact

log = logging.getLogger(__name__)

_WRITER_CHUNK = 2000  # records per spool transaction
_JOIN_SLACK_S = 1.0  # extra wait for a thread after aborting its network call
RING_FILE = "spool.ring"


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
        ring_size: records put() accepts that are not yet committed to the spool (the memory ring plus
            the batch the writer is storing) before it returns False (default 10000): the most a
            SIGKILL can lose, and it is counted on the next start (``lost_in_ring``).
        flush_records: wake the writer once the ring holds this many records (default 100), besides
            every ``flush_interval``.
        backoff_initial, backoff_max: retry delays in seconds (defaults 0.5 and 30).
        timeout: network timeout per request / PUBACK wait in seconds (default 10).
        token, headers, gzip, ca_file, verify_tls: HTTP options (also settable in the URL).
        username, password, client_id: MQTT options (client id defaults to ``edgeinfer-<device_id>``).
        records_per_message: MQTT only; pack up to N records per message as ``{"records": [...]}`` (default 1).
        allow_plaintext_credentials: send a token, API key, Basic auth or MQTT password over plain
            ``http://`` / ``mqtt://`` to a host other than loopback (refused by default).
        retry_after_max: longest server ``Retry-After`` honoured, in seconds (default 600).

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
                 records_per_message: int = 1, flush_records: int = 100, allow_plaintext_credentials: bool = False,
                 retry_after_max: float = 600.0) -> None:
        if batch_size < 1 or ring_size < 1 or flush_interval <= 0 or timeout <= 0 or flush_records < 1:
            raise ConfigError(
                f"bad uplink settings batch_size={batch_size}, ring_size={ring_size}, flush_records={flush_records}, "
                f"flush_interval={flush_interval}, timeout={timeout}",
                hint="use batch_size >= 1, ring_size >= 1, flush_records >= 1, flush_interval > 0 and timeout > 0")
        self.url = redact(url)
        self.device_id = default_device_id(device_id)
        self.batch_size, self.flush_interval, self.ring_size = int(batch_size), float(flush_interval), int(ring_size)
        self._backoff = Backoff(initial=backoff_initial, cap=backoff_max)
        self._transport = make_transport(
            url, token=token, headers=headers, gzip=gzip, timeout=timeout, ca_file=ca_file, verify_tls=verify_tls,
            username=username, password=password, client_id=client_id or f"edgeinfer-{self.device_id}", fsync=fsync,
            records_per_message=records_per_message, allow_plaintext_credentials=allow_plaintext_credentials)
        self._spool = Spool(spool_dir, device_id=self.device_id, boot=boot_id(), max_bytes=max_spool_bytes,
                            full_policy=full_policy, fsync=fsync)
        try:
            account_previous_run(self._spool, self._spool.dir / RING_FILE)
        except Exception as exc:  # noqa: BLE001 - counting an old loss must not stop a new start
            log.warning("uplink: could not count what the previous run left in memory: %r", exc)
        self._mark = open_mark(self._spool.dir / RING_FILE)
        self._counts = self._mark.counts if self._mark is not None else [0] * 5
        self._spool.ring_run = self._mark.run if self._mark is not None else None
        self._ring: Deque[Tuple[float, Any]] = collections.deque()
        self._wake_at = int(flush_records)
        self.retry_after_max = float(retry_after_max)
        # Counters bumped by put() without a lock (one producer is the normal case; the GIL keeps
        # each += whole enough for a counter); the writer persists the deltas.
        self._puts = self._ring_overflow = self._rejected_full = self._after_close = self._unserializable = 0
        self._persisted_put_drops = (0, 0, 0, 0)
        self._spooled = 0  # records the writer has taken out of the ring (stored or dropped)
        # reject_new: put() reserves the record's spool bytes, so True means it will be stored.
        self._reserve = full_policy == "reject_new"
        self._overhead = envelope_overhead(self.device_id)
        self._reserved_in = self._reserved_out = 0
        self._closed = False
        self._state, self._last_error = "idle", None
        self._health = Health(send_budget=2 * float(timeout) + 15.0)
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

        True means the record is queued and will be committed to the spool (unless the process is
        killed first: then it is counted as ``lost_in_ring`` on the next start). Under
        ``full_policy="reject_new"`` True also means it has room in the spool: it is delivered or
        stays queued. Under ``"drop_oldest"`` a queued record can later make room for newer ones
        (counted ``spool_full_oldest``). False (and a counted drop) when ``ring_size`` records are
        waiting for the spool, the spool is full under ``reject_new``, the record cannot be JSON
        encoded under ``reject_new``, or the uplink is closed. Do not mutate nested objects of
        ``record`` afterwards.

        Example:
            >>> up.put({"source": "cam0", "frame": 7, "count": 3})  # doctest: +SKIP
            True
        """
        counts = self._counts
        if self._closed:
            self._after_close += 1
            return False
        if self._puts - self._spooled >= self.ring_size:
            self._ring_overflow += 1
            counts[1] = self._ring_overflow
            return False
        if not isinstance(record, dict):
            try:
                record = dict(record)
            except (TypeError, ValueError):
                raise UplinkError(f"put() takes a dict, got {type(record).__name__}",
                                  hint="pass a JSON-able dict, e.g. {'source': 'cam0', 'detections': [...]}") from None
        if self._reserve:
            item = self._reserved_item(record)
            if item is None:
                return False
        else:
            item = (time.time(), dict(record))
        self._ring.append(item)
        self._puts += 1
        counts[0] = self._puts
        if len(self._ring) >= self._wake_at and not self._wake.is_set():
            self._wake.set()
        return True

    def _reserved_item(self, record: Dict[str, Any]) -> Optional[Tuple[float, bytes]]:
        try:
            data = json_bytes(record)
        except (TypeError, ValueError) as exc:
            self._unserializable += 1
            self._counts[4] = self._unserializable
            log.warning("uplink: refused a record that is not JSON-serialisable: %s", exc)
            return None
        size = len(data) + self._overhead
        spool = self._spool
        if spool.bytes + (self._reserved_in - self._reserved_out) + size > spool.max_bytes:
            self._rejected_full += 1
            self._counts[2] = self._rejected_full
            return None
        self._reserved_in += size
        return time.time(), data

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything put() so far is in the spool (durable); True if it got there in time."""
        target = self._puts
        self._wake.set()
        with self._flushed:
            return self._flushed.wait_for(lambda: self._spooled >= target or not self._writer.is_alive(),
                                          timeout=timeout) and self._spooled >= target

    # ------------------------------------------------------------------ spool writer thread
    def _writer_loop(self) -> None:
        health = self._health
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stopping = self._stopping.is_set()
            try:
                self._drain_ring()
                health.writer_ok()
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any single failure
                if health.writer_failed(exc):
                    log.error("uplink: moving records to the spool failed (%s); they stay in memory, retrying", exc)
                if stopping and self._stop_now.is_set():
                    return
                if self._stop_now.wait(min(1.0, self.flush_interval * 10)):
                    return
            if stopping and not self._ring:
                return

    def _drain_ring(self) -> None:
        ring, spool = self._ring, self._spool
        while ring:
            items: List[Tuple[float, Any]] = []
            while ring and len(items) < _WRITER_CHUNK:
                items.append(ring.popleft())
            try:
                spool.append(items, ring_base=self._spooled)
                done = len(items)
            except AppendError as exc:
                done = exc.consumed
                ring.extendleft(reversed(items[done:]))  # keep the rest (in order) for the next cycle
                self._moved(items[:done])
                raise
            self._moved(items)
        self._persist_put_drops()

    def _moved(self, items: List[Tuple[float, Any]]) -> None:
        if not items:
            return
        if self._reserve:  # spool.bytes already counts them (updated first): release the reservation
            self._reserved_out += sum(len(data) + self._overhead for _, data in items)
        with self._flushed:
            self._spooled += len(items)
            self._flushed.notify_all()
        self._send_wake.set()

    def _persist_put_drops(self) -> None:
        now = (self._ring_overflow, self._rejected_full, self._after_close, self._unserializable)
        before = self._persisted_put_drops
        if now != before:
            names = ("ring_overflow", "spool_full_rejected", "after_close", "unserializable")
            meta = None
            if self._spool.ring_run:  # with the spooled count, so the next start can count what is missing
                meta = {"ring.run": self._spool.ring_run, "ring.spooled": str(self._spooled),
                        "ring.drops": ",".join(str(v) for v in now)}
            self._spool.add_drops({k: a - b for k, a, b in zip(names, now, before)}, meta=meta)
            self._persisted_put_drops = now

    # ------------------------------------------------------------------ sender thread
    def _sender_loop(self) -> None:
        health = self._health
        while True:
            health.beat()
            if self._stopping.is_set() and (time.monotonic() >= self._deadline or self._stop_now.is_set()):
                return
            try:
                batch = self._spool.peek(self._batch_limit)
                if not batch:
                    if self._stopping.is_set() and not self._writer.is_alive():
                        return  # closing, ring drained, spool empty: done
                    health.idle(self.flush_interval)
                    self._send_wake.wait(self.flush_interval)
                    self._send_wake.clear()
                    continue
                self._send_one(batch)
            except Exception as exc:  # noqa: BLE001 - a full disk or a bug must not end delivery for good
                if self._stopping.is_set() and self._spool.closed:
                    return
                if health.sender_failed(exc):
                    log.error("uplink: sender error (%s); retrying with backoff", exc)
                delay = self._backoff.next_delay()
                if self._stopping.is_set():
                    delay = min(delay, max(0.0, self._deadline - time.monotonic()))
                health.idle(delay)
                self._stop_now.wait(delay)

    def _send_one(self, batch: List[Tuple[int, bytes]]) -> None:
        self._health.busy()
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
        self._health.sent()
        if self._state == "backing_off":
            log.info("uplink to %s: delivering again (%d queued)", self.url, self._spool.count)
        self._state, self._last_error = "connected", None
        self._backoff.reset()
        self._batch_limit = self.batch_size

    def _handle_failure(self, batch: List[Tuple[int, bytes]], exc: SendError) -> None:
        self._last_error = str(exc)
        if exc.acked:
            self._spool.ack(exc.acked)
        if exc.rejected:
            if len(batch) > 1:  # split until the record the server refuses is alone
                self._batch_limit = max(1, len(batch) // 2)
                return
            log.error("uplink: %s refused record seq %d permanently (%s); dropping it", self.url, batch[0][0], exc)
            self._spool.discard([batch[0][0]], reason="rejected_by_server")
            return
        delay = self._backoff.next_delay()
        if exc.retry_after is not None:  # the server said when: never earlier, up to retry_after_max
            delay = max(delay, min(exc.retry_after, self.retry_after_max))
        if self._state != "backing_off":
            log.warning("uplink to %s: send failed (%s); retrying in %.1f s, %d queued", self.url, exc, delay,
                        self._spool.count)
        self._state = "backing_off"
        if self._stopping.is_set():
            delay = min(delay, max(0.0, self._deadline - time.monotonic()))
        self._health.idle(delay)
        try:
            self._spool.add_retry()
        finally:
            self._stop_now.wait(delay)

    # ------------------------------------------------------------------ reporting and shutdown
    def stats(self) -> Dict[str, Any]:
        """Queue and delivery counters.

        Keys: queued (ring + spool), ring, spool_bytes, spool_file_bytes, oldest_age_s, sent,
        retries, last_ack (epoch s), last_ack_age_s, drops (by reason), dropped_total, state
        ("idle" | "connected" | "backing_off" | "closed"), last_error, put_count, url, and
        ``health`` (the dict :meth:`health` returns).
        """
        try:
            snap = self._spool.snapshot()
        except Exception:  # noqa: BLE001 - closed (or a failing disk): the counters on disk are the final word
            snap = read_spool_status(self._spool.dir)
        drops = dict(snap.get("drops", {}))
        pending = (self._ring_overflow, self._rejected_full, self._after_close, self._unserializable)
        for name, now, before in zip(("ring_overflow", "spool_full_rejected", "after_close", "unserializable"),
                                     pending, self._persisted_put_drops):
            if now - before:
                drops[name] = drops.get(name, 0) + now - before
        # Put but not yet committed to the spool (in the ring or in the writer's hands right now).
        ring = max(0, self._puts - self._spooled)
        snap.update(queued=snap["queued"] + ring, ring=ring, drops=drops, dropped_total=sum(drops.values()),
                    state=self._state_now(), last_error=self._last_error, put_count=self._puts, url=self.url,
                    device_id=self.device_id, health=self.health())
        return snap

    def _state_now(self) -> str:
        return "closed" if self._closed and not self._sender.is_alive() else self._state

    def health(self) -> Dict[str, Any]:
        """Whether the uplink's machinery works, for a ``/readyz`` probe; cheap (no disk, no network).

        Keys: ``ok`` (bool), ``problems`` (list of one-line reasons, empty when ok), ``state``,
        ``sender_alive``, ``writer_alive``, ``stuck`` (a send or wait overran its budget by
        more than a minute), ``last_success`` (epoch s of the last acknowledged batch),
        ``last_error`` / ``last_error_at`` (the last internal error, e.g. a full disk, and when),
        ``spool_write_error`` (set while moving records to the spool fails), ``sender_errors`` and
        ``writer_errors`` (errors each thread caught and survived since the start).
        A network outage alone is not a problem here: ``state`` says ``backing_off``, and
        ``oldest_age_s`` in :meth:`stats` says for how long records have waited.

        Example:
            >>> up.health()["ok"]  # doctest: +SKIP
            True
        """
        return self._health.report(sender_alive=self._sender.is_alive(), writer_alive=self._writer.is_alive(),
                                   closed=self._closed, state=self._state_now())

    def healthy(self) -> bool:
        """``health()["ok"]``."""
        return bool(self.health()["ok"])

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
        if self._mark is not None:
            self._counts = [self._puts] + list(self._counts[1:])  # put() after close must not touch the map
            self._mark.close()
        self._state = "closed"

    def __enter__(self) -> "Uplink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Uplink({self.url!r}, spool={str(self._spool.path)!r}, state={self._state!r})"
