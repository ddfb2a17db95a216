"""What actually runs in INT8 in a built engine, read from the engine inspector's layer JSON, next
to what the bundle planned -- and the reasons to refuse the engine.

TensorRT does not fail an implicit-INT8 build when a tensor has no scale: it logs a warning and
runs that layer in FP16/FP32. So a cache that lost its names (a renamed ONNX, another exporter)
gives an engine that is silently mostly FP16, and a cache that still holds the decode head's scales
gives an engine whose class scores are quantized with box-pixel ranges. Both are visible only in
the built engine, so after every INT8 build:

* each inspector layer's precision comes from its I/O ``Format/Datatype`` strings (DETAILED
  profiling, which the builder and the recipes turn on): "Int8" anywhere -> int8, else "FP16"/"Half"
  -> fp16, else "FP32"/"Float" -> fp32; reformat layers are skipped; each ONNX node a layer covers
  (:func:`edgeinfer.engine.placement_check.layer_nodes`) gets the layer's precision;
* the INT8 share = INT8 nodes / nodes with a known precision, beside the packager's plan
  (``calibration.cache_plan.planned_int8_share``: nodes whose outputs all have a scale);
* refused (BuildError, nothing added to the bundle): any decode-head node running INT8, or an INT8
  share below ``min_share_ratio`` (default 0.5) of the planned one on a calibration-cache build.

Example:
    >>> info = {"Layers": [
    ...     {"Name": "/c", "Outputs": [{"Format/Datatype": "Thirty-two wide channel vectorized row major Int8 format"}],
    ...      "Metadata": "[ONNX Layer: /c]"},
    ...     {"Name": "/h", "Outputs": [{"Format/Datatype": "Row major linear FP16 format"}], "Metadata": "[ONNX Layer: /h]"}]}
    >>> r = int8_report(info, cache_plan={"head_nodes": ["/h"], "planned_int8_share": 0.5}, node_order=["/c", "/h"])
    >>> r["int8_share"], r["head_int8"], r["problems"]
    (0.5, [], [])
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..errors import BuildError
from .placement_check import classify_layer, layer_nodes

DEFAULT_MIN_SHARE_RATIO = 0.5
_INT8 = re.compile(r"\bint8\b", re.I)
_FP16 = re.compile(r"\b(fp16|half)\b", re.I)
_FP32 = re.compile(r"\b(fp32|float)\b", re.I)


def layer_precision(layer: Any) -> str:
    """"int8", "fp16", "fp32" or "unknown" (no I/O formats: not DETAILED profiling) for one layer."""
    if not isinstance(layer, Mapping):
        return "unknown"
    formats = [str(t.get("Format/Datatype", "")) for key in ("Inputs", "Outputs")
               for t in layer.get(key) or [] if isinstance(t, Mapping)]
    if any(_INT8.search(f) for f in formats):
        return "int8"
    if any(_FP16.search(f) for f in formats):
        return "fp16"
    if any(_FP32.search(f) for f in formats):
        return "fp32"
    return "unknown"


def node_precisions(layer_info: Mapping[str, Any], *, node_order: Sequence[str],
                    dla_core: Optional[int] = None) -> Dict[str, str]:
    """ONNX node name -> precision of the engine layer that runs it."""
    out: Dict[str, str] = {}
    for layer in layer_info.get("Layers", []) or []:
        if classify_layer(layer, dla_core=dla_core) == "reformat":
            continue
        precision = layer_precision(layer)
        for node in layer_nodes(layer, node_order):
            out[node] = precision
    return out


def int8_report(layer_info: Mapping[str, Any], *, cache_plan: Optional[Mapping[str, Any]],
                node_order: Sequence[str], dla_core: Optional[int] = None, calibration_cache: bool = True,
                min_share_ratio: float = DEFAULT_MIN_SHARE_RATIO) -> Dict[str, Any]:
    """Per-precision node counts, INT8 share vs plan, head nodes in INT8, and the problems found."""
    precisions = node_precisions(layer_info, node_order=node_order, dla_core=dla_core)
    counts: Dict[str, int] = {}
    for p in precisions.values():
        counts[p] = counts.get(p, 0) + 1
    known = sum(n for p, n in counts.items() if p != "unknown")
    share = round(counts.get("int8", 0) / known, 4) if known else None
    plan = dict(cache_plan or {})
    head = [n for n in plan.get("head_nodes") or [] if precisions.get(n) == "int8"]
    planned = plan.get("planned_int8_share")
    problems: List[str] = []
    if head:
        problems.append(f"{len(head)} decode-head node(s) run in INT8 ({', '.join(head[:3])}): class scores would "
                        "be quantized with box-pixel ranges")
    if share is None:
        notes = ["no per-layer precision in the inspector JSON (needs DETAILED profiling): INT8 share not checked"]
    else:
        notes = []
        if calibration_cache and planned and share < min_share_ratio * float(planned):
            problems.append(f"only {share:.0%} of the layers run in INT8, the bundle planned {float(planned):.0%}: "
                            "the calibration cache's tensor names do not match this network")
    return {"counts": counts, "int8_share": share, "planned_int8_share": planned, "head_int8": head,
            "min_share_ratio": min_share_ratio, "problems": problems, "notes": notes}


def check_int8_engine(report: Mapping[str, Any], *, device: str) -> None:
    """BuildError naming the first problem of :func:`int8_report`, if any."""
    if report.get("problems"):
        raise BuildError(f"the INT8 engine built for {device} is not what the bundle planned: "
                         f"{'; '.join(report['problems'])}",
                         hint="re-package (edgeinfer package ... --precision int8) with this edgeinfer so the cache "
                              "matches the ONNX, or build with --precision fp16")
