"""One capture thread per source: decode into pooled slots, feed the hub, rebuild on stalls.

Watchdog: a live source that delivers no frame for ``timeout_s`` seconds
(read failure or read timeout) is torn down and rebuilt from scratch — not retried in place —
with exponential backoff and jitter between attempts. Each state change (connecting,
connected, lost, reconnecting, ended, failed) is reported as a :class:`SourceEvent` and in the
stats. A read stuck beyond the backend's own timeout is caught by the pipeline's monitor,
which abandons the stuck thread and starts a fresh one (see :meth:`CaptureWorker.stalled`).

Example:
    >>> policy = ReconnectPolicy(initial_s=0.5, max_s=8.0, factor=2.0, jitter=0.0)
    >>> [policy.delay(n) for n in range(5)]
    [0.5, 1.0, 2.0, 4.0, 8.0]
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from ..errors import EdgeInferError, SourceError
from ..telemetry.latency import Counter, LatencyRecorder, RateMeter
from .frames import FramePool, FrameRef
from .hub import FrameHub
from .sources import FrameReader, SourceUnavailable, open_reader
from .uri import SourceSpec, describe_target

log = logging.getLogger(__name__)

BOUNDED_RUN_ATTEMPTS = 5  # connection attempts before a --max-frames run gives up on a source that never delivered
STATES = ("idle", "connecting", "connected", "lost", "reconnecting", "ended", "failed", "stopped")


@dataclass(frozen=True)
class ReconnectPolicy:
    """Watchdog and backoff knobs for live sources."""

    timeout_s: float = 5.0  # no frame for this long → source lost, rebuild it
    initial_s: float = 0.5  # first backoff delay
    max_s: float = 30.0  # backoff cap
    factor: float = 2.0
    jitter: float = 0.2  # ± fraction of the delay, so a fleet does not reconnect in lock-step
    max_attempts: Optional[int] = None  # None = keep trying until close()

    def delay(self, attempt: int, *, rng: Optional[random.Random] = None) -> float:
        base = min(self.max_s, self.initial_s * (self.factor ** max(0, attempt)))
        if self.jitter <= 0:
            return base
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))


@dataclass(frozen=True)
class SourceEvent:
    """A state change of one source."""

    source_id: str
    state: str
    time: float  # wall clock
    detail: str = ""
    attempt: int = 0
    model_id: Optional[str] = None  # the model running when it happened (set by the pipeline)


class CaptureWorker:
    """Reads one source in its own thread and puts frames into the hub."""

    def __init__(self, source_id: str, spec: SourceSpec, hub: FrameHub, *, policy: ReconnectPolicy,
                 pool_slots: int, on_event: Callable[[SourceEvent], None], on_error: Callable[[BaseException], None],
                 loop: bool = False, max_frames: Optional[int] = None, stride: int = 1,
                 allocate: Optional[Callable[[Tuple[int, ...]], np.ndarray]] = None) -> None:
        self.source_id = source_id
        self._stride = max(1, int(stride))  # publish every Nth frame only (indices keep counting every frame)
        self.nominal_fps = 0.0  # what the source says its frame rate is (files, most cameras); 0: unknown
        self.spec = spec
        self.live = spec.live
        self._hub = hub
        self._policy = policy
        self._pool_slots = pool_slots
        self._pool: Optional[FramePool] = None
        self._allocate = allocate  # frame slot allocator (pinned host memory when a model pre-processes on the GPU)
        self._on_event = on_event
        self._on_error = on_error
        self._loop = loop
        self._max_frames = max_frames
        self._stop = threading.Event()
        self._generation = 0
        self._gen_lock = threading.Lock()  # serialises "lost" between the capture thread and the monitor
        self._thread: Optional[threading.Thread] = None
        self._rng = random.Random()
        self.state = "idle"  # the first _connect emits "connecting"
        self.frames = 0
        self.reconnects = Counter()
        self.pool_drops = Counter()
        self.slot_copies = Counter()  # frames the reader could not decode in place (first frame of unknown size)
        self.read_latency = LatencyRecorder()
        self.fps = RateMeter()
        self.last_frame_mono = time.perf_counter()
        self.last_activity = time.perf_counter()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._spawn()

    def _spawn(self, *, resumed: bool = False) -> None:
        self._generation += 1
        gen = self._generation
        self.last_activity = time.perf_counter()
        self._thread = threading.Thread(target=self._run, args=(gen, resumed), name=f"capture-{self.source_id}-{gen}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        """True when the thread ended within ``timeout`` seconds."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stalled(self, now: float) -> bool:
        """A connected live source has delivered no frame for ``timeout_s`` (the read is hung or too slow).

        Backends' own read timeouts are not reliable enough for this (OpenCV's FFmpeg backend retries
        a timed-out read several times), so the pipeline's monitor calls this and :meth:`abandon`.
        """
        return (self.live and not self._stop.is_set() and self.state == "connected"
                and now - self.last_frame_mono > self._policy.timeout_s)

    def abandon(self) -> None:
        """Declare the source lost and rebuild it in a fresh thread; the stuck one exits when its read returns."""
        with self._gen_lock:
            if self.state != "connected" or self._stop.is_set():
                return
            self._set_state("lost", f"no frame for {self._policy.timeout_s:.1f} s")
            self._spawn(resumed=True)

    # -- thread body -------------------------------------------------------------------------
    def _current(self, gen: int) -> bool:
        return gen == self._generation and not self._stop.is_set()

    def _set_state(self, state: str, detail: str = "", attempt: int = 0) -> None:
        if state == self.state and state not in ("reconnecting",):
            return
        self.state = state
        level = logging.INFO if state in ("connected", "ended", "connecting") else logging.WARNING
        log.log(level, "source %s (%s): %s %s", self.source_id, describe_target(self.spec), state, detail)
        self._on_event(SourceEvent(self.source_id, state, time.time(), detail, attempt))

    def _run(self, gen: int, resumed: bool = False) -> None:
        try:
            self._run_loop(gen, resumed)
        except EdgeInferError as exc:
            if self._current(gen):
                self._set_state("failed", str(exc))
                self._on_error(exc)
        except BaseException as exc:  # any bug or library failure must reach the caller, not vanish in a thread
            if self._current(gen):
                self._set_state("failed", repr(exc))
                self._on_error(exc)
        finally:
            if gen == self._generation:
                if self._stop.is_set() and self.state not in ("ended", "failed"):
                    self._set_state("stopped")
                self._hub.source_done(self.source_id)

    def _run_loop(self, gen: int, resumed: bool) -> None:
        attempt = 1 if resumed else 0
        first = not resumed
        if resumed:
            self._backoff(gen, attempt)
        while self._current(gen):
            reader = self._connect(gen, first, attempt)
            first = False
            if reader is None:
                attempt += 1
                limit = self._attempt_limit()
                if limit is not None and attempt >= limit:
                    what = "could not be opened" if self.frames == 0 else "did not come back"
                    raise SourceError(f"source {self.source_id} ({describe_target(self.spec)}) {what} after {attempt} attempts",
                                      hint="check the camera/stream, or raise ReconnectPolicy.max_attempts")
                self._backoff(gen, attempt)
                continue
            try:
                outcome = self._pump(gen, reader)
            finally:
                reader.close()
            if outcome == "ended":
                self._set_state("ended")
                return
            if outcome == "stop":
                return
            attempt = 1 if outcome == "lost-after-frames" else attempt + 1
            with self._gen_lock:
                if not self._current(gen):
                    return  # the monitor already declared it lost and started a fresh thread
                self._set_state("lost", f"no frame for {self._policy.timeout_s:.1f} s")
            self._backoff(gen, attempt)

    def _attempt_limit(self) -> Optional[int]:
        """The policy's limit; a bounded run (``max_frames``) whose source never delivered gives up too.

        Otherwise ``--max-frames`` on an unplugged camera would retry forever, since no frame ever counts.
        """
        if self._policy.max_attempts is not None:
            return self._policy.max_attempts
        if self._max_frames is not None and self.frames == 0:
            return BOUNDED_RUN_ATTEMPTS
        return None

    def _connect(self, gen: int, first: bool, attempt: int) -> Optional[FrameReader]:
        if not first:
            self.reconnects.add()  # every attempt after the first counts, successful or not
        self._set_state("connecting" if first else "reconnecting", attempt=attempt)
        self.last_activity = time.perf_counter()
        try:
            reader = open_reader(self.spec, timeout_s=self._policy.timeout_s)
            try:
                self.nominal_fps = float(getattr(reader, "fps", 0.0) or 0.0)
            except Exception:  # a reader that cannot tell its rate: analytics fall back to their default
                self.nominal_fps = 0.0
            self._size_pool(reader)
            return reader
        except SourceUnavailable as exc:
            if not self.live:
                raise
            log.warning("source %s: %s", self.source_id, exc)
            return None

    def _backoff(self, gen: int, attempt: int) -> None:
        delay = self._policy.delay(attempt - 1 if attempt > 0 else 0, rng=self._rng)
        self._set_state("reconnecting", f"next attempt in {delay:.2f} s", attempt)
        self._stop.wait(delay)
        self.last_activity = time.perf_counter()

    def _slot(self) -> Optional[FrameRef]:
        if self._pool is None:
            return None
        # Live: never wait for a slot (a held-up pipeline must not delay the camera). Files: wait.
        return self._pool.acquire(timeout=0.0 if self.live else 0.2)

    def _pump(self, gen: int, reader: FrameReader) -> str:
        got_frames = False
        scratch: Optional[np.ndarray] = None
        while self._current(gen):
            if self._max_frames is not None and self.frames >= self._max_frames:
                return "ended"
            ref = self._slot()
            if ref is None and self._pool is not None and not self.live:
                continue  # file back-pressure: wait for a slot
            t0 = time.perf_counter()
            frame = reader.read(ref.array if ref is not None else scratch)
            t1 = time.perf_counter()
            self.last_activity = t1
            if not self._current(gen):
                if ref is not None:
                    ref.release()
                return "stop"
            # A live read that blocked for the whole watchdog period counts as a stall even when it
            # returns something: OpenCV's FFmpeg backend hands out a flushed frame after its read timeout.
            stalled_read = self.live and t1 - t0 >= 0.95 * self._policy.timeout_s
            if frame is None or stalled_read:
                if ref is not None:
                    ref.release()
                if self.live:
                    return "lost-after-frames" if got_frames else "lost"
                if self._loop and reader.rewind():
                    continue
                return "ended"
            if not got_frames:
                got_frames = True
                self._set_state("connected")
            self.last_frame_mono = t1
            self.read_latency.record(t1 - t0)
            if ref is None or frame is not ref.array:
                ref = self._adopt(frame, ref)
                if ref is None:  # live source, every slot busy: the frame is dropped, counted
                    scratch = frame
                    self.pool_drops.add()
                    continue
            ref.name = getattr(reader, "current_name", "")
            self._publish(ref, t1)
        return "stop"

    def _size_pool(self, reader: FrameReader) -> None:
        """Make the slot pool before the first read when the reader knows its frame size, so even the
        first frame is decoded in place."""
        try:
            shape = getattr(reader, "frame_shape", None)
        except Exception:  # noqa: BLE001 - a reader that cannot tell: the first frame sizes the pool
            shape = None
        if shape and (self._pool is None or self._pool.shape != tuple(shape)):
            self._pool = FramePool(shape=tuple(shape), slots=self._pool_slots, allocate=self._allocate)

    def _adopt(self, frame: np.ndarray, ref: Optional[FrameRef]) -> Optional[FrameRef]:
        """Copy a frame the reader allocated (size unknown before, or a resolution change) into a pooled slot."""
        if self._pool is None or self._pool.shape != frame.shape:
            if ref is not None:
                ref.release()
            self._pool = FramePool(shape=frame.shape, slots=self._pool_slots, allocate=self._allocate)
            ref = self._pool.acquire(timeout=0.0)
        if ref is None:
            return None
        np.copyto(ref.array, frame)
        self.slot_copies.add()
        return ref

    def _publish(self, ref: FrameRef, t_read: float) -> None:
        ref.source_id = self.source_id
        ref.index = self.frames
        ref.capture_ts = time.time()
        ref.capture_mono = t_read
        self.frames += 1
        self.fps.tick(now=t_read)
        if self._stride > 1 and ref.index % self._stride:
            ref.release()  # skipped by --stride: never reaches inference
            return
        if self.live:
            self._hub.put(ref)
            return
        while not self._stop.is_set():
            if self._hub.put(ref.retain(), timeout=0.25):
                ref.release()
                return
            if self._hub.closed:
                break
        ref.release()
