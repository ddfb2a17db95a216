"""What NVIDIA's ONNX parser accepts per TensorRT version, and where TensorRT-RTX differs from TensorRT.

Two tables with their public sources, used by :mod:`edgeinfer.engine.nvparse` instead of ad-hoc skips:

* :data:`OPSET_LIMITS`: the highest ONNX opset each TensorRT's own parser documents. A version between
  two documented ones gets the lower documented limit, so a warning may be conservative but is never missed.
* :data:`RTX_DIFFERENCES`: what a check by TensorRT-RTX (the parser + builder that runs on a CPU-only
  host) cannot say about TensorRT on a Jetson.

Example:
    >>> max_opset("8.5.2")
    17
    >>> max_opset("10.3")
    20
    >>> [d.key for d in RTX_DIFFERENCES][:3]
    ['no-dla', 'no-implicit-int8', 'no-precision-flags']
    >>> fix_for("model.0.conv.bias_DequantizeLinear: input has type Int32 but must have type Int8")[:23]
    'the Q/DQ ONNX has INT32'
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

_OT = "https://github.com/onnx/onnx-tensorrt/blob/{branch}/docs/operators.md"


@dataclass(frozen=True)
class OpsetLimit:
    """TensorRT ``since`` (major, minor) and later parse ONNX up to ``max_opset`` (until the next entry)."""

    since: Tuple[int, int]
    max_opset: int
    source: str


OPSET_LIMITS: Tuple[OpsetLimit, ...] = (
    OpsetLimit((8, 0), 13, _OT.format(branch="8.0-GA") + " ('TensorRT 8.0 supports operators up to Opset 13')"),
    OpsetLimit((8, 2), 13, _OT.format(branch="8.2-GA") + " ('TensorRT 8.2 supports operators up to Opset 13')"),
    OpsetLimit((8, 4), 17, _OT.format(branch="8.4-GA") + " ('TensorRT 8.4 supports operators up to Opset 17')"),
    OpsetLimit((8, 5), 17, _OT.format(branch="8.5-GA") + " ('TensorRT 8.5 supports operators up to Opset 17')"),
    OpsetLimit((8, 6), 17, _OT.format(branch="8.6-GA") + " ('TensorRT 8.6 supports operators up to Opset 17')"),
    # 10.0 GA and 10.1 GA document 'opset 9 to opset 20'; the parser changelog records no opset change up to 10.7.
    OpsetLimit((10, 0), 20, _OT.format(branch="10.0-GA") + " ('inclusive range of opset 9 to opset 20')"),
    OpsetLimit((10, 15), 24, _OT.format(branch="release/10.15-GA") + " ('inclusive range of opset 9 to opset 24')"),
    OpsetLimit((11, 5), 25, "https://github.com/NVIDIA/TensorRT/releases/tag/v11.5 ('Added support for ONNX opset 25')"),
)


def opset_limit(trt_version: str) -> Optional[OpsetLimit]:
    """The documented limit that applies to ``trt_version`` ("8.5.2", "10.3"); None before TensorRT 8.0."""
    version = _major_minor(trt_version)
    applicable = [limit for limit in OPSET_LIMITS if limit.since <= version]
    return applicable[-1] if applicable else None


def max_opset(trt_version: str) -> Optional[int]:
    """The highest ONNX opset TensorRT ``trt_version``'s parser documents (None if unknown)."""
    limit = opset_limit(trt_version)
    return limit.max_opset if limit else None


def _major_minor(text: str) -> Tuple[int, int]:
    match = re.match(r"^\s*(\d+)\.(\d+)", str(text))
    if not match:
        return (0, 0)
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class Difference:
    """One way TensorRT-RTX is not TensorRT: what the parser check therefore cannot prove."""

    key: str
    what: str
    consequence: str
    source: str


_RTX = "https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest"
RTX_DIFFERENCES: Tuple[Difference, ...] = (
    Difference("no-dla", "TensorRT-RTX targets RTX GPUs and has no DLA",
               "DLA placement (--useDLACore, per-layer DLA support, DLA loadables) is not checked; only that every "
               "pinned layer name exists", f"{_RTX}/inference-library/porting.html"),
    Difference("no-implicit-int8", "no implicit INT8: no calibrators, no calibration cache",
               "the TensorRT calibration cache (DLA and TensorRT 8.x INT8) is not read; INT8 is checked through the "
               "Q/DQ ONNX only", f"{_RTX}/inference-library/work-quantized-types.html"),
    Difference("no-precision-flags", "no FP16/INT8 builder flags (BuilderFlag.FP16/INT8 are unsupported)",
               "a weakly typed FP16/INT8 build as trtexec --fp16/--int8 does it on TensorRT 8.5-10.x is not reproduced; "
               "the ONNX is built as typed by its tensors", "https://docs.rs/trtx-sys/0.4.0/trtx_sys/nvinfer1/enum.BuilderFlag.html"),
    Difference("newer-parser", "its ONNX parser is newer than any JetPack's TensorRT",
               "an ONNX it accepts may still use an opset or operator an older TensorRT lacks: opsets are checked "
               "against each target TensorRT separately (OPSET_LIMITS)", f"{_RTX}/reference/operators.html"),
    Difference("no-engine-run", "its engines run only on RTX GPUs (compute capability 8.0/8.6/8.9/12.x); the build "
               "here is ahead of time on the CPU",
               "nothing is executed: accuracy, speed, tactic choice and per-layer precision on the Jetson are unknown",
               f"{_RTX}/inference-library/cpu-engines.html"),
)

# Known parser refusals -> the fix, in words (matched against the parser's own message).
_FIXES: Tuple[Tuple[str, str], ...] = (
    (r"DequantizeLinear.*type Int32|input has type Int32 but must have type",
     "the Q/DQ ONNX has INT32 bias DequantizeLinear nodes (ONNX Runtime quantize_static with QuantizeBias on): "
     "re-quantize with extra_options={'QuantizeBias': False} (edgeinfer's own INT8 step does) and re-package"),
    (r"No importer registered for op|unsupported operator|is not supported",
     "the model uses an operator TensorRT's ONNX parser does not import: re-export without it or replace it "
     "(https://github.com/onnx/onnx-tensorrt/blob/main/docs/operators.md)"),
)
DEFAULT_FIX = ("re-export or simplify the model so TensorRT's ONNX parser accepts it (see docs/build.md), "
               "or pass --allow-parser-errors to write the bundle anyway")


def fix_for(message: str) -> str:
    """The fix for a parser or builder error message, in words."""
    for pattern, fix in _FIXES:
        if re.search(pattern, message, re.IGNORECASE):
            return fix
    return DEFAULT_FIX
