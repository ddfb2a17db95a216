"""Which ranges go into the TensorRT calibration cache (implicit INT8: DLA, TensorRT 8.x/10.x GPU).

The calibration gives every tensor a range; the cache must not simply carry them all:

1. **The decode head stays out of INT8.** For implicit quantization TensorRT runs a layer in INT8
   only when its tensors have scales; a tensor without one makes the layer fall back to FP16/FP32
   (TensorRT logs "Missing scale and zero-point ... fall back to non-int8"). So the outputs of the
   decode-head nodes (:func:`edgeinfer.quantize.qdq.decode_nodes`: YOLO's Sigmoid, DFL Softmax and
   conv, box decode, the final Concat) and every graph output are left out. ``output0`` of a
   YOLOv8/11 mixes box pixels (amax ≈ imgsz) with 0–1 class scores: under one INT8 scale of
   imgsz/127 every score below ~2.5 quantizes to 0. Ultralytics forces the head's Sigmoid layers to
   FP32 in its own TensorRT INT8 export for the same reason (ultralytics/ultralytics PR #25020,
   fixing issue #24668; PR #25920 scopes it to the detection head). The Q/DQ ONNX leaves the same nodes in float, so both INT8 routes agree.
2. **Layers the accuracy gate kept in float** lose their output scales too (same mechanism).
3. **DLA equal-range rules.** ``NvInfer.h`` (TensorRT 8.5.2, IPoolingLayer and IElementWiseLayer;
   unchanged in 10.3): "When running pooling layer with DeviceType::kDLA in Int8 mode, the dynamic
   ranges for input and output tensors must be equal" and, for ElementWise, "the dynamic ranges of
   two input tensors shall be equal. If the dynamic ranges are generated using calibrator, the
   largest value shall be used." Where the placement plan puts such a node on the DLA, its tensors
   are merged into one group (transitively: a tensor feeding two Adds links both) and every tensor
   of the group gets the group's largest amax. The cache is shared by the devices of one TensorRT
   version, so a GPU build of the same version sees the same (slightly coarser) ranges.

Example:
    >>> plan = cache_ranges_for(amax, "yolo11n.onnx", float_layers=[], dla_nodes={"/model.9/m/MaxPool"})  # doctest: +SKIP
    >>> "output0" in plan.ranges, plan.unified[:1]                                                       # doctest: +SKIP
    (False, [['/model.9/cv1/act/Mul_output_0', '/model.9/m/MaxPool_output_0']])
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._deps import require

ELEMENTWISE_OPS = frozenset({"Add", "Sub", "Mul", "Max", "Min", "Sum", "Div", "Pow"})
POOLING_OPS = frozenset({"MaxPool", "AveragePool", "GlobalMaxPool", "GlobalAveragePool"})
_NO_COMPUTE = frozenset({"Constant", "Identity"})


@dataclass(frozen=True)
class CacheRanges:
    """The ranges to write, and what the bundle records about them for the post-build check."""

    ranges: dict[str, float]
    head_nodes: list[str] = field(default_factory=list)  # must not run INT8 on the device
    stripped: list[str] = field(default_factory=list)  # tensors left out of the cache
    unified: list[list[str]] = field(default_factory=list)  # DLA equal-range groups (sorted names)
    planned_int8_nodes: int = 0  # nodes whose outputs all carry a scale
    nodes: int = 0  # compute nodes in the graph

    def to_dict(self) -> dict:
        """What the manifest keeps (``calibration.cache_plan``): read back by ``edgeinfer build``."""
        share = self.planned_int8_nodes / self.nodes if self.nodes else 0.0
        return {"head_nodes": list(self.head_nodes), "stripped_tensors": len(self.stripped),
                "dla_unified_groups": [list(g) for g in self.unified], "planned_int8_nodes": self.planned_int8_nodes,
                "nodes": self.nodes, "planned_int8_share": round(share, 4)}


def cache_ranges_for(ranges: dict[str, float], onnx_path: str | Path, *, float_layers: Iterable[str] = (),
                     dla_nodes: Iterable[str] = ()) -> CacheRanges:
    """Ranges minus the head, minus float-kept layers' outputs, with DLA groups unified."""
    onnx = require("onnx")
    from .qdq import decode_nodes

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    head, _ = decode_nodes(onnx.ModelProto(graph=graph))
    floats = set(float_layers) | set(head)
    drop = {out for node in graph.node if node.name in floats for out in node.output}
    drop |= {o.name for o in graph.output}
    kept = {name: amax for name, amax in ranges.items() if name not in drop}
    kept, groups = unify_dla_ranges(kept, graph, set(dla_nodes))
    compute = [n for n in graph.node if n.op_type not in _NO_COMPUTE]
    planned = sum(1 for n in compute if n.output and all(o in kept for o in n.output if o))
    return CacheRanges(ranges=kept, head_nodes=list(head), stripped=sorted(set(ranges) - set(kept)),
                       unified=groups, planned_int8_nodes=planned, nodes=len(compute))


def unify_dla_ranges(ranges: dict[str, float], graph: Any, dla_nodes: set[str]) -> tuple[dict[str, float], list[list[str]]]:
    """Give every DLA ElementWise input pair / Pooling in-out pair the largest amax of its group.

    Only tensors that have a range take part (constants and stripped tensors have none).
    Returns (new ranges, groups of 2+ tensors that were merged).
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for node in graph.node:
        if node.name not in dla_nodes:
            continue
        if node.op_type in ELEMENTWISE_OPS:
            linked = [t for t in node.input if t in ranges]
        elif node.op_type in POOLING_OPS:
            linked = [t for t in (node.input[:1] + node.output[:1]) if t in ranges]
        else:
            continue
        for other in linked[1:]:
            parent[find(other)] = find(linked[0])
    members: dict[str, list[str]] = {}
    for tensor in parent:
        members.setdefault(find(tensor), []).append(tensor)
    out = dict(ranges)
    groups = []
    for group in members.values():
        if len(group) < 2:
            continue
        top = max(ranges[t] for t in group)
        for t in group:
            out[t] = top
        groups.append(sorted(group))
    return out, sorted(groups)


def dla_nodes_of(plans: Iterable[Any]) -> set[str]:
    """Names of the nodes any placement plan (PlacementPlan or its dict) puts on the DLA."""
    names: set[str] = set()
    for plan in plans:
        data = plan.to_dict() if hasattr(plan, "to_dict") else plan
        if str(data.get("decision", "")).lower() != "dla":
            continue
        names |= {str(n["name"]) for n in data.get("nodes") or [] if str(n.get("device", "")).lower() == "dla"}
    return names
