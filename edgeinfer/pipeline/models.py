"""Resolve the ``model`` argument of a Pipeline into engine instances and a fallback factory.

``model`` may be a loaded Model (anything with ``infer_batch`` and ``info``), a list of them
(one instance each), or a path to a bundle/ONNX file, loaded with :func:`edgeinfer.load`.
``instances`` with a path: a count (that many instances of the default backend) or names —
``gpu``, ``dla0``, ``dla1`` (TensorRT on the GPU or a DLA core) and ``ort`` (ONNX Runtime).

Example:
    >>> parse_instances("gpu,dla0,dla1")
    ['gpu', 'dla0', 'dla1']
    >>> instance_kwargs("dla1")
    {'backend': 'tensorrt', 'dla_core': 1}
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from ..errors import ConfigError

INSTANCE_NAMES = ("auto", "gpu", "dla0", "dla1", "ort", "onnxruntime", "tensorrt")


def parse_instances(value: Union[None, int, str, Sequence[str]]) -> List[str]:
    """Normalise ``instances`` to a list of instance names."""
    if value is None:
        return ["auto"]
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"instances={value} must be at least 1", hint="use instances=1 (or a list like gpu,dla0)")
        return ["auto"] * value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_instances(int(text))
        value = [v.strip() for v in text.split(",") if v.strip()]
    names = [str(v).lower() for v in value]
    bad = [n for n in names if n not in INSTANCE_NAMES]
    if bad or not names:
        raise ConfigError(f"unknown engine instance(s) {bad or names}", hint=f"use a count or names from {', '.join(INSTANCE_NAMES)}")
    return names


def instance_kwargs(name: str) -> dict:
    """Keyword arguments of edgeinfer.load for one instance name."""
    if name in ("gpu", "tensorrt"):
        return {"backend": "tensorrt", "dla_core": None}
    if name in ("dla0", "dla1"):
        return {"backend": "tensorrt", "dla_core": int(name[-1])}
    if name in ("ort", "onnxruntime"):
        return {"backend": "onnxruntime"}
    return {}


def _load(path: str, **kwargs) -> Any:
    from ..runtime.model import load  # engineer R's runtime; imported only when a path is given

    return load(path, **kwargs)


def is_model(obj: Any) -> bool:
    return hasattr(obj, "infer_batch")


def resolve_models(model: Any, *, instances=None, load_kwargs: Optional[dict] = None) -> Tuple[List[Tuple[str, Any]], List[Any], Optional[str]]:
    """(name, model) per instance, the models this call loaded (to close later), and the model path if any."""
    load_kwargs = dict(load_kwargs or {})
    if is_model(model):
        if instances not in (None, 1, "1"):
            raise ConfigError("instances= needs a model path (a loaded Model is one instance)",
                              hint="pass the bundle path, or a list of loaded models")
        return [(_name(model, 0), model)], [], _path_of(model)
    if isinstance(model, (list, tuple)) and model and all(is_model(m) for m in model):
        return [(f"{_name(m, i)}#{i}", m) for i, m in enumerate(model)], [], _path_of(model[0])
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise ConfigError(f"model {path!r} does not exist", hint="pass a bundle directory or an .onnx file")
        names = parse_instances(instances)
        loaded = []
        for i, name in enumerate(names):
            kwargs = dict(load_kwargs)
            kwargs.update(instance_kwargs(name))
            loaded.append((f"{name}#{i}" if len(names) > 1 else name, _load(path, **kwargs)))
        return loaded, [m for _, m in loaded], path
    raise ConfigError(f"model must be a loaded Model, a list of them or a path, not {type(model).__name__}",
                      hint="use edgeinfer.load('bundle/') or pass the path")


def frame_allocator(models: Iterable[Any]) -> Optional[Callable[[Tuple[int, ...]], Any]]:
    """The first model's frame-slot allocator (pinned host memory for GPU pre-processing), or None."""
    for model in models:
        make = getattr(model, "frame_allocator", None)
        alloc = make() if callable(make) else None
        if alloc is not None:
            return alloc
    return None


def _name(model: Any, index: int) -> str:
    return str(getattr(model, "backend_name", None) or f"instance{index}")


def _path_of(model: Any) -> Optional[str]:
    for attr in ("path", "source_path", "model_path"):
        value = getattr(model, attr, None)
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
    return None


def fallback_factory(fallback: Any, *, model_path: Optional[str], load_kwargs: Optional[dict] = None) -> Optional[Callable[[], Any]]:
    """A zero-argument callable that builds the fallback model, or None for no failover."""
    if fallback is None or fallback is False:
        return None
    if is_model(fallback):
        return lambda: fallback
    if callable(fallback):
        return fallback
    if isinstance(fallback, str):
        name = fallback.lower()
        if name not in ("onnxruntime", "ort"):
            raise ConfigError(f"unknown fallback backend {fallback!r}", hint="use fallback='onnxruntime', a Model or a callable")
        if model_path is None:
            raise ConfigError("fallback='onnxruntime' needs the model path",
                              hint="pass the bundle path as model, or a loaded fallback Model")
        kwargs = dict(load_kwargs or {})
        kwargs["backend"] = "onnxruntime"
        kwargs.pop("dla_core", None)
        return lambda: _load(model_path, **kwargs)
    raise ConfigError(f"fallback must be 'onnxruntime', a Model or a callable, not {type(fallback).__name__}",
                      hint="use fallback='onnxruntime'")
