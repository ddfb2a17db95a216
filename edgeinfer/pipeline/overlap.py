"""A software pipeline around the engine: pre-process batch N+1 and post-process N-1 while the engine runs N.

On a Jetson the engine runs on the GPU or DLA and the CPU decodes, pre- and post-processes. Run one
after another (as Ultralytics' predict loop does) those CPU steps add to every engine call; here they
overlap it. Three threads per engine instance, joined by bounded FIFO queues (order is kept):

    pre:    take a batch from the hub (one step with the model choice, see swap.py), split it into
            chunks the engine takes, ``model.prepare(chunk, slot=free slot)``
    engine: ``model.submit(prepared)`` then ``model.collect(prepared)`` (or ``execute``): ONNX Runtime's
            run and CUDA's sync release the GIL, so the other two threads work meanwhile. On an
            asynchronous engine (TensorRT on a CUDA stream) chunk N+1 is submitted before N is collected,
            so the GPU or DLA runs them back to back instead of idling while Python hands results on.
    post:   ``model.finish(prepared)`` -> results -> the collector; the slot is free again

A slot is held from ``prepare`` to the end of ``finish``, so with the model's four staging slots
pre(N+2), engine(N and N+1) and post(N-1) never share a buffer; with fewer the pipeline just overlaps less.
Models without the staged API (user objects with ``infer_batch`` only) that come in through a hot swap
run whole in the engine thread.

Failures: an exception in ``prepare`` or ``execute`` is handled in the engine thread, the only thread
that runs an engine: the worker rolls back (model on probation) or fails over (fallback model) and
re-runs that chunk with ``infer_batch`` on the model now current; chunks already prepared on the failed
model are re-run the same way, so a source's results switch model at one frame. ``infer_batch`` uses
slot 0 and its own scratch buffers, never a staging slot. An exception in ``finish`` (a decoder bug)
stops the pipeline with that error, as does any failure the worker cannot recover from.

Example:
    >>> supports_stages(object())
    False
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Sequence, Set

from .frames import FrameRef

_END = object()  # end of stream, passed down the stages
AHEAD = 2  # chunks on an asynchronous engine at once: N runs while N+1 waits on the stream behind it


def supports_stages(model: Any) -> bool:
    """Whether ``model`` offers the staged API (``prepare``/``execute``/``finish`` and staging slots)."""
    try:
        return bool(getattr(model, "stage_slots", ())) and all(
            callable(getattr(model, name, None)) for name in ("prepare", "execute", "finish"))
    except Exception:  # noqa: BLE001 - a closed or odd object simply runs the plain way
        return False


def chunks(model: Any, refs: List[FrameRef]) -> List[List[FrameRef]]:
    """``refs`` in pieces the engine takes at once (the whole batch for plain models and dynamic batch)."""
    step = int(getattr(model, "stage_batch", 0) or 0) if supports_stages(model) else 0
    if step <= 0:
        return [refs]
    return [refs[i:i + step] for i in range(0, len(refs), step)]


class _Item:
    """One chunk on its way through the stages."""

    __slots__ = ("refs", "model", "generation", "start", "batch_size", "last", "slot", "prepared", "results",
                 "result_model", "error", "pending")

    def __init__(self, refs: List[FrameRef], model: Any, generation: int, start: float, batch_size: int,
                 last: bool) -> None:
        self.refs, self.model, self.generation, self.start = refs, model, generation, start
        self.batch_size, self.last = batch_size, last  # the hub batch this chunk belongs to (stats per batch)
        self.slot: Optional[int] = None
        self.prepared: Any = None
        self.results: Optional[list] = None
        self.result_model: Any = model
        self.error: Optional[BaseException] = None
        self.pending = False  # submitted to an asynchronous engine, not collected yet


class StagedLane:
    """The three threads of one :class:`~edgeinfer.pipeline.infer.InferWorker` running a staged model."""

    def __init__(self, worker: Any) -> None:
        self._w = worker
        depth = 3  # a few chunks between stages; the slots bound what is in flight anyway
        self._to_engine: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
        self._to_post: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
        # by id(model): user models need be neither hashable nor weak-referenceable; the gate and the chunks in
        # flight keep every model here alive
        self._free: Dict[int, "queue.Queue[int]"] = {}
        self._failed: Set[int] = set()  # models that raised: their chunks re-run on the current model
        self._abort = threading.Event()
        name = worker.name
        self.threads = [threading.Thread(target=fn, name=f"infer-{name}-{stage}", daemon=True)
                        for fn, stage in ((self._pre, "pre"), (self._engine, "engine"), (self._post, "post"))]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    # -- queues -----------------------------------------------------------------------------------
    def _put(self, q: "queue.Queue[Any]", item: Any) -> bool:
        while not self._abort.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: "queue.Queue[Any]") -> Any:
        while not self._abort.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def _fail(self, exc: BaseException) -> None:
        """Stop all three stages; frames still queued are released by whoever holds them."""
        first = not self._abort.is_set()
        self._abort.set()
        if first:
            self._w.stop()
            self._w.report_error(exc)

    def _drop(self, items: Sequence[Any]) -> None:
        for item in items:
            if isinstance(item, _Item):
                for ref in item.refs:
                    ref.release()
                self._w.batch_done(item)

    def _drain(self, q: "queue.Queue[Any]") -> None:
        while True:
            try:
                self._drop([q.get_nowait()])
            except queue.Empty:
                return

    # -- slots ------------------------------------------------------------------------------------
    def _acquire(self, model: Any) -> Optional[int]:
        free = self._free.get(id(model))
        if free is None:
            free = self._free[id(model)] = queue.Queue()
            for slot in model.stage_slots:
                free.put(slot)
        slot = self._get(free)
        return None if slot is _END else slot

    def _release(self, item: _Item) -> None:
        if item.slot is not None:
            self._free[id(item.model)].put(item.slot)
            item.slot = None

    # -- stages -----------------------------------------------------------------------------------
    def _pre(self) -> None:
        held: List[_Item] = []
        try:
            while not self._abort.is_set() and not self._w.stopping:
                refs, generation, model = self._w.take()
                if refs is None:
                    break
                if not refs:
                    continue
                start = time.perf_counter()
                self._w.note_queue_wait(refs, start)
                parts = chunks(model, refs)
                held = [_Item(part, model, generation, start, len(refs), i == len(parts) - 1)
                        for i, part in enumerate(parts)]
                while held:
                    item = held[0]
                    if supports_stages(model) and id(model) not in self._failed:
                        item.slot = self._acquire(model)
                        if item.slot is None:
                            return  # aborted; `held` is released below
                        try:
                            item.prepared = model.prepare([r.array for r in item.refs], slot=item.slot)
                        except Exception as exc:  # recovered in the engine thread (rollback / failover)
                            item.error = exc
                    if not self._put(self._to_engine, item):
                        return
                    held.pop(0)
            self._put(self._to_engine, _END)
        except BaseException as exc:  # any failure must reach the caller
            self._fail(exc)
        finally:
            for item in held:
                self._release(item)
            self._drop(held)

    def _engine(self) -> None:
        inflight: Deque[_Item] = deque()
        try:
            while True:
                item = self._get(self._to_engine) if not inflight else self._poll(self._to_engine)
                if item is None:  # nothing new yet: collect the oldest rather than hold it
                    if not self._forward(inflight.popleft()):
                        return
                    continue
                if item is _END:
                    while inflight:
                        if not self._forward(inflight.popleft()):
                            return
                    self._put(self._to_post, _END)
                    return
                inflight.append(item)
                self._start(item)
                while inflight and (len(inflight) >= AHEAD or not inflight[-1].pending):
                    if not self._forward(inflight.popleft()):
                        return
        except BaseException as exc:
            self._fail(exc)
        finally:  # stopped or failed with chunks on the engine: let the GPU finish with their buffers first
            for held in inflight:
                self._abandon(held)
            self._drain(self._to_engine)

    def _abandon(self, item: _Item) -> None:
        if item.pending:
            item.pending = False
            try:
                item.model.collect(item.prepared)
            except Exception:  # noqa: BLE001 - the chunk is dropped either way; its error was or will be reported
                pass
        self._release(item)
        self._drop([item])

    def _poll(self, q: "queue.Queue[Any]") -> Any:
        try:
            return q.get_nowait()
        except queue.Empty:
            return _END if self._abort.is_set() else None

    def _start(self, item: _Item) -> None:
        """Submit ``item`` to its model's engine (or run it whole); failures go to recovery."""
        model = item.model
        if item.error is None and id(model) not in self._failed:
            try:
                if item.prepared is not None:
                    submit = getattr(model, "submit", None)
                    if callable(submit) and callable(getattr(model, "collect", None)):
                        submit(item.prepared)
                        item.pending = bool(getattr(item.prepared, "pending", False))
                    else:
                        model.execute(item.prepared)
                    return
                item.results = list(model.infer_batch([r.array for r in item.refs]))
                return
            except Exception as exc:
                item.error = exc
        self._rerun(item)

    def _forward(self, item: _Item) -> bool:
        """Collect ``item`` if it is still on the engine, then hand it to post-processing (False: aborted)."""
        try:
            if item.pending:
                item.pending = False
                try:
                    item.model.collect(item.prepared)
                except Exception as exc:
                    item.error = exc
            if item.prepared is not None and (item.error is not None or id(item.model) in self._failed):
                self._rerun(item)  # failed now, or submitted before an earlier chunk of its model failed
        except BaseException:
            self._abandon(item)
            raise
        if self._put(self._to_post, item):
            return True
        self._abandon(item)
        return False

    def _rerun(self, item: _Item) -> None:
        """A failure of this model (now or of an earlier chunk): the worker picks the model to re-run on."""
        model = item.model
        self._release(item)
        item.prepared = None
        if item.error is not None and id(model) not in self._failed:
            self._failed.add(id(model))
            current = self._w.recover(item.error, item.generation)
        else:
            current = self._w.current_model()
        item.results, item.result_model, item.error = list(current.infer_batch([r.array for r in item.refs])), current, None

    def _post(self) -> None:
        item: Any = None
        try:
            while True:
                item = self._get(self._to_post)
                if item is _END:
                    return
                if item.prepared is not None:
                    try:
                        item.results = item.model.finish(item.prepared)
                    finally:
                        self._release(item)
                self._w.emit(item.refs, item.results or [], item.result_model, item, time.perf_counter())
                item = None
        except BaseException as exc:
            if isinstance(item, _Item):
                self._drop([item])
            self._fail(exc)
        finally:
            self._drain(self._to_post)
