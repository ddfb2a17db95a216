"""Explicit-quantization (Q/DQ) INT8 ONNX: TensorRT 10 GPU INT8 and the only INT8 route on TensorRT 11.

Recipe (Conv-only kept mAP, quantizing every op gave mAP 0 -- one INT8 scale over box pixels and
class scores rounds the scores away, as Ultralytics' ``ultralytics/utils/export/onnx.py`` notes too):
symmetric INT8 (zero point 0, what TensorRT requires), per-channel weights, Q/DQ only on the
backbone/neck convolutions, the decode head left in float. Built with ONNX Runtime's
``quantize_static`` (QDQ, QInt8/QInt8, ``op_types_to_quantize=["Conv"]``), fed the ranges from
:func:`compute_ranges` through ORT's calibration-cache JSON so the Q/DQ scales and the TensorRT
calibration cache come from the same numbers and the accuracy gate can re-quantize with other
exclusions without calibrating again.

Which nodes are "the decode head" is found structurally, not by name (see :func:`decode_nodes`):
walk back from every graph output through non-Conv nodes; a Conv reached that way is *decode*
when its input comes through a Softmax (YOLOv8/11's DFL: a fixed arange(16) 1×1 conv) and the
walk continues through it; any other Conv is the last learned prediction layer and the walk stops.
For YOLO11 that collects DFL/Softmax/box decode/Concat/Sigmoid of ``/model.23/`` (``/model.22/``
for YOLOv8) and leaves the learned cv2/cv3 convolutions to the quantizer (the accuracy gate keeps
them in float when they prove sensitive). For a generic model it collects only the non-Conv tail
after the last Convs.

What TensorRT's ONNX parser accepts (onnx-tensorrt ``importDequantizeLinear``; TensorRT-RTX and
strongly typed TensorRT 10/11 builds refuse the rest): every ``DequantizeLinear`` reads an INT8
initializer (a weight) or a ``QuantizeLinear`` output. ONNX Runtime quantizes Conv biases to INT32
by default, so ``QuantizeBias`` is off (the bias stays float; TensorRT folds it into the INT8
kernel itself) and :func:`lint_qdq` refuses any other DequantizeLinear input before a bundle ships.

The stem Conv (the one reading a graph input of 1-4 channels, e.g. RGB) stays float unless
``stem_int8=True``: an INT8 convolution with 3 input channels has no kernel on some TensorRT
builds ("could not find any implementation", reported on TensorRT 10.16), it is a sliver of the
compute, and quantizing the raw pixels costs accuracy for little speed.

Example:
    >>> r = make_qdq_onnx("yolo11n.onnx", "yolo11n.int8.qdq.onnx", ranges=amax)   # doctest: +SKIP
    >>> len(r.quantized), r.excluded[:1]                                         # doctest: +SKIP
    (87, ['/model.23/dfl/conv/Conv'])
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .._deps import require
from ..errors import QuantizeError
from .ranges import DEFAULT_METHOD, Progress, compute_ranges

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QdqResult:
    """The Q/DQ model written and which Conv nodes are INT8 vs kept in float."""

    path: Path
    quantized: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    decode: list[str] = field(default_factory=list)  # the decode-head nodes found structurally
    stem: list[str] = field(default_factory=list)  # stem Convs kept in float (see the module docstring)


def _producers(model: Any) -> dict[str, Any]:
    return {out: node for node in model.graph.node for out in node.output}


def _through_softmax(node: Any, producers: dict[str, Any], limit: int = 6) -> bool:
    """Does the data input of ``node`` come from a Softmax within a few non-Conv hops?"""
    current = producers.get(node.input[0]) if node.input else None
    for _ in range(limit):
        if current is None or current.op_type == "Conv":
            return False
        if current.op_type == "Softmax":
            return True
        current = producers.get(current.input[0]) if current.input else None
    return False


def decode_nodes(model: Any) -> tuple[list[str], list[str]]:
    """(decode-head node names, last learned Conv names feeding it). See the module docstring."""
    producers = _producers(model)
    decode: list[str] = []
    boundary: list[str] = []
    seen: set[str] = set()
    stack = [producers[o.name] for o in model.graph.output if o.name in producers]
    while stack:
        node = stack.pop()
        key = node.name or node.output[0]
        if key in seen:
            continue
        seen.add(key)
        if node.op_type == "Conv" and not _through_softmax(node, producers):
            boundary.append(node.name)
            continue
        decode.append(node.name)
        stack.extend(producers[i] for i in node.input if i in producers)
    return decode, boundary


def conv_nodes(model: Any) -> list[str]:
    return [n.name for n in model.graph.node if n.op_type == "Conv"]


def stem_convs(model: Any) -> list[str]:
    """Convs that read a graph input directly and have at most 4 input channels (RGB/BGR/grey/RGBA stems).

    Example:
        >>> stem_convs(onnx.load("yolo11n.onnx"))       # doctest: +SKIP
        ['/model.0/conv/Conv']
    """
    inits = {i.name: i for i in model.graph.initializer}
    inputs = {i.name for i in model.graph.input if i.name not in inits}
    stems = []
    for node in model.graph.node:
        if node.op_type != "Conv" or not node.input or node.input[0] not in inputs or len(node.input) < 2:
            continue
        weight = inits.get(node.input[1])
        if weight is not None and len(weight.dims) >= 2 and weight.dims[1] <= 4:
            stems.append(node.name)
    return stems


def make_qdq_onnx(onnx_path: str | Path, out_path: str | Path, *, ranges: dict[str, float] | None = None,
                  data: Any = None, info: Any = None, exclude: Iterable[str] = (), method: str = DEFAULT_METHOD,
                  stem_int8: bool = False, progress: Progress | None = None) -> QdqResult:
    """Write a symmetric per-channel INT8 Q/DQ ONNX of ``onnx_path`` to ``out_path``.

    Args:
        ranges: amax per tensor from :func:`compute_ranges` (preferred: reuse them), or
        data: calibration array (N,C,H,W) to compute ``method`` ranges from here.
        info: the model's ModelInfo (kept for the caller's symmetry; the head is found structurally).
        exclude: extra Conv node names to keep in float (the accuracy gate's sensitive layers).
        stem_int8: also quantize the stem Conv (float by default, see the module docstring).

    Example:
        >>> make_qdq_onnx("m.onnx", "m.qdq.onnx", data=calib).quantized[:2]     # doctest: +SKIP
        ['/model.0/conv/Conv', '/model.1/conv/Conv']
    """
    onnx = require("onnx")
    if ranges is None:
        if data is None:
            raise QuantizeError("make_qdq_onnx needs ranges or calibration data", hint="pass ranges= or data=")
        ranges = compute_ranges(onnx_path, data, method=method, progress=progress)
    model = onnx.load(str(onnx_path))
    convs = conv_nodes(model)
    _require_unique_conv_names(convs)
    decode, _ = decode_nodes(model)
    unknown = sorted(set(exclude) - set(convs) - set(decode))
    if unknown:
        raise QuantizeError(f"cannot exclude unknown nodes {unknown[:3]}", hint="use Conv node names of this model")
    stem = [] if stem_int8 else stem_convs(model)
    floats = set(decode) | set(exclude) | set(stem)
    excluded_convs = [c for c in convs if c in floats]
    if len(excluded_convs) == len(convs):
        raise QuantizeError(f"no Conv left to quantize: all {len(convs)} are in the decode head, the stem or kept "
                            "in float", hint="use --precision fp16 for this model")
    out_path = Path(out_path)
    with _at_least_opset_13(model, Path(onnx_path)) as src:
        _quantize(src, out_path, ranges, nodes_to_exclude=sorted(floats))
    quantized = [c for c in convs if c not in floats]
    _require_quantized(out_path, quantized)
    log.info("Q/DQ INT8: %d Conv quantized, %d kept in float (%d stem), %d decode nodes", len(quantized),
             len(excluded_convs), len(stem), len(decode))
    return QdqResult(path=out_path, quantized=quantized, excluded=excluded_convs, decode=decode, stem=stem)


def _require_unique_conv_names(convs: list[str]) -> None:
    """Float-kept layers are excluded by node name: an empty or repeated name would exclude the wrong Convs
    (an excluded ``""`` keeps every unnamed Conv float: an "INT8" model with no Q/DQ at all)."""
    bad = sorted({c for c in convs if not c or convs.count(c) > 1})
    if bad:
        raise QuantizeError(f"{len([c for c in convs if c in bad])} Conv node(s) have an empty or repeated name "
                            f"({bad[0]!r}); Q/DQ layer selection goes by node name",
                            hint="ingest the model with edgeinfer.model.load_model (it names every node) "
                                 "or name the nodes uniquely (onnx_utils.name_nodes)")


def _require_quantized(path: Path, quantized: list[str]) -> None:
    """An INT8 model without a single QuantizeLinear is a float model under an INT8 name: refuse it."""
    onnx = require("onnx")
    graph = onnx.load(str(path), load_external_data=False).graph
    if not any(n.op_type == "QuantizeLinear" for n in graph.node):
        path.unlink(missing_ok=True)
        raise QuantizeError(f"the Q/DQ model has no QuantizeLinear although {len(quantized)} Conv(s) were to be "
                            "quantized (ONNX Runtime's quantizer skipped them all)",
                            hint="report the model; use --precision fp16 meanwhile")


@contextlib.contextmanager
def _at_least_opset_13(model: Any, path: Path):
    """``path``, or a temporary copy converted to opset 13 when the model is older.

    Per-channel weights need DequantizeLinear's ``axis`` attribute, which exists from opset 13
    (PaddleOCR exports, for one, are opset 11/12). Node and tensor names survive the conversion,
    so ranges and exclusions still apply.
    """
    version = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=13)
    if version >= 13:
        yield path
        return
    onnx = require("onnx")
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(model, 13)
    except Exception as exc:
        raise QuantizeError(f"the model is opset {version}; Q/DQ INT8 needs opset >= 13 and the conversion failed "
                            f"({str(exc).splitlines()[0][:200]})",
                            hint="re-export the model with opset 13-17, or use --precision fp16") from exc
    log.info("Q/DQ INT8: model is opset %d, quantizing an opset-13 conversion", version)
    with tempfile.TemporaryDirectory(prefix="edgeinfer-opset13-") as tmp:
        dst = Path(tmp) / path.name
        onnx.save(converted, str(dst))
        yield dst


def _quantize(src: Path, out_path: Path, ranges: dict[str, float], *, nodes_to_exclude: list[str]) -> None:
    q = require("onnxruntime.quantization", feature="INT8 Q/DQ quantization")
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = TensorsData(q.CalibrationMethod.MinMax,
                          {k: TensorData(lowest=_f32(-v), highest=_f32(v)) for k, v in ranges.items()})
    fd, tmp_out = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory(prefix="edgeinfer-qdq-") as tmp:
            cache = Path(tmp) / "ranges.json"
            save_tensors_data(tensors, cache)
            with _ort_root_warnings_to_debug():
                q.quantize_static(
                    str(src), tmp_out, calibration_data_reader=None, quant_format=q.QuantFormat.QDQ,
                    op_types_to_quantize=["Conv"], per_channel=True, reduce_range=False,
                    activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                    nodes_to_exclude=nodes_to_exclude, calibrate_method=q.CalibrationMethod.MinMax,
                    calibration_cache_path=str(cache),
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                   # INT32 bias DequantizeLinear: TensorRT's parser refuses it (see lint_qdq).
                                   "QuantizeBias": False,
                                   # Q/DQ on Conv inputs only (TensorRT fuses the rest); a Q/DQ on the last
                                   # head Conv outputs would feed INT8 logits into the float decode.
                                   "OpTypesToExcludeOutputQuantization": ["Conv"]},
                )
        _validate(Path(tmp_out))
        os.replace(tmp_out, out_path)
    except QuantizeError:
        Path(tmp_out).unlink(missing_ok=True)
        raise
    except Exception as exc:
        Path(tmp_out).unlink(missing_ok=True)
        raise QuantizeError(f"Q/DQ quantization failed: {str(exc).splitlines()[0][:300]}",
                            hint="try --precision fp16, or report the model") from exc


class _DemoteOrtWarnings(logging.Filter):
    """ORT's quantizer warns on the root logger (pre-processing advice, per-channel bias scale
    bumps: one line per channel); keep them in our debug log instead of the user's console."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "root":
            log.debug("ort: %s", record.getMessage())
            return False
        return True


