"""Build one TensorRT engine from an ONNX file: parse, configure per TensorRT era, serialize,
deserialize, and read the engine inspector's layer JSON.

All version differences go through :mod:`edgeinfer.engine.trt_shim`; this module holds the order
of the steps. ``trt`` may be passed in (tests pass a stand-in generated from the API table);
otherwise TensorRT is imported through ``edgeinfer._deps.require``.

Example (on a Jetson):
    >>> spec = BuildSpec(onnx_path=Path("model.onnx"), precision="fp16",
    ...                  input_shapes={"images": (1, 3, 320, 320)})          # doctest: +SKIP
    >>> result = build_engine(spec)                                          # doctest: +SKIP
    >>> len(result.plan) > 0, result.tensorrt_version                        # doctest: +SKIP
    (True, '10.3.0.30')
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .._deps import require
from ..errors import BuildError
from . import trt_shim as shim
from .calibration import prepare_cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildSpec:
    """What to build. ``dla_core`` None = GPU only; ``gpu_layers`` are pinned to the GPU on a DLA build."""

    onnx_path: Path
    precision: str
    input_shapes: Dict[str, Tuple[int, ...]]
    workspace_mb: int = 1024
    calib_cache: Optional[Path] = None
    strongly_typed: bool = False
    dla_core: Optional[int] = None
    gpu_fallback: bool = True
    gpu_layers: Tuple[str, ...] = ()
    opt_level: Optional[int] = 3
    timing_cache: Optional[Path] = None
    float_layers: Tuple[str, ...] = ()  # kept out of INT8 by the accuracy gate: pinned to FP16 (weak typing)


@dataclass(frozen=True)
class BuildResult:
    """The serialized plan plus what the built engine says about itself."""

    plan: bytes
    tensorrt_version: str
    seconds: float
    layer_info: Dict[str, Any]
    io: Tuple[Tuple[str, str, Tuple[int, ...]], ...]
    device_memory_bytes: int
    settings: Dict[str, Any] = field(default_factory=dict)


def build_engine(spec: BuildSpec, *, trt: Any = None) -> BuildResult:
    """Build ``spec`` with TensorRT (BuildError naming the failing step otherwise)."""
    trt = trt if trt is not None else require("tensorrt", feature="building TensorRT engines")
    shim.check_supported(trt)
    typed = spec.strongly_typed or shim.always_strongly_typed(trt)
    _validate(spec, trt, typed)
    logger = shim.make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(shim.network_flags(trt, strongly_typed=typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(spec.onnx_path)):
        raise BuildError(f"TensorRT's ONNX parser rejected {spec.onnx_path.name}: {shim.parser_errors(parser)}",
                         hint="check the model's opset against this TensorRT (8.6 parses up to opset 17)")
    config = builder.create_builder_config()
    settings = _configure(trt, builder, network, config, spec, typed)
    calibrator = _attach_calibration(trt, config, spec, typed)
    cache_data = spec.timing_cache.read_bytes() if spec.timing_cache and spec.timing_cache.is_file() else b""
    shim.attach_timing_cache(config, cache_data)
    mark = logger.mark()  # the logger is process-wide: quote only this build's errors
    started = time.monotonic()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.monotonic() - started
    if serialized is None:
        detail = "; ".join(logger.errors_since(mark)[-3:]) or "no error text from TensorRT"
        raise BuildError(f"TensorRT failed to build the engine: {detail}", hint="run `edgeinfer -vv build ...` for the full log")
    plan = bytes(serialized)
    del calibrator  # TensorRT holds only a raw pointer: it had to stay alive until here
    if spec.timing_cache is not None:
        _write_atomic(spec.timing_cache, shim.serialize_timing_cache(config))
    engine = shim.deserialize(trt, logger, plan, dla_core=spec.dla_core)
    return BuildResult(
        plan=plan, tensorrt_version=shim.version_text(trt), seconds=seconds,
        layer_info=json.loads(shim.engine_layer_json(trt, engine)), io=shim.io_tensors(trt, engine),
        device_memory_bytes=shim.device_memory_size(trt, engine), settings=settings,
    )


def _validate(spec: BuildSpec, trt: Any, typed: bool) -> None:
    if spec.precision not in ("fp32", "fp16", "int8"):
        raise BuildError(f"unknown precision {spec.precision!r}", hint="use fp32, fp16 or int8")
    if typed and spec.calib_cache is not None:
        raise BuildError("a calibration cache cannot be used with a strongly typed network "
                         f"(TensorRT {shim.version_text(trt)})",
                         hint="build the bundle's Q/DQ ONNX instead (re-package if it has none)")
    if spec.dla_core is not None and typed and not shim.always_strongly_typed(trt):
        raise BuildError("DLA builds on TensorRT 10.x use implicit INT8 / FP16 flags, not strongly typed networks",
                         hint="drop strongly_typed for DLA builds")
    if spec.dla_core is not None:
        shim.check_dla_available(trt)
    if spec.dla_core is not None and spec.precision == "fp32":
        raise BuildError("DLA runs only FP16 and INT8, but the bundle's precision is fp32",
                         hint="pass --dla-core gpu, or re-package with --precision fp16|int8")


def _configure(trt: Any, builder: Any, network: Any, config: Any, spec: BuildSpec, typed: bool) -> Dict[str, Any]:
    shim.set_workspace(trt, config, spec.workspace_mb)
    shim.set_detailed_profiling(trt, config)
    settings: Dict[str, Any] = {"network": "strongly-typed" if typed else "weakly-typed",
                                "workspace_mb": spec.workspace_mb, "precision_flags": []}
    if spec.opt_level is not None and shim.has_optimization_level(trt):
        shim.set_optimization_level(trt, config, spec.opt_level)
        settings["builder_optimization_level"] = spec.opt_level
    if not typed and shim.has_precision_flags(trt):
        shim.set_precision_flags(trt, config, spec.precision)
        settings["precision_flags"] = {"fp32": [], "fp16": ["fp16"], "int8": ["fp16", "int8"]}[spec.precision]
    if spec.float_layers and spec.precision == "int8" and not typed:
        pinned = shim.pin_layers_fp16(trt, network, config, spec.float_layers)
        missing = sorted(set(spec.float_layers) - set(pinned))
        if missing:
            log.warning("float layer(s) not in the parsed network, left to TensorRT: %s", ", ".join(missing))
        settings["float_layers"] = list(pinned)
        settings["precision_constraints"] = "obey" if pinned else "none"
    if spec.dla_core is not None:
        shim.configure_dla(trt, builder, config, dla_core=spec.dla_core, gpu_fallback=spec.gpu_fallback)
        settings["pinned_to_gpu"] = list(shim.pin_layers_to_gpu(trt, network, config, spec.gpu_layers))
    settings["dla_core"] = spec.dla_core
    settings["gpu_fallback"] = spec.dla_core is not None and spec.gpu_fallback
    settings["dynamic_profile"] = shim.add_static_profile(builder, network, config, dict(spec.input_shapes))
    return settings


def _attach_calibration(trt: Any, config: Any, spec: BuildSpec, typed: bool) -> Any:
    if spec.precision != "int8" or typed or spec.calib_cache is None:
        return None
    if not shim.has_calibrator(trt):
        shim.fail_unavailable("INT8 calibration caches", shim.version_text(trt),
                              hint="TensorRT 11 needs the bundle's Q/DQ ONNX")
    algorithm, data = prepare_cache(spec.calib_cache.read_bytes(), shim.version_tuple(trt))
    calibrator = shim.make_cache_calibrator(trt, data, algorithm=algorithm)
    shim.set_calibrator(trt, config, calibrator)
    return calibrator


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_plan(path: Path, plan: bytes) -> Path:
    """Write an engine file atomically (temp file in the same directory, then rename)."""
    _write_atomic(path, plan)
    return path


def describe_io(io: Tuple[Tuple[str, str, Tuple[int, ...]], ...]) -> List[Dict[str, Any]]:
    """JSON-ready list of the engine's I/O tensors."""
    return [{"name": name, "mode": mode, "shape": list(shape)} for name, mode, shape in io]
