"""Pipeline configuration files: the knobs `edgeinfer bench --write-config` tuned, loaded by
``edgeinfer run --config FILE`` and ``Pipeline(config=...)``.

A config is JSON with the knobs at the top level (``batch``, ``max_delay_ms``, ``instances``,
``queue_size``; each optional) and what they were measured on: ``model`` (``id`` = bundle name @
manifest hash, as results carry it), ``machine`` (host, CPU, Jetson module, backend, device) and
``measured`` (SLA, throughput, P95 with its spread, load average). Explicit arguments win over the
file; a config tuned for another model, machine or backend still loads, with a warning naming the
difference. Unknown keys are an error (a typo must not silently fall back to a default).

Example:
    >>> cfg = PipelineConfig.from_mapping({"batch": 4, "max_delay_ms": 2})
    >>> cfg.batch, cfg.max_delay_ms, pipeline_knobs(cfg, batch=None, max_delay_ms=8.0)
    (4, 2.0, {'batch': 4, 'max_delay_ms': 8.0, 'instances': None, 'queue_size': 2})
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
from typing import Any, Dict, List, Mapping, Optional, Union

from ..errors import ConfigError, EdgeInferError
from ._atomic import write_json_atomic

log = logging.getLogger(__name__)

SCHEMA = "edgeinfer.pipeline-config/1"
# The Pipeline's own defaults, used when neither an argument nor the config sets a knob.
DEFAULTS: Dict[str, Any] = {"batch": 1, "max_delay_ms": 5.0, "instances": None, "queue_size": 2}


@dataclasses.dataclass
class PipelineConfig:
    """Tuned pipeline knobs (None: not set) plus what they were measured on."""

    batch: Optional[int] = None
    max_delay_ms: Optional[float] = None
    instances: Union[None, int, str] = None
    queue_size: Optional[int] = None
    model: Dict[str, Any] = dataclasses.field(default_factory=dict)
    machine: Dict[str, Any] = dataclasses.field(default_factory=dict)
    measured: Dict[str, Any] = dataclasses.field(default_factory=dict)
    schema: str = SCHEMA
    created_by: Optional[str] = None
    path: Optional[str] = dataclasses.field(default=None, compare=False)  # the file it came from; not written

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "config") -> "PipelineConfig":
        """Validate a mapping (e.g. parsed JSON); ConfigError naming ``where`` and the key on any problem."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}",
                              hint='write e.g. {"batch": 4, "max_delay_ms": 2}')
        known = [f.name for f in dataclasses.fields(cls) if f.name != "path"]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}",
                              hint=f"known keys: {', '.join(known)}")
        schema = str(data.get("schema", SCHEMA))
        if schema != SCHEMA:
            raise ConfigError(f"{where}: schema {schema!r} is not {SCHEMA!r}",
                              hint="write it again with this edgeinfer's `edgeinfer bench --write-config`")
        cfg = cls(schema=schema, created_by=data.get("created_by"),
                  batch=_int(data, "batch", where), max_delay_ms=_number(data, "max_delay_ms", where),
                  instances=_instances(data.get("instances"), where), queue_size=_int(data, "queue_size", where))
        for key in ("model", "machine", "measured"):
            value = data.get(key) or {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {key!r} must be an object", hint="see docs/pipeline.md, 'Config files'")
            setattr(cfg, key, dict(value))
        return cfg

    @classmethod
    def from_file(cls, path: Union[str, "os.PathLike[str]"]) -> "PipelineConfig":
        """Read and validate a JSON config file."""
        path = os.fspath(path)
        try:
            with open(path) as fh:
                data = json.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config {path!r}: {exc.strerror or exc}", hint="check the path") from exc
        except ValueError as exc:
            raise ConfigError(f"config {path!r} is not valid JSON ({exc})",
                              hint="write it with `edgeinfer bench ... --write-config FILE`") from exc
        cfg = cls.from_mapping(data, where=f"config {path!r}")
        cfg.path = path
        return cfg

    @classmethod
    def load(cls, config: Any) -> "PipelineConfig":
        """A PipelineConfig from itself, a mapping or a file path."""
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            return cls.from_mapping(config)
        if isinstance(config, (str, os.PathLike)):
            return cls.from_file(config)
        raise ConfigError(f"config must be a path, a mapping or a PipelineConfig, not {type(config).__name__}",
                          hint="pass config='tuned.json'")

    def to_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("path")
        return data

    def write(self, path: str) -> str:
        """Write JSON atomically (temp file in the same folder, then rename)."""
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ConfigError(f"folder {folder!r} for {path!r} does not exist", hint="create it first")
        write_json_atomic(path, self.to_dict())
        return path

    def knobs(self) -> Dict[str, Any]:
        """The knobs this config sets (None ones left out)."""
        return {k: getattr(self, k) for k in DEFAULTS if getattr(self, k) is not None}

    def mismatches(self, model: Any) -> List[str]:
        """How the model and this machine differ from what the config was tuned on (empty: no difference seen)."""
        problems = []
        want, have = _digest(self.model.get("id")), _digest(getattr(model, "model_id", None))
        if want and have and want != have:
            problems.append(f"tuned for model {self.model.get('id')}, this is {model.model_id}")
        here = {**machine_info(), **describe_engine(model)}
        for key in ("host", "jetson", "cpus", "backend", "device"):
            if key in self.machine and self.machine[key] != here.get(key):
                problems.append(f"tuned with {key} {self.machine[key]!r}, this is {here.get(key)!r}")
        return problems

    def warn_if_stale(self, model: Any) -> List[str]:
        """Log one warning per difference (the config still applies); returns them."""
        problems = self.mismatches(model)
        for p in problems:
            log.warning("config %s: %s; re-tune with `edgeinfer bench MODEL --sla-p95-ms X --write-config FILE`",
                        self.path or "(mapping)", p)
        return problems


def pipeline_knobs(config: Optional[PipelineConfig], **explicit: Any) -> Dict[str, Any]:
    """Knob values: an explicit (non-None) argument, else the config's, else the Pipeline default."""
    out = {}
    for key, default in DEFAULTS.items():
        value = explicit.get(key)
        if value is None and config is not None:
            value = getattr(config, key)
        out[key] = default if value is None else value
    return out


def machine_info() -> Dict[str, Any]:
    """What a tuned figure depends on besides the model: host, CPU count and architecture, Jetson module."""
    jetson = None
    try:
        from ..profiles.detect import detect_current_device

        found = detect_current_device()
        jetson = found.profile.name if found is not None else None
    except (EdgeInferError, OSError):  # an unknown module: record none rather than fail the benchmark
        jetson = None
    return {"host": platform.node(), "arch": platform.machine(), "cpus": os.cpu_count(), "jetson": jetson}


def describe_engine(model: Any) -> Dict[str, Optional[str]]:
    """Backend, execution provider (ONNX Runtime) and device of a loaded model, e.g. onnxruntime / CPUExecutionProvider / cpu."""
    backend = str(getattr(model, "backend_name", None) or type(model).__name__)
    be = getattr(model, "backend", None)
    providers = list(getattr(be, "providers", None) or [])
    provider = str(providers[0]) if providers else None
    reason = str(getattr(be, "reason", "") or getattr(model, "backend_reason", "") or "")
    if provider:
        device = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda",
                  "TensorrtExecutionProvider": "gpu"}.get(provider, provider)
    elif backend == "tensorrt":
        device = reason.split(" on ", 1)[1].split(";")[0].lower() if " on " in reason else "gpu"
    else:
        device = "cpu" if backend == "onnxruntime" else "unknown"
    return {"backend": backend, "provider": provider, "device": device}


