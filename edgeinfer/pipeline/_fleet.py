"""The fleet side of :class:`~edgeinfer.pipeline.Pipeline`: hot model swap, model identity, readiness.

Kept apart from pipeline.py so the flow code stays readable; the swap logic itself lives in
:mod:`edgeinfer.fleet.hotswap` and the switch point in :mod:`edgeinfer.pipeline.swap`.

Example:
    >>> readiness_problems({"running": True, "sources": {"0": {"state": "connected"}}, "uplink": None},
    ...                    model_loaded=True)
    []
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Dict, List, Optional

from .swap import ModelGate

log = logging.getLogger(__name__)
_READY_STATES = ("connected", "ended")
UPLINK_STUCK_S = 120.0


def readiness_problems(stats: Dict[str, Any], *, model_loaded: bool) -> List[str]:
    """Why the pipeline is not ready (empty list: ready): no model, a source not connected, a stuck uplink."""
    problems = []
    if not model_loaded:
        problems.append("no model loaded")
    if not stats.get("running"):
        problems.append("pipeline not running")
    for sid, src in (stats.get("sources") or {}).items():
        if src.get("state") not in _READY_STATES:
            problems.append(f"source {sid} is {src.get('state')}")
    problems.extend(uplink_problems(stats.get("uplink")))
    return problems


def uplink_problems(up: Any) -> List[str]:
    """Read whatever sender health the uplink reports (keys may be missing in older uplinks)."""
    if not isinstance(up, dict):
        return []
    if up.get("error"):
        return [f"uplink stats failed: {up['error']}"]
    health = up.get("health")
    if isinstance(health, dict) and "ok" in health:  # Uplink.health(): threads alive, sender not stuck, disk writable
        return [] if health["ok"] else [f"uplink: {p}" for p in health.get("problems") or ["unhealthy"]]
    sender = up.get("sender") if isinstance(up.get("sender"), dict) else up
    for key in ("stuck", "stalled"):
        if sender.get(key):
            return [f"uplink sender {key}" + (f": {sender.get('last_error')}" if sender.get("last_error") else "")]
    if sender.get("healthy") is False or sender.get("state") in ("stuck", "failed"):
        return ["uplink sender unhealthy" + (f": {sender.get('last_error')}" if sender.get("last_error") else "")]
    # Older uplinks: no health flag; backing off with records waiting for minutes counts as stuck.
    age = up.get("oldest_age_s")
    if up.get("state") == "backing_off" and isinstance(age, (int, float)) and age > UPLINK_STUCK_S:
        return [f"uplink stuck: oldest record waits {age:.0f} s ({up.get('last_error') or 'no ack'})"]
    return []


class FleetMixin:
    """Pipeline methods for hot swap and traceability (mixed into Pipeline)."""

    def _init_fleet(self, *, shadow_frames: int, load_kwargs: Optional[dict], model_path: Optional[str]) -> None:
        self._gate = ModelGate(dict(self._instances))
        self._swap_lock = threading.Lock()
        self._swaps: List[Dict[str, Any]] = []
        self._shadow: Optional[deque] = deque(maxlen=int(shadow_frames)) if shadow_frames else None
        self._load_kwargs = dict(load_kwargs or {})
        self._model_path = model_path

    def swap_model(self, model: Any, *, policy: Any = None, load_kwargs: Optional[dict] = None) -> Any:
        """Replace the running model without stopping: ``model`` is a bundle path (one instance loaded per
        running instance) or a loaded Model. Load and warm-up happen on the side; the switch falls between two
        frames; the new model is health-checked (``policy``: :class:`edgeinfer.fleet.HealthPolicy`) and rolled
        back on failure. Blocks until committed, rolled back or refused; returns a
        :class:`edgeinfer.fleet.hotswap.SwapReport`.

        Example:
            >>> report = pipeline.swap_model("/ota/shapes-v2.bundle")      # doctest: +SKIP
            >>> report.status, report.first_frames                          # doctest: +SKIP
            ('committed', {'0': 412})
        """
        from ..fleet.hotswap import swap_pipeline_model

        return swap_pipeline_model(self, model, policy=policy, load_kwargs=load_kwargs)

    @property
    def model_id(self) -> Optional[str]:
        """The id (bundle name @ manifest hash) of the model running now."""
        models = self._gate.models()
        return getattr(next(iter(models.values())), "model_id", None) if models else None

    def model_state(self) -> Dict[str, Any]:
        """What ``stats()["model"]`` shows: the running model's id, version and signer, and every swap so far."""
        models = self._gate.models()
        first = next(iter(models.values())) if models else None
        return {"model_id": getattr(first, "model_id", None), "model_version": getattr(first, "model_version", None),
                "signer": getattr(first, "signer", None), "path": getattr(first, "path", None),
                "on_probation": self._gate.on_probation, "swaps": list(self._swaps[-20:])}

    def engines(self) -> List[Dict[str, Any]]:
        """One dict per engine instance: ``instance, backend, provider, device, reason, model_id`` (what `run` prints first).

        Example:
            >>> [e["device"] for e in pipeline.engines()]                   # doctest: +SKIP
            ['cpu']
        """
        from .stats import describe_instance

        return [describe_instance(name, model) for name, model in self._instances]

    def readiness(self) -> List[str]:
        """Problems that make ``/readyz`` answer 503; empty when ready."""
        return readiness_problems(self.stats(), model_loaded=bool(self._gate.models()))

    def _record_swap(self, report: Any) -> None:
        event = report.to_event()
        self._swaps.append(event)
        log_fn = log.info if report.status in ("committed", "unchanged") else log.error
        log_fn("model swap %s: %s -> %s%s", report.status, report.from_model_id, report.to_model_id,
               f" ({report.reason})" if report.reason else "")
        if self._uplink is not None:
            self._uplink.put(event)  # a swap is itself an uplink event (never blocks)

    def _adopt_models(self, new_models: Dict[str, Any], owned: List[Any], retired: List[Any], *, path: Optional[str],
                      load_kwargs: Optional[dict]) -> None:
        """After a commit: the pipeline owns (and later closes) the new models; the retired ones close now."""
        from .models import fallback_factory

        for m in retired:
            if m in self._owned_models:
                self._owned_models.remove(m)
                try:
                    m.close()
                except Exception:  # a failing close of the old model must not stop the new one
                    log.exception("closing the swapped-out model failed")
        self._owned_models.extend(owned)
        self._instances = list(new_models.items())
        if path is not None and self._fallback is not None and self._fallback_spec == "onnxruntime":
            self._fallback = fallback_factory("onnxruntime", model_path=path, load_kwargs=load_kwargs or self._load_kwargs)
        self._model_path = path or self._model_path

    def _remember_frame(self, result: Any, ref: Any) -> None:
        if self._shadow is not None:
            self._shadow.append((ref.array.copy(), result.detections))
