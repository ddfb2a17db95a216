"""Preallocated frame slots handed out with reference counts.

Capture decodes straight into a slot's buffer. Every stage that keeps the frame holds a
reference and releases it when done; the slot returns to its pool only at zero references.
So no stage ever sees pixels that a later capture has overwritten (the ring-buffer hazard of
jetson-utils' ``Capture()``), and steady-state capture allocates nothing.

Example:
    >>> pool = FramePool(shape=(4, 4, 3), slots=2)
    >>> ref = pool.acquire(timeout=0.1)
    >>> ref.array.shape, pool.free
    ((4, 4, 3), 1)
    >>> _ = ref.retain(); ref.release(); ref.release(); pool.free
    2
"""
from __future__ import annotations

import threading
from typing import Callable, List, Optional, Tuple

import numpy as np

from ..errors import InternalError


class FrameRef:
    """One slot of a :class:`FramePool`: a buffer plus a reference count and frame metadata."""

    __slots__ = ("array", "_pool", "_count", "_lock", "source_id", "index", "capture_ts", "capture_mono", "seq",
                 "name")

    def __init__(self, pool: "FramePool", array: np.ndarray) -> None:
        self.array = array
        self._pool = pool
        self._count = 0
        self._lock = threading.Lock()
        self.source_id = ""
        self.index = -1
        self.capture_ts = 0.0  # wall clock (time.time) when the frame was read
        self.capture_mono = 0.0  # monotonic (time.perf_counter) for latency
        self.seq = -1  # per-source dispatch sequence, used to re-order results
        self.name = ""  # what the source calls this frame (an image's file name), or ""

    @property
    def refcount(self) -> int:
        return self._count

    def retain(self) -> "FrameRef":
        with self._lock:
            if self._count <= 0:
                raise InternalError("retain() on a frame slot that is already back in its pool")
            self._count += 1
        return self

    def release(self) -> None:
        with self._lock:
            if self._count <= 0:
                raise InternalError("release() on a frame slot that is already back in its pool")
            self._count -= 1
            done = self._count == 0
        if done:
            self._pool._give_back(self)


class FramePool:
    """A fixed set of equally shaped uint8 frame buffers.

    ``allocate(shape)`` makes each buffer (default ``np.empty``); the pipeline passes pinned host memory
    when a model pre-processes on the GPU, so frames go to the device by DMA from where they were decoded.
    """

    def __init__(self, *, shape: Tuple[int, ...], slots: int, dtype=np.uint8,
                 allocate: Optional[Callable[[Tuple[int, ...]], np.ndarray]] = None) -> None:
        if slots < 1:
            raise InternalError("a frame pool needs at least one slot")
        self.shape = tuple(int(s) for s in shape)
        self.size = int(slots)
        self._cond = threading.Condition()
        make = allocate or (lambda shape: np.empty(shape, dtype))
        self.arrays: Tuple[np.ndarray, ...] = tuple(make(self.shape) for _ in range(self.size))
        self._free: List[FrameRef] = [FrameRef(self, a) for a in self.arrays]

    @property
    def free(self) -> int:
        with self._cond:
            return len(self._free)

    def acquire(self, *, timeout: Optional[float] = None) -> Optional[FrameRef]:
        """A free slot with one reference, or None when none frees up within ``timeout`` seconds."""
        with self._cond:
            if not self._free and not self._cond.wait_for(lambda: bool(self._free), timeout=timeout):
                return None
            ref = self._free.pop()
            ref._count = 1
            return ref

    def _give_back(self, ref: FrameRef) -> None:
        with self._cond:
            self._free.append(ref)
            self._cond.notify()
