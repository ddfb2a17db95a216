"""Inference workers (one per engine instance) and the per-source re-ordering collector.

Several instances (GPU, DLA0, DLA1, or several ONNX Runtime sessions) pull batches from one
hub; batches finish out of order, so the :class:`Collector` holds results until every earlier
frame of the same source is done (by the hub's dispatch sequence, which has no gaps even when
live frames were dropped before dispatch).

Each worker overlaps pre-processing, the engine and post-processing in three threads for models
with the staged API (:mod:`~edgeinfer.pipeline.overlap`); other models run ``infer_batch`` in one.

Failover: an exception from the engine switches that worker to its fallback model (built
once, e.g. ONNX Runtime for the same bundle), logs it, counts it in the stats and re-runs the
same batch. Without a fallback the error stops the pipeline and reaches the caller.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ..errors import BackendError
from ..telemetry.latency import Counter, LatencyRecorder, RateMeter
from .frames import FrameRef
from .hub import FrameHub
from .overlap import StagedLane, supports_stages
from .results import FrameResult

log = logging.getLogger(__name__)


def backend_name(model: Any) -> str:
    return str(getattr(model, "backend_name", None) or type(model).__name__)


class Collector:
    """Puts results back into capture order per source, then hands each to ``emit``."""

    def __init__(self, emit: Callable[[FrameResult, FrameRef], None]) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._next: Dict[str, int] = {}
        self._pending: Dict[str, Dict[int, Tuple[FrameResult, FrameRef]]] = {}
        self.reordered = Counter()  # results that arrived ahead of an earlier frame and had to wait

    def collect(self, items: List[Tuple[FrameResult, FrameRef]]) -> None:
        # Emission happens under the lock so two workers cannot interleave one source's results.
        with self._lock:
            for result, ref in items:
                sid = result.source_id
                pending = self._pending.setdefault(sid, {})
                if ref.seq != self._next.get(sid, 0):
                    self.reordered.add()
                pending[ref.seq] = (result, ref)
                nxt = self._next.get(sid, 0)
                while nxt in pending:
                    res, r = pending.pop(nxt)
                    nxt += 1
                    self._next[sid] = nxt
                    self._emit(res, r)

    def pending(self) -> int:
        """Results waiting for an earlier frame. Lock-free on purpose: ``emit`` may block under the lock
        (back-pressure from a consumer who stopped iterating), and stats() must still answer."""
        return sum(len(p) for p in list(self._pending.values()))

    def discard(self) -> None:
        """Release frames of results that can no longer be emitted (shutdown after an error)."""
        with self._lock:
            leftovers = [r for p in self._pending.values() for _, r in p.values()]
            self._pending.clear()
        for ref in leftovers:
            ref.release()


class InferWorker:
    """One engine instance: a software pipeline of three threads (pre / engine / post, see
    :mod:`~edgeinfer.pipeline.overlap`) for models with the staged API, else one thread calling ``infer_batch``."""

    def __init__(self, name: str, model: Any, hub: FrameHub, collector: Collector, *, max_batch: int, max_delay: float,
                 fallback: Optional[Callable[[], Any]], on_error: Callable[[BaseException], None],
                 on_failover: Callable[[Dict[str, Any]], None], gate: Any = None, overlap: bool = True) -> None:
        self.name = name
        self._gate = gate  # ModelGate (pipeline/swap.py): hot swaps switch models between two frames
        self.model = model
        self._hub = hub
        self._collector = collector
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._fallback = fallback
        self._on_error = on_error
        self._on_failover = on_failover
        self._stop = threading.Event()
        self.failed_over = False
        self._inflight: Dict[int, int] = {}  # id(model) -> hub batches taken and not yet emitted
        self._inflight_lock = threading.Lock()
        self.batches = Counter()
        self.frames = Counter()
        self.batch_sizes = Counter()
        self.latency = LatencyRecorder()  # per batch: taken from the hub -> results out (pre + engine + post)
        self.queue_wait = LatencyRecorder()  # per frame: read → batch start
        self.fps = RateMeter()
        self._lane = StagedLane(self) if overlap and supports_stages(model) else None
        self.overlapped = self._lane is not None
        self._threads = self._lane.threads if self._lane is not None else [
            threading.Thread(target=self._run, name=f"infer-{name}", daemon=True)]

    @property
    def backend(self) -> str:
        return backend_name(self.model)

    @property
    def busy(self) -> bool:
        """Inside a batch (a swapped-out model is closed only when no worker runs it: :meth:`models_in_flight`)."""
        return bool(self._inflight)

    def models_in_flight(self) -> Set[int]:
        """ids of the models that batches now in this worker were taken for."""
        with self._inflight_lock:
            return set(self._inflight)

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        for t in self._threads:
            if t.ident is not None:  # never started (start-up failed)
                t.join(max(0.0, deadline - time.perf_counter()))
        return not self.alive

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # -- the plain path: one thread, infer_batch ------------------------------------------------------------
    def _run(self) -> None:
        batch: List[FrameRef] = []
        try:
            while not self._stop.is_set():
                got, generation, model = self.take()
                if got is None:
                    return
                if not got:
                    continue
                batch = got
                self._process(batch, generation, model)
                batch = []
        except BaseException as exc:  # the caller must see every failure of this thread
            for ref in batch:
                ref.release()
            with self._inflight_lock:
                self._inflight.clear()
            self._on_error(exc)

    def _process(self, batch: List[FrameRef], generation: int, taken: Any) -> None:
        start = time.perf_counter()
        self.note_queue_wait(batch, start)
        model = taken
        try:
            outputs = list(model.infer_batch([ref.array for ref in batch]))
        except Exception as exc:
            model = self.recover(exc, generation)
            outputs = list(model.infer_batch([ref.array for ref in batch]))
        self.emit(batch, outputs, model, _Batch(taken, generation, start, len(batch)), time.perf_counter())

    # -- shared by both paths -----------------------------------------------------------------------------------
    def take(self) -> Tuple[Optional[List[FrameRef]], int, Any]:
        """A batch from the hub, the generation and the model it runs on, chosen in one step (and marked in flight)."""
        if self._gate is None:
            got = self._hub.get_batch(max_batch=self._max_batch, max_delay=self._max_delay, timeout=0.25)
            model = self.model
            if got:
                self._mark(model, +1)
            return got, 0, model
        # Taking frames and reading the model in one step keeps dispatch order and model order the same.
        with self._gate.lock:
            got = self._hub.get_batch(max_batch=self._max_batch, max_delay=self._max_delay, timeout=0.25)
            generation = self._gate.generation
            model = self.model
            if got:
                model = self.model = self._gate.model_for(self.name, generation)
                self._mark(model, +1)
                self._gate.note_batch(generation, got, time.perf_counter())
        return got, generation, model

    def _mark(self, model: Any, delta: int) -> None:
        with self._inflight_lock:
            n = self._inflight.get(id(model), 0) + delta
            if n > 0:
                self._inflight[id(model)] = n
            else:
                self._inflight.pop(id(model), None)

    def note_queue_wait(self, batch: List[FrameRef], start: float) -> None:
        for ref in batch:
            self.queue_wait.record(start - ref.capture_mono)

    def current_model(self) -> Any:
        if self._gate is None:
            return self.model
        with self._gate.lock:
            return self._gate.model_for(self.name, self._gate.generation)

    def recover(self, exc: BaseException, generation: int) -> Any:
        """The model that re-runs a batch whose model raised ``exc``: the previous model when the failing one
        was on probation (rollback), else the fallback (built once); raises when there is neither."""
        if self._gate is not None and self._gate.note_error(generation, exc):
            log.error("instance %s: the new model failed (%r); rolled back to the previous model", self.name, exc)
            with self._gate.lock:
                self.model = self._gate.model_for(self.name, self._gate.generation)
            return self.model
        if self._fallback is None or self.failed_over:
            if isinstance(exc, BackendError):
                raise exc
            raise BackendError(f"inference failed on instance {self.name} ({self.backend}): {exc!r}",
                               hint="configure a fallback backend (fallback='onnxruntime') or check the engine") from exc
        old = self.backend
        log.error("instance %s: backend %s failed (%r); switching to the fallback backend", self.name, old, exc)
        model = self._fallback()
        self.failed_over = True
        if self._gate is not None:
            self._gate.replace(self.name, model)
        self.model = model
        self._on_failover({"instance": self.name, "from": old, "to": backend_name(model), "error": repr(exc),
                           "time": time.time()})
        return model

    def report_error(self, exc: BaseException) -> None:
        with self._inflight_lock:
            self._inflight.clear()
        self._on_error(exc)

    def batch_done(self, part: Any) -> None:
        """The last piece of a hub batch has left this worker (emitted or dropped)."""
        if part.last:
            self._mark(part.model, -1)

    def emit(self, refs: List[FrameRef], outputs: list, model: Any, part: Any, done: float) -> None:
        """Results of ``refs`` (one chunk, or the whole batch on the plain path) to the collector, plus stats."""
        if len(outputs) != len(refs):
            raise BackendError(f"instance {self.name} returned {len(outputs)} results for a batch of {len(refs)}",
                               hint="infer_batch must return one result per input frame")
        model_id, model_version = getattr(model, "model_id", None), getattr(model, "model_version", None)
        self.frames.add(len(refs))
        if part.last:
            if self._gate is not None:
                self._gate.note_done(part.generation, done - part.start, part.batch_size)
            self.latency.record(done - part.start)
            self.batches.add()
            self.batch_sizes.add(part.batch_size)
        self.fps.tick(len(refs), now=done)
        wall = time.time()
        items = [
            (FrameResult(ref.source_id, ref.index, ref.capture_ts, out, result_ts=wall,
                         latency_ms=(done - ref.capture_mono) * 1000.0, batch_size=part.batch_size, instance=self.name,
                         frame_name=ref.name, model_id=model_id, model_version=model_version), ref)
            for ref, out in zip(refs, outputs)
        ]
        try:
            self._collector.collect(items)
        finally:
            self.batch_done(part)


class _Batch:
    """The plain path's whole batch, shaped like a staged chunk for :meth:`InferWorker.emit`."""

    __slots__ = ("generation", "start", "batch_size", "last", "model")

    def __init__(self, model: Any, generation: int, start: float, size: int) -> None:
        self.model, self.generation, self.start, self.batch_size, self.last = model, generation, start, size, True
