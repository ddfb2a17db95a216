"""`FrameResult` (what the pipeline yields) and the bounded queues between its threads.

Example:
    >>> q = DropQueue(capacity=2)
    >>> for i in range(3): _ = q.put(i, lossless=False)
    >>> q.get(timeout=0), q.get(timeout=0), q.drops
    (1, 2, 1)
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import numpy as np

_EMPTY = object()


@dataclass
class FrameResult:
    """One processed frame.

    ``frame`` is a private copy of the input frame, present only with ``return_frames=True``.
    ``latency_ms`` is end-to-end: capture (frame read) → result ready.
    """

    source_id: str
    frame_index: int
    capture_ts: float  # wall clock (time.time()) when the frame was read
    detections: Any  # Detections for detectors, dict of arrays for generic models
    result_ts: float = 0.0  # wall clock when the result was ready
    latency_ms: float = 0.0
    batch_size: int = 1
    instance: str = ""  # which engine instance produced it ("gpu", "dla0", "ort#1", ...)
    frame: Optional[np.ndarray] = None
    frame_name: str = ""  # the image file name for image-folder sources, else ""
    model_id: Optional[str] = None  # bundle name @ manifest hash (edgeinfer.fleet.identity): which model made it
    model_version: Optional[str] = None
    analytics: Optional[Dict[str, Any]] = None  # zone/line counts and dwell (edgeinfer.analytics), when configured
    overlay: Optional[Callable[[np.ndarray], Any]] = None  # draws zones/lines on a sink's frame; not serialised

    def to_record(self) -> Dict[str, Any]:
        """The uplink record: detections.to_dict() plus source id, frame index, timestamps and model id/version."""
        det = self.detections
        if hasattr(det, "to_dict"):
            record = dict(det.to_dict())
        elif isinstance(det, dict):
            record = {"outputs": {k: list(np.shape(v)) for k, v in det.items()}}
        else:
            record = {"result": repr(det)[:200]}
        if self.analytics:
            record["analytics"] = self.analytics
        record.update({
            "source_id": self.source_id,
            "frame_index": int(self.frame_index),
            "capture_ts": round(float(self.capture_ts), 6),
            "result_ts": round(float(self.result_ts), 6),
            "latency_ms": round(float(self.latency_ms), 3),
            "model_id": self.model_id,
            "model_version": self.model_version,
        })
        if self.frame_name:
            record["frame_name"] = self.frame_name
        return record


class DropQueue:
    """A bounded queue. ``lossless`` puts wait for space; others drop the oldest item (counted).

    ``on_drop`` is called with each dropped item (to release frame slots it holds).
    """

    def __init__(self, *, capacity: int, on_drop: Optional[Callable[[Any], None]] = None) -> None:
        self._items: deque = deque()
        self._capacity = max(1, int(capacity))
        self._cond = threading.Condition()
        self._closed = False
        self._on_drop = on_drop
        self.drops = 0
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: Any, *, lossless: bool, timeout: Optional[float] = None) -> bool:
        """False when the queue is closed, or a lossless put timed out (the item is then not queued)."""
        dropped = _EMPTY
        with self._cond:
            if lossless and not self._cond.wait_for(lambda: self._closed or len(self._items) < self._capacity, timeout):
                return False
            if self._closed:
                return False
            if len(self._items) >= self._capacity:
                dropped = self._items.popleft()
                self.drops += 1
            self._items.append(item)
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify_all()
        if dropped is not _EMPTY and self._on_drop is not None:
            self._on_drop(dropped)
        return True

    def get(self, *, timeout: Optional[float] = None) -> Any:
        """The oldest item; raises TimeoutError when none within ``timeout``; EOFError when closed and empty."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                raise TimeoutError
            if not self._items:
                raise EOFError
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more puts; getters drain what is left, then get EOFError."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain(self) -> list:
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._cond.notify_all()
            return items
