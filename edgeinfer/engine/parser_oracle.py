"""NVIDIA's ONNX parser and builder, driven for one ONNX file: parse (weakly or strongly typed), list the
network's layer names, build an engine ahead of time and throw it away.

Real TensorRT (``tensorrt``: on a Jetson or a GPU host) is preferred; else TensorRT-RTX
(``tensorrt_rtx_bindings``, ``pip install 'edgeinfer[verify]'``), whose builder runs on a CPU-only host.
Where the two differ is listed in :mod:`edgeinfer.engine.parser_limits`. TensorRT calls go through
:mod:`edgeinfer.engine.trt_shim` or sit behind ``hasattr`` guards (checked by the API contract test);
TensorRT-RTX-only calls are in the ``_rtx_*`` functions. Device-side code: Python 3.8-clean.

Example:
    >>> oracle = load_oracle()                                              # doctest: +SKIP
    >>> result = oracle.check("model.onnx", strongly_typed=False, build=True)  # doctest: +SKIP
    >>> result.parsed, result.built, len(result.layer_names)               # doctest: +SKIP
    (True, True, 392)
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import _deps
from ..errors import MissingDependencyError
from . import trt_shim

PARSER_MODULES = ("tensorrt", "tensorrt_rtx_bindings")
NAMES = {"tensorrt": "TensorRT", "tensorrt_rtx_bindings": "TensorRT-RTX"}
PROBE_SPATIAL = 320  # a shape for dynamic H/W when the bundle records none: any multiple of 32 builds a YOLO


@dataclass
class NodeError:
    """One parser or builder error: the ONNX node (when the parser names one) and the message."""

    node: str
    op: str
    message: str

    def line(self) -> str:
        where = f"node {self.node}" + (f" ({self.op})" if self.op else "") if self.node else "builder"
        return f"{where}: {self.message}"


@dataclass
class OnnxCheck:
    """What NVIDIA's parser and builder said about one ONNX file in one typing mode."""

    strongly_typed: bool
    parsed: bool
    built: Optional[bool]  # None: not attempted (parse failed, or build=False)
    num_layers: int = 0
    engine_bytes: int = 0
    parse_s: float = 0.0
    build_s: float = 0.0
    errors: List[NodeError] = field(default_factory=list)
    layer_names: List[str] = field(default_factory=list)


def available_module() -> Optional[str]:
    """The parser module this machine can import, real TensorRT first; None when neither is installed."""
    for name in PARSER_MODULES:
        if _deps.is_available(name):
            return name
    return None


def load_oracle(module: Optional[str] = None) -> "Oracle":
    """Import NVIDIA's parser (``module`` or the first available); MissingDependencyError with the install hint."""
    name = module or available_module()
    if name is None:
        raise MissingDependencyError(
            "NVIDIA's ONNX parser is needed to verify the bundle, but neither TensorRT nor TensorRT-RTX is installed",
            hint=_deps.install_hint("tensorrt_rtx_bindings") + " (or pass --no-verify)")
    return Oracle(_deps.require(name, feature="verifying ONNX artifacts with NVIDIA's parser"), name)


class Oracle:
    """One imported parser module, its logger and builder (reused across files: creating them costs time)."""

    def __init__(self, trt: Any, module_name: str) -> None:
        self.trt = trt
        self.module_name = module_name
        self.name = NAMES[module_name]
        self.version = str(getattr(trt, "__version__", "?"))
        self.rtx = module_name == "tensorrt_rtx_bindings"
        self.logger = _collecting_logger(trt)
        self.builder = trt.Builder(self.logger)

    @property
    def onnx_parser_version(self) -> str:
        getter = getattr(self.trt, "get_nv_onnx_parser_version", None)
        return str(getter()) if callable(getter) else self.version

    def can_strongly_type(self) -> bool:
        return self.rtx or trt_shim.has_strongly_typed(self.trt)

    def check(self, path: Path, *, strongly_typed: bool, build: bool,
              shapes: Optional[Dict[str, Sequence[int]]] = None, quantized: bool = False) -> OnnxCheck:
        """Parse ``path`` (and build it when ``build``); never raises for what the parser or builder rejects."""
        del self.logger.errors[:]
        flags = _rtx_network_flags(self.trt, strongly_typed) if self.rtx else \
            trt_shim.network_flags(self.trt, strongly_typed=strongly_typed)
        network = self.builder.create_network(flags)
        parser = self.trt.OnnxParser(network, self.logger)
        start = time.perf_counter()
        parsed = bool(parser.parse_from_file(str(path)))
        result = OnnxCheck(strongly_typed=strongly_typed, parsed=parsed, built=None,
                           parse_s=time.perf_counter() - start, errors=parser_errors(parser))
        if not parsed:
            if not result.errors:
                result.errors = [NodeError("", "", clean_message(m)) for m in self.logger.errors[-1:]]
            return result
        result.num_layers = int(network.num_layers)
        result.layer_names = [str(network.get_layer(i).name) for i in range(network.num_layers)]
        if build:
            self._build(network, result, shapes or {}, quantized=quantized and not strongly_typed)
        return result

    def _build(self, network: Any, result: OnnxCheck, shapes: Dict[str, Sequence[int]], *, quantized: bool) -> None:
        config = self.builder.create_builder_config()
        if self.rtx:
            _rtx_fast_config(config)
        else:
            _trt_fast_config(self.trt, config, quantized=quantized)
        trt_shim.add_static_profile(self.builder, network, config, _probe_shapes(network, shapes))
        del self.logger.errors[:]
        start = time.perf_counter()
        plan = self.builder.build_serialized_network(network, config)
        result.build_s = time.perf_counter() - start
        result.built = plan is not None
        if plan is None:
            message = clean_message(self.logger.errors[-1]) if self.logger.errors else "the builder returned no engine"
            result.errors.append(NodeError("", "", message))
        else:
            result.engine_bytes = int(plan.nbytes)
            del plan  # the engine itself is of no use here: it only proves the builder accepted the network


