"""A stand-in accelerator of known latency, to measure the pipeline around an engine without the device.

On a Jetson the engine runs on the GPU or DLA while the CPU decodes, pre- and post-processes. To measure
how well the CPU side keeps such an engine busy on a machine without one (a laptop, CI, the 2-core dev
host), :class:`StandInEngine` wraps a real backend: the first run of each slot is real (so outputs have
the model's shapes and values), then every run takes ``engine_ms`` of wall time with the GIL released,
as a CUDA sync does, and returns that slot's first output.

It models the device as a queue, like a CUDA stream: :meth:`StandInEngine.submit` returns at once and the
job starts when the previous one ends (``max(now, busy_until)``), :meth:`StandInEngine.wait` sleeps until
the job's end. Jobs submitted back to back therefore run back to back, and a late wake-up of the waiting
thread delays only that thread, not the device; a synchronous caller (``infer``) pays the full latency
each time. ``asynchronous=False`` leaves out ``submit``/``wait`` (a synchronous engine such as Ultralytics'
TensorRT ``execute_v2`` path); ``device_busy`` says how much of the elapsed time the device was working.

Example:
    >>> import numpy as np
    >>> class Real:  # any backend: inputs, outputs, input_buffer(), infer(slot=)
    ...     def infer(self, *, slot=0):
    ...         return {"out": np.ones(2, np.float32)}
    >>> engine = StandInEngine(Real(), engine_ms=2.0)
    >>> engine.submit(slot=1); engine.submit(slot=2)   # queued back to back, like one CUDA stream
    >>> out = engine.wait(slot=1); out = engine.wait(slot=2)
    >>> engine.jobs, engine.queued_behind            # the second job started when the first ended
    (2, 1)
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


class StandInEngine:
    """A backend whose engine takes ``engine_ms`` per run on a modelled device queue (see the module doc).

    Args:
        backend: the real backend (its first run per slot gives the outputs).
        engine_ms: device time per run.
        asynchronous: offer ``submit``/``wait`` (a CUDA-stream engine); False: ``infer`` only.
    """

    def __init__(self, backend: Any, *, engine_ms: float, asynchronous: bool = True) -> None:
        self._be = backend
        self._engine_s = float(engine_ms) / 1000.0
        self._asynchronous = bool(asynchronous)
        self._first: Optional[Dict[str, np.ndarray]] = None
        self._outputs: Dict[int, Dict[str, np.ndarray]] = {}
        self._done: Dict[int, float] = {}
        self._busy_until = 0.0
        self._first_start: Optional[float] = None
        self.jobs = 0
        self.queued_behind = 0  # jobs that started the moment the previous one ended (device never idle between)
        self.late_ms: List[float] = []  # how long after its job ended each wait returned (the waiting thread's slack)

    def __getattribute__(self, name: str) -> Any:
        if name in ("submit", "wait") and not object.__getattribute__(self, "_asynchronous"):
            raise AttributeError(name)  # a synchronous engine: the model runs it with infer()
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:  # what the stand-in does not model is the real backend's
        if name in ("submit", "wait") or name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._be, name)

    def infer(self, *, slot: int = 0, skip_h2d: Sequence[str] = ()) -> Dict[str, np.ndarray]:
        self._enqueue(slot)
        return self._wait(slot)

    def submit(self, *, slot: int = 0, skip_h2d: Sequence[str] = ()) -> None:
        """Queue one run of ``slot`` behind the runs already queued; returns at once."""
        self._enqueue(slot)

    def wait(self, *, slot: int = 0) -> Dict[str, np.ndarray]:
        """Sleep (GIL released) until ``slot``'s run has ended; that slot's outputs."""
        return self._wait(slot)

    @property
    def device_busy(self) -> float:
        """Fraction of the time from the first job's start to the last job's end that the device spent running
        jobs (1.0: it never idled between them)."""
        if self._first_start is None or self.jobs == 0:
            return 0.0
        span = self._busy_until - self._first_start
        return min(1.0, self.jobs * self._engine_s / span) if span > 0 else 0.0

    def _enqueue(self, slot: int) -> None:
        if self._first is None:  # the one real run
            self._first = {k: np.array(v, copy=True) for k, v in self._be.infer(slot=slot).items()}
        if slot not in self._outputs:  # each slot its own arrays: a slot's outputs stay valid while another runs
            self._outputs[slot] = {k: v.copy() for k, v in self._first.items()}
        now = time.perf_counter()
        if self._first_start is None:
            self._first_start = now
        start = max(now, self._busy_until)
        self.queued_behind += start > now
        self._busy_until = self._done[slot] = start + self._engine_s
        self.jobs += 1

    def _wait(self, slot: int) -> Dict[str, np.ndarray]:
        done = self._done.pop(slot, None)
        if done is not None:
            left = done - time.perf_counter()
            if left > 0:
                time.sleep(left)
            self.late_ms.append(max(0.0, time.perf_counter() - done) * 1000.0)
        return self._outputs[slot]