def engine_line(models: List[Any]) -> str:
    """``onnxruntime (CPUExecutionProvider) on cpu``; several instances are listed with a count.

    ``models``: loaded models, or what :func:`describe_engine` (or ``Pipeline.engines()``) made of them.
    """
    parts = []
    for m in models:
        d = m if isinstance(m, dict) else describe_engine(m)
        parts.append(f"{d['backend']}" + (f" ({d['provider']})" if d["provider"] else "") + f" on {d['device']}")
    if len(set(parts)) == 1:
        return parts[0] if len(parts) == 1 else f"{len(parts)} x {parts[0]}"
    return ", ".join(parts)


def _digest(model_id: Any) -> Optional[str]:
    return str(model_id).rsplit("@", 1)[-1] if model_id else None


def _int(data: Mapping[str, Any], key: str, where: str) -> Optional[int]:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: {key}={value!r} must be a whole number >= 1", hint=f'e.g. "{key}": 4')
    return value


def _number(data: Mapping[str, Any], key: str, where: str) -> Optional[float]:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: {key}={value!r} must be a number >= 0", hint=f'e.g. "{key}": 5')
    return float(value)


def _instances(value: Any, where: str) -> Union[None, int, str]:
    if value is None:
        return None
    from .models import parse_instances

    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{where}: instances={value!r} must be a count or names like \"gpu,dla0\"",
                          hint='e.g. "instances": 2')
    try:
        parse_instances(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from exc
    return value
