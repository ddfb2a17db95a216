"""Inference workers (one per engine instance) and the per-source re-ordering collector.

Several instances (GPU, DLA0, DLA1, or several ONNX Runtime sessions) pull batches from one
hub; batches finish out of order, so the :class:`Collector` holds results until every earlier
frame of the same source is done (by the hub's dispatch sequence, which has no gaps even when
live frames were dropped before dispatch).

Failover: an exception from ``infer_batch`` switches that worker to its fallback model (built
once, e.g. ONNX Runtime for the same bundle), logs it, counts it in the stats and re-runs the
same batch. Without a fallback the error stops the pipeline and reaches the caller.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import BackendError
from ..telemetry.latency import Counter, LatencyRecorder, RateMeter
from .frames import FrameRef
from .hub import FrameHub
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
    """One engine instance in its own thread."""

    def __init__(self, name: str, model: Any, hub: FrameHub, collector: Collector, *, max_batch: int, max_delay: float,
                 fallback: Optional[Callable[[], Any]], on_error: Callable[[BaseException], None],
                 on_failover: Callable[[Dict[str, Any]], None], gate: Any = None) -> None:
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
        self.busy = False  # inside a batch (a swapped-out model is closed only when no worker is)
        self.batches = Counter()
        self.frames = Counter()
        self.batch_sizes = Counter()
        self.latency = LatencyRecorder()  # per batch: infer_batch wall time
        self.queue_wait = LatencyRecorder()  # per frame: read → batch start
        self.fps = RateMeter()
        self._thread = threading.Thread(target=self._run, name=f"infer-{name}", daemon=True)

    @property
    def backend(self) -> str:
        return backend_name(self.model)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        if self._thread.ident is None:  # never started (start-up failed)
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        batch: List[FrameRef] = []
        try:
            while not self._stop.is_set():
                got, generation = self._take()
                if got is None:
                    return
                if not got:
                    continue
                batch = got
                try:
                    self._process(batch, generation)
                finally:
                    self.busy = False
                batch = []
        except BaseException as exc:  # the caller must see every failure of this thread
            for ref in batch:
                ref.release()
            self._on_error(exc)

    def _take(self) -> Tuple[Optional[List[FrameRef]], int]:
        if self._gate is None:
            return self._hub.get_batch(max_batch=self._max_batch, max_delay=self._max_delay, timeout=0.25), 0
        # Taking frames and reading the model in one step keeps dispatch order and model order the same.
        with self._gate.lock:
            got = self._hub.get_batch(max_batch=self._max_batch, max_delay=self._max_delay, timeout=0.25)
            generation = self._gate.generation
            if got:
                self.busy = True
                self.model = self._gate.model_for(self.name, generation)
                self._gate.note_batch(generation, got, time.perf_counter())
        return got, generation

    def _infer(self, frames, generation: int = 0) -> list:
        try:
            return list(self.model.infer_batch(frames))
        except Exception as exc:
            if self._gate is not None and self._gate.note_error(generation, exc):
                log.error("instance %s: the new model failed (%r); rolled back to the previous model", self.name, exc)
                with self._gate.lock:
                    self.model = self._gate.model_for(self.name, self._gate.generation)
                return list(self.model.infer_batch(frames))
            if self._fallback is None or self.failed_over:
                if isinstance(exc, BackendError):
                    raise
                raise BackendError(f"inference failed on instance {self.name} ({self.backend}): {exc!r}",
                                   hint="configure a fallback backend (fallback='onnxruntime') or check the engine") from exc
            old = self.backend
            log.error("instance %s: backend %s failed (%r); switching to the fallback backend", self.name, old, exc)
            self.model = self._fallback()
            self.failed_over = True
            if self._gate is not None:
                self._gate.replace(self.name, self.model)
            self._on_failover({"instance": self.name, "from": old, "to": self.backend, "error": repr(exc), "time": time.time()})
            return list(self.model.infer_batch(frames))

    def _process(self, batch: List[FrameRef], generation: int = 0) -> None:
        start = time.perf_counter()
        for ref in batch:
            self.queue_wait.record(start - ref.capture_mono)
        outputs = self._infer([ref.array for ref in batch], generation)
        done = time.perf_counter()
        if self._gate is not None:
            self._gate.note_done(generation, done - start, len(batch))
        model_id, model_version = getattr(self.model, "model_id", None), getattr(self.model, "model_version", None)
        if len(outputs) != len(batch):
            raise BackendError(f"instance {self.name} returned {len(outputs)} results for a batch of {len(batch)}",
                               hint="infer_batch must return one result per input frame")
        self.latency.record(done - start)
        self.batches.add()
        self.frames.add(len(batch))
        self.batch_sizes.add(len(batch))
        self.fps.tick(len(batch), now=done)
        wall = time.time()
        items = [
            (FrameResult(ref.source_id, ref.index, ref.capture_ts, out, result_ts=wall,
                         latency_ms=(done - ref.capture_mono) * 1000.0, batch_size=len(batch), instance=self.name,
                         frame_name=ref.name, model_id=model_id, model_version=model_version), ref)
            for ref, out in zip(batch, outputs)
        ]
        self._collector.collect(items)
