"""Which backend runs a model here, and why: a TensorRT engine built for this device if the
bundle has one (or can build one at load), else ONNX Runtime with the best execution provider.

Every decision carries a one-line reason that :func:`edgeinfer.load` logs and exposes as
``model.backend_reason``.

Example:
    >>> is_bundle_path("model.onnx")
    False
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional, Tuple, Union

from .._deps import is_available
from ..errors import BundleError, ConfigError, EdgeInferError, MissingDependencyError, ModelError
from ..model.info import ModelInfo
from .backend import Backend

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime")


def is_bundle_path(path: Union[str, Path]) -> bool:
    """A bundle is a directory holding manifest.yaml, or a .tar archive of one."""
    p = Path(path)
    return (p.is_dir() and (p / "manifest.yaml").is_file()) or p.suffix == ".tar" or p.name.endswith(".bundle")


def _detected_device() -> Any:
    try:
        from ..profiles import detect_current_device

        return detect_current_device()
    except EdgeInferError as exc:
        log.info("device detection failed: %s", exc)
        return None


def _trt_engine(bundle: Any, *, dla_core: Any, build_on_load: bool) -> Tuple[Any, str]:
    """(engine record, "") for the engine matching this device (built now when
    ``build_on_load``), else (None, reason).

    The caller keeps the record alive until the engine file is read: for a .tar bundle it owns
    the extracted directory the path points into.
    """
    if not is_available("tensorrt"):
        return None, "TensorRT is not installed here"
    from .. import engine
    from .._deps import require

    trt = require("tensorrt", feature="the TensorRT backend")
    try:
        record = engine.select_engine(bundle, device=_detected_device(), dla_core=dla_core,
                                     tensorrt_version=str(trt.__version__), build_on_load=build_on_load)
    except BundleError as exc:  # EngineMismatchError is a BundleError
        return None, f"no engine for this device in the bundle ({exc})"
    return record, ""


def _ort_artifact(bundle: Any) -> Path:
    device = _detected_device()
    name = device.profile.name if device is not None and device.profile.name in bundle.devices else bundle.devices[0]
    return bundle.artifact_path(name, "onnx")


def _open_engine(record: Any, *, memory: str, cuda_graph: bool, cuda_impl: Optional[str],
                 fallback: Optional[str]) -> Tuple[Optional[Backend], str]:
    """(TensorRT backend, "") or, with ``fallback="onnxruntime"``, (None, why) for an engine that will not load."""
    from .trt_backend import TensorRTBackend

    try:
        return TensorRTBackend(Path(record.path), dla_core=record.key.dla_core, memory=memory,
                               cuda_graph=cuda_graph, cuda_impl=cuda_impl), ""
    except Exception as exc:  # a corrupt/incompatible engine: any failure inside TensorRT's deserializer
        if fallback not in ("onnxruntime", "ort") or not is_available("onnxruntime"):
            raise
        why = f"engine {Path(str(record.path)).name} could not be loaded ({exc}); falling back to ONNX Runtime"
        log.warning("%s", why)
        return None, why


def open_backend(path: Union[str, Path], *, backend: str, device: str, dla_core: Any,
                 build_on_load: bool, memory: str, cuda_graph: bool, cuda_impl: Optional[str],
                 intra_op_threads: int, on_bundle: Optional[Callable[[Any], None]] = None,
                 fallback: Optional[str] = None) -> Tuple[Backend, Optional[ModelInfo], str]:
    """Open the backend for ``path``; returns (backend, ModelInfo from the bundle or None, reason).

    ``on_bundle(bundle_or_None)`` runs once the bundle is opened and verified, before any backend
    (signature checks, model identity). ``fallback="onnxruntime"``: an engine that cannot be
    deserialized falls back to ONNX Runtime on the bundle's ONNX, with the reason logged.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}", hint="use auto, tensorrt or onnxruntime")
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model path {p} does not exist", hint="pass a bundle directory/.tar or an .onnx file")
    if is_bundle_path(p):
        from ..bundle import open_bundle

        # Only where ONNX Runtime exists (the L4T image has none unless added): otherwise refuse as before.
        fallback_ok = fallback in ("onnxruntime", "ort") and backend == "auto" and is_available("onnxruntime")
        bundle = open_bundle(p, drop_bad_engines=fallback_ok)  # a corrupt engine: ONNX Runtime, not a refusal
        if bundle.dropped_engines:
            log.warning("%s; falling back to ONNX Runtime where no other engine fits", "; ".join(bundle.dropped_engines))
        if on_bundle is not None:
            on_bundle(bundle)
        info: Optional[ModelInfo] = bundle.model_info
        record, why_not = (None, "backend='onnxruntime' requested") if backend == "onnxruntime" \
            else _trt_engine(bundle, dla_core=dla_core, build_on_load=build_on_load)
        if record is None and bundle.dropped_engines:
            why_not = f"{'; '.join(bundle.dropped_engines)} ({why_not})"
        if record is not None:
            be, why_not = _open_engine(record, memory=memory, cuda_graph=cuda_graph, cuda_impl=cuda_impl,
                                       fallback=fallback if backend == "auto" else None)
            del record  # engine deserialized: the record (and a .tar's extracted copy) may go
            if be is not None:
                return be, info, "TensorRT engine built for this device: " + be.reason
        onnx_path = _ort_artifact(bundle)
    else:
        if on_bundle is not None:
            on_bundle(None)
        if p.suffix.lower() != ".onnx":
            raise ModelError(f"{p.name} is neither an .onnx file nor a bundle",
                             hint="package .pt models first: edgeinfer package MODEL --device ...")
        info, onnx_path = None, p
        why_not = ("a plain ONNX file has no TensorRT engine; package it into a bundle and run "
                   "`edgeinfer build` on the device for TensorRT")
    if backend == "tensorrt":
        raise MissingDependencyError(f"the TensorRT backend cannot run this model: {why_not}",
                                     hint="use backend='auto' or 'onnxruntime', or build the engine with `edgeinfer build`")
    from .ort_backend import OnnxRuntimeBackend

    be = OnnxRuntimeBackend(onnx_path, device=device, intra_op_threads=intra_op_threads)
    return be, info, f"{why_not}; using {be.reason}"
