"""CUDA layer: one small interface (:class:`~.base.CudaApi`), two bindings, one chooser.

``get_cuda()`` prefers cuda-python (``cuda.bindings``) and falls back to pycuda; force one with
``impl="pycuda"|"cuda-python"`` or the ``EDGEINFER_CUDA`` environment variable.

Example:
    >>> import os
    >>> resolve_choice(None, env={"EDGEINFER_CUDA": "pycuda"})
    ('pycuda',)
    >>> resolve_choice("auto", env={})
    ('cuda-python', 'pycuda')
"""
from __future__ import annotations

import logging
import os
from typing import Dict, Mapping, Optional, Tuple

from ..._deps import is_available
from ...errors import ConfigError, EdgeInferError, MissingDependencyError
from .base import CudaApi, DeviceBuffer, HostBuffer

log = logging.getLogger(__name__)

IMPLS = ("cuda-python", "pycuda")
_INSTANCES: Dict[Tuple[str, int], CudaApi] = {}

__all__ = ["CudaApi", "DeviceBuffer", "HostBuffer", "IMPLS", "get_cuda", "resolve_choice", "cuda_available"]


def resolve_choice(impl: Optional[str], *, env: Optional[Mapping[str, str]] = None) -> Tuple[str, ...]:
    """The bindings to try, in order, for ``impl`` (kwarg wins over ``EDGEINFER_CUDA``)."""
    env = os.environ if env is None else env
    choice = impl or env.get("EDGEINFER_CUDA") or "auto"
    choice = choice.strip().lower().replace("_", "-")
    if choice == "cudapython":
        choice = "cuda-python"
    if choice == "auto":
        return IMPLS
    if choice not in IMPLS:
        raise ConfigError(f"unknown CUDA binding {choice!r}", hint="use 'cuda-python', 'pycuda' or 'auto' (EDGEINFER_CUDA)")
    return (choice,)


def cuda_available() -> bool:
    """Whether a CUDA binding is importable (says nothing about a GPU being present)."""
    return is_available("cuda.bindings") or is_available("pycuda")


def get_cuda(impl: Optional[str] = None, *, device: int = 0) -> CudaApi:
    """The shared :class:`CudaApi` for ``device`` (one instance per binding and device).

    Example:
        >>> get_cuda("cuda-python")  # doctest: +SKIP
        <edgeinfer.runtime.cuda.cudapython.CudaPython object at ...>
    """
    errors = []
    choices = resolve_choice(impl)
    for name in choices:
        key = (name, int(device))
        if key in _INSTANCES:
            return _INSTANCES[key]
        try:
            if name == "cuda-python":
                from .cudapython import CudaPython as cls
            else:
                from .pycuda_impl import PyCuda as cls  # type: ignore[assignment]
            api = cls(device=device)
        except MissingDependencyError as exc:
            errors.append(f"{name}: {exc.message}")
            continue
        except EdgeInferError as exc:
            if len(choices) == 1:
                raise
            errors.append(f"{name}: {exc.message}")  # auto: a broken binding falls back to the next
            continue
        log.info("CUDA binding: %s (device %d)", name, device)
        _INSTANCES[key] = api
        return api
    raise MissingDependencyError("no CUDA binding could be loaded (" + "; ".join(errors) + ")",
                                 hint="pip install cuda-python (or pycuda on JetPack); or use the ONNX Runtime CPU backend")
