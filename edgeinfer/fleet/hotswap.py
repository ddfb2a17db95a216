"""``Pipeline.swap_model``: load and warm a new model on the side, switch between two frames, health-check,
roll back on failure. The switch itself is :class:`edgeinfer.pipeline.swap.ModelGate`.

Steps: load one instance per running engine instance (checksums and signature are checked by
``edgeinfer.load``) -> optional shadow comparison on the last N frames -> switch (the next frame
taken from the hub runs on the new model) -> watch ``policy.frames`` results: an exception rolls
back at once and the failing batch re-runs on the old model; latency P95 is compared with the old
model's -> commit (old model closed) or roll back (new model closed). Every outcome is a
:class:`SwapReport`, logged, kept in ``stats()["model"]["swaps"]`` and sent as an uplink event.

Example:
    >>> SwapReport(status="refused", to_model_id="shapes@0123", reason="not signed").ok
    False

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from ..errors import EdgeInferError
from .health import HealthPolicy, detection_agreement, latency_problem, p95_ms

log = logging.getLogger(__name__)


@dataclass
class SwapReport:
    """The outcome of one swap: committed, rolled_back, refused (before the switch) or unchanged."""

    status: str
    to_model_id: Optional[str] = None
    from_model_id: Optional[str] = None
    to_model_version: Optional[str] = None
    reason: str = ""
    path: Optional[str] = None
    first_frames: Dict[str, int] = field(default_factory=dict)  # source -> first frame index on the new model
    prepare_s: float = 0.0  # load + warm + shadow, off the hot path
    switch_mono: Optional[float] = None  # perf_counter() at the switch
    first_frame_mono: Optional[float] = None  # perf_counter() when the first frame started on the new model
    health: Dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status == "committed"

    def to_event(self) -> Dict[str, Any]:
        """The uplink record of this swap (``event: model_swap``)."""
        data = asdict(self)
        for key in ("switch_mono", "first_frame_mono"):
            data.pop(key)
        data["event"] = "model_swap"
        data["model_id"] = self.to_model_id if self.ok else self.from_model_id  # the model running afterwards
        return data


def swap_pipeline_model(p: Any, model: Any, *, policy: Optional[HealthPolicy] = None,
                        load_kwargs: Optional[dict] = None) -> SwapReport:
    """See :meth:`edgeinfer.pipeline.Pipeline.swap_model`."""
    policy = policy or HealthPolicy()
    with p._swap_lock:
        report = _swap(p, model, policy, load_kwargs)
    p._record_swap(report)
    return report


def _swap(p: Any, model: Any, policy: HealthPolicy, load_kwargs: Optional[dict]) -> SwapReport:
    gate = p._gate
    old_models = gate.models()
    from_id = _ident(next(iter(old_models.values())))[0]
    path = os.fspath(model) if isinstance(model, (str, os.PathLike)) else getattr(model, "path", None)
    t0 = time.perf_counter()
    try:
        new_models, owned = _load_instances(p, model, load_kwargs)
    except EdgeInferError as exc:
        return SwapReport("refused", from_model_id=from_id, reason=exc.message, path=path)
    to_id, to_version = _ident(next(iter(new_models.values())))
    report = SwapReport("refused", to_model_id=to_id, from_model_id=from_id, to_model_version=to_version, path=path)
    if to_id is not None and to_id == from_id:
        _close(owned)
        report.status, report.reason = "unchanged", "the same model (model id) is already running"
        return report
    problem = _shadow_problem(p, new_models, policy, report)
    report.prepare_s = round(time.perf_counter() - t0, 3)
    if problem:
        _close(owned)
        report.reason = problem
        return report
    old_p95 = p95_ms([v for w in p._workers for v in w.latency.values()[-200:]])
    generation = gate.switch(new_models, probation=True)
    report.switch_mono = time.perf_counter()
    problem = _watch_health(p, generation, policy, old_p95, report)
    if problem:
        if gate.generation == generation:
            gate.rollback(problem)
        _wait_idle(p, new_models)
        _close(owned)
        report.status, report.reason = "rolled_back", problem
        return report
    retired = gate.commit()
    _wait_idle(p, retired)
    p._adopt_models(new_models, owned, retired, path=path, load_kwargs=load_kwargs)
    report.status = "committed"
    return report


def _load_instances(p: Any, model: Any, load_kwargs: Optional[dict]):
    """{instance name: model} for every running instance, and the models this call loaded (to close)."""
    from ..pipeline.models import instance_kwargs, is_model
    from ..runtime.model import load

    names = list(p._gate.models())
    if is_model(model):
        if len(names) != 1:
            raise EdgeInferError(f"the pipeline runs {len(names)} instances; pass a path to load one per instance")
        return {names[0]: model}, []
    loaded: Dict[str, Any] = {}
    try:
        for name in names:
            kwargs = dict(p._load_kwargs if load_kwargs is None else load_kwargs)
            kwargs.update(instance_kwargs(name.split("#")[0]))
            loaded[name] = load(os.fspath(model), **kwargs)  # warms up (load(warmup=2)) off the hot path
    except BaseException:
        _close(list(loaded.values()))
        raise
    return loaded, list(loaded.values())


def _shadow_problem(p: Any, new_models: Dict[str, Any], policy: HealthPolicy, report: SwapReport) -> Optional[str]:
    shadow = list(p._shadow or [])[-policy.shadow_frames:] if policy.shadow_frames else []
    if not shadow:
        return None
    model = next(iter(new_models.values()))
    try:
        new = list(model.infer_batch([frame for frame, _ in shadow]))
    except Exception as exc:  # a model that cannot run the recent frames never goes live
        return f"the new model failed on the shadow frames: {exc!r}"
    score = detection_agreement([old for _, old in shadow], new)
    report.health["shadow_frames"] = len(shadow)
    report.health["shadow_agreement"] = score
    if score is not None and score < policy.min_agreement:
        return (f"detections agree with the old model on only {score:.2f} (F1) of the last {len(shadow)} frames "
                f"(minimum {policy.min_agreement})")
    return None


def _watch_health(p: Any, generation: int, policy: HealthPolicy, old_p95: Optional[float], report: SwapReport) -> Optional[str]:
    gate = p._gate
    deadline = time.perf_counter() + policy.timeout_s
    while time.perf_counter() < deadline and gate.generation == generation:
        _snapshot_first_frames(gate, generation, report)
        if gate.frames >= policy.frames or not p.running:
            break
        time.sleep(0.01)
    _snapshot_first_frames(gate, generation, report)
    if gate.generation != generation:
        return gate.rollback_reason or "rolled back"
    new_p95 = p95_ms(gate.latency.values())
    report.health.update({"frames": gate.frames, "errors": gate.errors, "old_p95_ms": old_p95, "new_p95_ms": new_p95,
                          "policy": policy.to_dict()})
    if gate.frames == 0 and p.running:
        return f"no frame finished on the new model within {policy.timeout_s:.0f} s"
    return latency_problem(old_p95_ms=old_p95, new_p95_ms=new_p95, policy=policy)


def _snapshot_first_frames(gate: Any, generation: int, report: SwapReport) -> None:
    with gate.lock:  # a rollback resets them: keep what the new model ran, for the report
        if gate.generation == generation:
            report.first_frames = dict(gate.first_frames)
            report.first_frame_mono = gate.first_mono


def _wait_idle(p: Any, models: Any, timeout: float = 10.0) -> None:
    """Until no worker is inside a batch on one of ``models`` (then they can be closed safely)."""
    ids = {id(m) for m in (models.values() if isinstance(models, dict) else models)}
    deadline = time.perf_counter() + timeout
    # models_in_flight, not w.model: a pipelined worker may already pre-process on the new model while the
    # engine still runs a batch of the old one
    while time.perf_counter() < deadline and any(ids & w.models_in_flight() for w in p._workers):
        time.sleep(0.005)


def _close(models: List[Any]) -> None:
    for m in models:
        try:
            m.close()
        except Exception:  # closing a discarded model must not break the running pipeline
            log.exception("closing a swapped-out model failed")


def _ident(model: Any):
    return getattr(model, "model_id", None), getattr(model, "model_version", None)
