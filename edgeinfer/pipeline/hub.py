"""The frame hub between capture and inference: per-source bounded channels + dynamic micro-batching.

Policies (the defaults of roboflow/inference's InferencePipeline -- ``BufferFillingStrategy``
DROP_OLDEST for streams, WAIT for files, in ``inference/core/interfaces/camera/video_source.py`` --
and of Ultralytics' ``LoadStreams`` in ``ultralytics/data/loaders.py``, which keeps only the latest
frame of a stream unless ``buffer=True``):
- live sources (cameras, RTSP): a full channel drops its *oldest* frame (counted) so inference
  always sees the freshest frame and capture never blocks;
- files and image folders: a full channel blocks capture (back-pressure), nothing is lost.

Batching follows Triton's dynamic batcher: a batch leaves as soon as ``max_batch`` frames are
there; otherwise it waits at most ``max_delay`` seconds counted from when its oldest frame was
queued, then goes with what it has. Sources are served round-robin so one fast file cannot
starve a camera. Several inference workers may call :meth:`FrameHub.get_batch` at once.

Example:
    >>> from edgeinfer.pipeline.frames import FramePool
    >>> hub = FrameHub(); hub.add_source("cam", live=True, capacity=1)
    >>> pool = FramePool(shape=(2, 2, 3), slots=3)
    >>> for i in range(3):
    ...     ref = pool.acquire(); ref.source_id = "cam"; ref.index = i; hub.put(ref)
    True
    True
    True
    >>> [r.index for r in hub.get_batch(max_batch=4, max_delay=0.0, timeout=0.1)], hub.drops("cam")
    ([2], 2)
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Dict, List, Optional

from ..errors import InternalError
from .frames import FrameRef


class _Channel:
    __slots__ = ("live", "capacity", "items", "drops", "done", "next_seq", "put_total")

    def __init__(self, live: bool, capacity: int) -> None:
        self.live = live
        self.capacity = max(1, int(capacity))
        self.items: deque = deque()  # (enqueue_mono, FrameRef)
        self.drops = 0
        self.done = False
        self.next_seq = 0
        self.put_total = 0


class FrameHub:
    """Bounded per-source channels feeding one or more inference workers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._channels: Dict[str, _Channel] = {}
        self._order: List[str] = []
        self._rr = 0
        self._closed = False

    def add_source(self, source_id: str, *, live: bool, capacity: int) -> None:
        with self._cond:
            if source_id in self._channels:
                raise InternalError(f"source id {source_id!r} registered twice")
            self._channels[source_id] = _Channel(live, capacity)
            self._order.append(source_id)

    def put(self, ref: FrameRef, *, timeout: Optional[float] = None) -> bool:
        """Queue one frame (the hub takes over the caller's reference).

        Returns False, and releases the frame, when the hub closed or a file channel stayed
        full for ``timeout`` seconds; the caller then checks whether it should stop.
        """
        with self._cond:
            ch = self._channels[ref.source_id]
            if not ch.live:
                ok = self._cond.wait_for(lambda: self._closed or len(ch.items) < ch.capacity, timeout=timeout)
                if not ok or self._closed:
                    ref.release()
                    return False
            elif self._closed:
                ref.release()
                return False
            dropped = None
            if ch.live and len(ch.items) >= ch.capacity:
                dropped = ch.items.popleft()[1]
                ch.drops += 1
            ch.items.append((time.perf_counter(), ref))
            ch.put_total += 1
            self._cond.notify_all()
        if dropped is not None:
            dropped.release()
        return True

    def source_done(self, source_id: str) -> None:
        """No more frames will come from ``source_id``: lets partial batches leave at once."""
        with self._cond:
            self._channels[source_id].done = True
            self._cond.notify_all()

    def close(self) -> None:
        """Stop: wake every waiter and release every queued frame."""
        with self._cond:
            self._closed = True
            leftovers = [ref for ch in self._channels.values() for _, ref in ch.items]
            for ch in self._channels.values():
                ch.items.clear()
            self._cond.notify_all()
        for ref in leftovers:
            ref.release()

    @property
    def closed(self) -> bool:
        return self._closed

    def finished(self) -> bool:
        """True when every source is done (or the hub closed) and nothing is queued."""
        with self._cond:
            return self._finished_locked()

    def _finished_locked(self) -> bool:
        if self._closed:
            return True
        return all(ch.done and not ch.items for ch in self._channels.values())

    def _queued(self) -> int:
        return sum(len(ch.items) for ch in self._channels.values())

    def _oldest(self) -> Optional[float]:
        heads = [ch.items[0][0] for ch in self._channels.values() if ch.items]
        return min(heads) if heads else None

    def _take(self, n: int) -> List[FrameRef]:
        batch: List[FrameRef] = []
        while len(batch) < n and self._queued():
            sid = self._order[self._rr % len(self._order)]
            self._rr += 1
            ch = self._channels[sid]
            if ch.items:
                ref = ch.items.popleft()[1]
                ref.seq = ch.next_seq
                ch.next_seq += 1
                batch.append(ref)
        self._cond.notify_all()  # space freed for blocked file captures
        return batch

    def get_batch(self, *, max_batch: int, max_delay: float, timeout: Optional[float] = None) -> Optional[List[FrameRef]]:
        """Up to ``max_batch`` frames; ``[]`` when nothing arrived within ``timeout``; None when finished."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return None
                queued = self._queued()
                if queued == 0:
                    if self._finished_locked():
                        return None
                    remaining = None if deadline is None else deadline - time.perf_counter()
                    if remaining is not None and remaining <= 0:
                        return []
                    self._cond.wait(remaining)
                    continue
                all_done = all(ch.done for ch in self._channels.values())
                flush_at = self._oldest() + max_delay
                now = time.perf_counter()
                if queued >= max_batch or now >= flush_at or all_done:
                    return self._take(max_batch)
                self._cond.wait(flush_at - now)

    def depths(self) -> Dict[str, int]:
        with self._cond:
            return {sid: len(ch.items) for sid, ch in self._channels.items()}

    def drops(self, source_id: str) -> int:
        return self._channels[source_id].drops

    def capacity(self, source_id: str) -> int:
        return self._channels[source_id].capacity