def _collecting_logger(trt: Any) -> Any:
    """A logger that keeps errors for the report and prints nothing (the report says what failed)."""

    class Collecting(trt.ILogger):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors = []  # type: List[str]

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.ERROR, trt.ILogger.INTERNAL_ERROR):
                self.errors.append(str(msg))

    return Collecting()


def _rtx_network_flags(rtx: Any, strongly_typed: bool) -> int:
    return 1 << int(rtx.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0


def _rtx_fast_config(cfg: Any) -> None:
    # Level 0: the least tactic search. The workspace stays at its default: a small limit (16 MB) makes the
    # TensorRT-RTX 1.7 CPU build of a 320x320 YOLO fail with "OutOfMemory (Requested size was 27150164 bytes)".
    cfg.builder_optimization_level = 0
    if hasattr(cfg, "max_num_tactics"):  # one tactic per layer still proves an implementation exists; ~30 % faster
        cfg.max_num_tactics = 1


def _trt_fast_config(trt: Any, config: Any, *, quantized: bool) -> None:
    if trt_shim.has_optimization_level(trt):
        trt_shim.set_optimization_level(trt, config, 0)
    if quantized and trt_shim.has_precision_flags(trt):
        trt_shim.set_precision_flags(trt, config, "int8")  # weakly typed Q/DQ builds as trtexec --int8 does


def _probe_shapes(network: Any, shapes: Dict[str, Sequence[int]]) -> Dict[str, Tuple[int, ...]]:
    """The recorded shape per input; for a dynamic input without one, batch 1 and PROBE_SPATIAL elsewhere."""
    out = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        recorded = [int(d) for d in shapes.get(tensor.name, ())]
        dims = [int(d) for d in tensor.shape]
        if len(recorded) == len(dims) and all(d > 0 for d in recorded):
            out[tensor.name] = tuple(recorded)
        else:
            out[tensor.name] = tuple(d if d > 0 else (1 if axis == 0 else PROBE_SPATIAL) for axis, d in enumerate(dims))
    return out


def parser_errors(parser: Any) -> List[NodeError]:
    """The parser's errors with the ONNX node each names (node names from TensorRT 9.1 / any TensorRT-RTX)."""
    errors = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        node = op = ""
        if hasattr(error, "node_name"):  # TensorRT 8.5/8.6 give only the node's index
            node = str(error.node_name())
        if hasattr(error, "node_operator"):
            op = str(error.node_operator())
        errors.append(NodeError(node, op, clean_message(str(error.desc()), node=node)))
    return errors


_NOISE = ("CUDA driver version is insufficient", "catchCudaError")
_WRAPPED = re.compile(r"Error Code \d+: [^(]*\((.*)\)\s*$")
_WHERE = re.compile(r"\s+In \w+ at \S+$")


def clean_message(text: str, *, node: str = "") -> str:
    """One line from a parser/builder message: no CUDA-driver noise (no GPU here), no source location.

    >>> clean_message("Invalid Node - n\\nITensor::getDimensions: Error Code 4: API Usage Error (n: input has type "
    ...               "Int32 but must have type Int8. In checkType at /_src/nodeBase.cpp:456)", node="n")
    'input has type Int32 but must have type Int8'
    """
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip() and not any(s in ln for s in _NOISE)]
    specific = [ln for ln in lines if not ln.startswith("Invalid Node")] or lines or [str(text).strip()]
    line = specific[0]
    wrapped = _WRAPPED.search(line)
    if wrapped:
        line = wrapped.group(1)
    line = _WHERE.sub("", line).strip()
    if node and line.startswith(node + ": "):
        line = line[len(node) + 2:]
    line = line.rstrip(".")
    return line or (f"invalid node {node}" if node else "rejected")