@contextlib.contextmanager
def _ort_root_warnings_to_debug():
    demote = _DemoteOrtWarnings()
    root = logging.getLogger()
    root.addFilter(demote)
    try:
        yield
    finally:
        root.removeFilter(demote)


def _f32(v: float) -> Any:
    np = require("numpy")
    return np.array(v, dtype=np.float32)


_DQ_INT8_TYPES = ("INT8", "UINT8")


def lint_qdq(model: Any) -> None:
    """Refuse a Q/DQ ONNX that TensorRT's parser would refuse: every DequantizeLinear input must be
    an INT8 (or UINT8) initializer or the output of a QuantizeLinear.

    Raises QuantizeError naming the first offending node, its input and its type.

    Example:
        >>> lint_qdq(onnx.load("m.qdq.onnx"))        # doctest: +SKIP
    """
    onnx = require("onnx")
    inits = {i.name: i for i in model.graph.initializer}
    producers = _producers(model)
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or not node.input:
            continue
        src = node.input[0]
        if src in inits:
            kind = onnx.TensorProto.DataType.Name(inits[src].data_type)
            if kind in _DQ_INT8_TYPES:
                continue
            what = f"an {kind} initializer"
        elif src in producers and producers[src].op_type == "QuantizeLinear":
            continue
        else:
            what = f"the output of {producers[src].op_type} {producers[src].name!r}" if src in producers else \
                "a graph input"
        raise QuantizeError(
            f"Q/DQ model: DequantizeLinear {node.name!r} reads {src!r}, {what}; TensorRT's ONNX parser accepts "
            "only an INT8 initializer or a QuantizeLinear output there",
            hint="quantize with QuantizeBias off (biases stay float), or re-make the Q/DQ ONNX with edgeinfer")


def _validate(path: Path) -> None:
    """The Q/DQ model must pass the checker, TensorRT's DequantizeLinear rule, and run on ONNX Runtime."""
    onnx = require("onnx")
    ort = require("onnxruntime")
    np = require("numpy")
    onnx.checker.check_model(str(path))
    lint_qdq(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        feeds[inp.name] = np.zeros(shape, np.float32)
    sess.run(None, feeds)
