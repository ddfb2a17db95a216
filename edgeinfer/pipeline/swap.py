"""The switch point of a hot model swap: every frame taken from the hub before it runs on the old model,
every frame after it on the new one, across all engine instances.

Workers take a batch from the hub and read their model in one step under the gate's lock, so the
per-source dispatch order (which the collector restores) and the model order agree: a source's
results change model at exactly one frame, none is dropped or run twice. Until the new model is
committed the old one stays loaded: an exception from the new model rolls back at once and the
same batch re-runs on the old model.

Example:
    >>> gate = ModelGate({"ort": "old"})
    >>> gate.switch({"ort": "new"}, probation=True)
    1
    >>> gate.model_for("ort", 1), gate.rollback("health check failed"), gate.model_for("ort", 2)
    ('new', 2, 'old')

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional

from ..telemetry.latency import LatencyRecorder


class ModelGate:
    """Which model each instance runs now; the generation counts switches (and rollbacks)."""

    def __init__(self, models: Dict[str, Any]) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        self._models = dict(models)
        self._previous: Optional[Dict[str, Any]] = None  # kept loaded while the new model is on probation
        self.rollback_reason: Optional[str] = None
        self.errors = 0  # failures of the model on probation
        self.latency = LatencyRecorder(window=1024)  # per batch, current generation only
        self.first_frames: Dict[str, int] = {}  # source id -> first frame index on the current generation
        self.first_mono: Optional[float] = None  # when the first batch on the current generation started
        self.frames = 0  # frames run on the current generation

    @property
    def on_probation(self) -> bool:
        return self._previous is not None

    def models(self) -> Dict[str, Any]:
        return dict(self._models)

    def model_for(self, name: str, generation: int) -> Any:
        """The model instance ``name`` runs for a batch taken at ``generation`` (callers hold ``lock``)."""
        return self._models[name]

    def switch(self, models: Dict[str, Any], *, probation: bool = True) -> int:
        """Make ``models`` current for every batch taken from now on; returns the new generation."""
        with self.lock:
            missing = sorted(set(self._models) - set(models))
            if missing:
                raise ValueError(f"no new model for instance(s) {missing}")
            self._previous = dict(self._models) if probation else None
            self._models = {name: models[name] for name in self._models}
            self.rollback_reason = None
            self._reset_counters()
            return self.generation

    def replace(self, name: str, model: Any) -> None:
        """Run-time failover of one instance: its fallback model stays current (no switch, no probation)."""
        with self.lock:
            self._models[name] = model

    def rollback(self, reason: str) -> int:
        """Back to the models before the last switch (no-op unless on probation); returns the generation."""
        with self.lock:
            if self._previous is None:
                return self.generation
            self._models, self._previous = self._previous, None
            self.rollback_reason = reason
            self._reset_counters()
            return self.generation

    def commit(self) -> List[Any]:
        """End probation; returns the previous models for the caller to close."""
        with self.lock:
            old, self._previous = self._previous, None
        current = {id(m) for m in self._models.values()}
        return [m for m in (old or {}).values() if id(m) not in current]

    def note_batch(self, generation: int, refs: List[Any], started: float) -> None:
        """Called by a worker when it starts a batch (lock held): first frames on a generation."""
        if generation != self.generation:
            return
        if self.first_mono is None:
            self.first_mono = started
        for ref in refs:
            self.first_frames.setdefault(ref.source_id, ref.index)

    def note_done(self, generation: int, seconds: float, frames: int) -> None:
        if generation == self.generation:
            self.latency.record(seconds)
            self.frames += frames

    def note_error(self, generation: int, exc: BaseException) -> bool:
        """A model failed at ``generation``: roll back when it is the one on probation; True if rolled back."""
        with self.lock:
            on_trial = generation == self.generation and self._previous is not None
            if on_trial:
                self.errors += 1
        if not on_trial:
            return False
        self.rollback(f"the new model failed at run time: {exc!r}")
        return True

    def _reset_counters(self) -> None:
        self.generation += 1
        self.errors = 0
        self.latency = LatencyRecorder(window=1024)
        self.first_frames = {}
        self.first_mono = None
        self.frames = 0
        self.switched_mono = time.perf_counter()
