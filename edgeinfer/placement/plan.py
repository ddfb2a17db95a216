"""Static DLA/GPU placement of an ONNX model for one device profile, before any device is involved.

Example:
    >>> from edgeinfer.profiles import get_profile
    >>> plan = plan_placement("shapes.onnx", profile=get_profile("orin-nx-16gb"), trt_version="10.3")  # doctest: +SKIP
    >>> plan.decision, round(plan.dla_flops_share, 2), plan.dla_subgraphs            # doctest: +SKIP
    ('gpu', 0.93, 6)
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PlacementError
from ..profiles.dla import dla_unsupported_reason
from . import analysis
from .graph import Graph, is_static, load_graph
from .rules import first_violation

log = logging.getLogger(__name__)

AUTO_MIN_FLOPS_SHARE = 0.70  # auto uses DLA only when most compute stays on it...
# ...in few loadables: every GPU<->DLA boundary costs a reformat + sync (NVIDIA-AI-IOT/jetson_dla_tutorial:
# GPU fallback layers interleaved with DLA ones halved throughput).
AUTO_MAX_SUBGRAPHS = 4
MIN_ISLAND_FLOPS_SHARE = 0.01  # smaller DLA islands are pinned to the GPU: they would cost transitions for no compute
# TensorRT developer guide, "DLA Supported Layers and Restrictions": at most 16 DLA loadables per core
MAX_LOADABLES_PER_CORE = 16
STATIC_HINT = "export with static shapes: pass --imgsz N --batch N (no --dynamic)"


@dataclass(frozen=True)
class NodePlacement:
    """Where one ONNX node runs and why."""

    name: str
    op: str
    device: str  # "DLA", "GPU" or "folded" (constant / shape arithmetic, no layer at run time)
    dla_capable: bool
    reason: str
    rule: str | None = None  # rule_id that keeps it off the DLA
    source: str | None = None
    flops: int = 0


@dataclass(frozen=True)
class PlacementPlan:
    """The placement for one device: per-node devices, DLA subgraphs, transitions, FLOPs share, decision.

    ``dla_subgraphs``/``transitions``/``dla_flops_share`` describe the DLA build candidate (every
    DLA-capable node on the DLA); ``decision`` says whether the bundle uses it.
    """

    device: str
    trt_version: str
    dla_generation: int
    requested: str  # "auto", "off", "0", "1"
    decision: str  # "dla" or "gpu"
    dla_core: int | None
    reason: str
    nodes: tuple[NodePlacement, ...] = ()
    dla_subgraphs: int = 0
    transitions: int = 0
    dla_flops_share: float = 0.0
    total_flops: int = 0
    warnings: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        c = Counter(n.device for n in self.nodes)
        return {"dla": c.get("DLA", 0), "gpu": c.get("GPU", 0), "folded": c.get("folded", 0)}

    def top_reasons(self, limit: int = 5) -> list[dict[str, Any]]:
        """The most frequent reasons nodes cannot run on the DLA, by rule."""
        by_rule = Counter(n.rule for n in self.nodes if n.rule)
        example = {n.rule: n for n in self.nodes if n.rule}
        return [{"rule": rule, "nodes": count, "example": f"{example[rule].name}: {example[rule].reason}",
                 "source": example[rule].source} for rule, count in by_rule.most_common(limit)]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["nodes"] = [asdict(n) for n in self.nodes]
        data["warnings"] = list(self.warnings)
        data["summary"] = {**self.counts(), "top_reasons": self.top_reasons()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlacementPlan:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["nodes"] = tuple(NodePlacement(**n) for n in data.get("nodes", ()))
        fields["warnings"] = tuple(data.get("warnings", ()))
        return cls(**fields)


@dataclass(frozen=True)
class _Request:
    mode: str  # "auto" | "off" | "core"
    core: int | None = None
    label: str = field(default="auto")


def plan_placement(onnx_path: str | Path, *, profile: Any, trt_version: str, dla: str | int = "auto",
                   precision: str | None = None) -> PlacementPlan:
    """Place every node of ``onnx_path`` on the DLA or the GPU for ``profile`` and decide.

    Args:
        profile: a DeviceProfile (uses name, dla_cores, dla_generation).
        trt_version: TensorRT version of the target JetPack line, e.g. "10.3".
        dla: "auto" (DLA only if it keeps >= 70% of FLOPs in <= 4 subgraphs), "off", or a core 0/1 to force.
        precision: the bundle precision; "fp32" cannot run on the DLA (FP16/INT8 only).
    Raises:
        PlacementError: a forced core the module lacks, dynamic shapes or fp32 with a forced DLA core,
            more than 16 DLA subgraphs on a forced core.
    """
    request = _parse_request(dla)
    trt = _trt_tuple(trt_version)
    graph = load_graph(onnx_path)
    base = {"device": profile.name, "trt_version": str(trt_version),
            "dla_generation": int(profile.dla_generation), "requested": request.label}
    blocker = _dla_blocker(profile, trt, request, graph, precision)
    if blocker:
        nodes = tuple(_gpu_only(n, graph, blocker) for n in graph.nodes)
        return PlacementPlan(**base, decision="gpu", dla_core=None, reason=blocker, nodes=nodes,
                             total_flops=sum(n.flops for n in nodes))
    nodes = _pin_islands(tuple(_place(n, graph, profile.dla_generation) for n in graph.nodes), graph)
    candidate = {n.name: n.device for n in nodes}
    groups = analysis.dla_subgraphs(graph, candidate)
    total = sum(n.flops for n in nodes)
    share = sum(n.flops for n in nodes if n.device == "DLA") / total if total else 0.0
    stats = {"dla_subgraphs": len(groups), "transitions": analysis.transitions(graph, candidate),
             "dla_flops_share": round(share, 4), "total_flops": total}
    decision, core, reason, warnings = _decide(request, profile, stats)
    if decision == "gpu":
        nodes = tuple(n if n.device == "folded" else _replace_device(n, "GPU") for n in nodes)
    return PlacementPlan(**base, decision=decision, dla_core=core, reason=reason, nodes=nodes,
                         warnings=tuple(warnings), **stats)


def _parse_request(dla: str | int) -> _Request:
    text = str(dla).strip().lower()
    if text in ("auto", "off"):
        return _Request(text, None, text)
    if text in ("0", "1"):
        return _Request("core", int(text), text)
    raise PlacementError(f"unknown --dla value {dla!r}", hint="use auto, off, 0 or 1")


def _trt_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in str(version).split(".")[:3])
    except ValueError as exc:
        raise PlacementError(f"cannot parse TensorRT version {version!r}", hint="use e.g. '10.3' or '8.5.2'") from exc


def _dla_blocker(profile: Any, trt: tuple[int, ...], request: _Request, graph: Graph, precision: str | None) -> str | None:
    """Why this plan must be GPU-only (None when the DLA may be used); raises for impossible forced requests."""
    name, cores = profile.name, int(profile.dla_cores)
    if cores == 0:
        if request.mode == "core":
            raise PlacementError(f"--dla {request.core} requested but {name} has no DLA", hint="use --dla off (or auto)")
        return f"{name} has no DLA: every layer runs on the GPU"
    if request.mode == "core" and request.core >= cores:
        raise PlacementError(f"--dla {request.core} requested but {name} has {cores} DLA core(s) (0..{cores - 1})",
                             hint=f"use --dla {cores - 1} or --dla auto")
    checks = [
        (request.mode == "off", "DLA disabled (--dla off): every layer runs on the GPU"),
        (_trt_has_no_dla(trt, profile), f"TensorRT {'.'.join(map(str, trt))} has no DLA support for {name} "
                                        "(DLA: TRT 8.x-10.7, and 11.4.1+ on AGX Orin only; TensorRT 11.4.1 docs, Working with DLA)"),
        (precision == "fp32", "precision fp32: DLA runs FP16/INT8 only (TensorRT docs, Working with DLA)"),
        (not all(is_static(s) for s in graph.input_shapes.values()),
         f"dynamic input shapes {_dyn(graph)}: DLA needs static shapes (TensorRT docs, DLA restrictions)"),
    ]
    for blocked, reason in checks:
        if blocked:
            if request.mode == "core":
                hint = STATIC_HINT if "dynamic" in reason else "use --dla auto or off"
                raise PlacementError(f"--dla {request.core} requested for {name}, but {reason}", hint=hint)
            return reason
    return None


def trt_supports_dla(trt_version: str | tuple[int, ...], profile: Any) -> bool:
    """Whether TensorRT ``trt_version`` can place layers on ``profile``'s DLA (one shared rule:
    :func:`edgeinfer.profiles.dla.dla_unsupported_reason`)."""
    return dla_unsupported_reason(trt_version, profile_name=str(getattr(profile, "name", "")),
                                  families=tuple(getattr(profile, "families", ())),
                                  dla_cores=int(getattr(profile, "dla_cores", 0))) is None


def _trt_has_no_dla(trt: tuple[int, ...], profile: Any) -> bool:
    return not trt_supports_dla(trt, profile)


def _dyn(graph: Graph) -> str:
    return ", ".join(f"{k}={list(v) if v is not None else 'unknown'}" for k, v in graph.input_shapes.items()
                     if not is_static(v))


def _place(n: Any, graph: Graph, generation: int) -> NodePlacement:
    flops = analysis.node_flops(n)
    if n.name in graph.folded:
        return NodePlacement(n.name, n.op, "folded", False, "constant or shape arithmetic, folded at build time", flops=flops)
    hit = first_violation(n, generation=generation)
    if hit is None:
        return NodePlacement(n.name, n.op, "DLA", True, "meets the DLA layer rules", flops=flops)
    rule, reason = hit
    return NodePlacement(n.name, n.op, "GPU", False, reason, rule=rule.rule_id, source=rule.source, flops=flops)


def _pin_islands(nodes: tuple[NodePlacement, ...], graph: Graph) -> tuple[NodePlacement, ...]:
    """Pin DLA subgraphs with < 1% of the FLOPs (all but the heaviest) to the GPU.

    Each extra DLA subgraph is another loadable plus a reformat and a sync at every boundary
    (github.com/NVIDIA-AI-IOT/jetson_dla_tutorial: GPU fallback layers interleaved with DLA layers
    halved throughput). A shape-shuffling island between GPU
    layers gains nothing from the DLA, so the recipe pins it to the GPU (trtexec --layerDeviceTypes).
    Demoting a whole connected component only turns its boundary edges GPU-GPU: transitions drop.
    """
    flops = {n.name: n.flops for n in nodes}
    total = sum(flops.values())
    groups = sorted(analysis.dla_subgraphs(graph, {n.name: n.device for n in nodes}),
                    key=lambda g: (sum(flops[x] for x in g), len(g)), reverse=True)
    pinned = {x for g in groups[1:] if sum(flops[x] for x in g) < MIN_ISLAND_FLOPS_SHARE * max(total, 1) for x in g}
    if not pinned:
        return nodes
    reason = (f"DLA-capable, but in a DLA island with < {MIN_ISLAND_FLOPS_SHARE:.0%} of the FLOPs: pinned to the GPU "
              "to avoid extra DLA loadables and GPU<->DLA transitions")
    return tuple(NodePlacement(n.name, n.op, "GPU", True, reason, "dla-island",
                               "NVIDIA-AI-IOT/jetson_dla_tutorial (GPU<->DLA transition cost)",
                               n.flops) if n.name in pinned else n for n in nodes)


def _gpu_only(n: Any, graph: Graph, reason: str) -> NodePlacement:
    device = "folded" if n.name in graph.folded else "GPU"
    return NodePlacement(n.name, n.op, device, False, reason, flops=analysis.node_flops(n))


def _replace_device(n: NodePlacement, device: str) -> NodePlacement:
    return NodePlacement(n.name, n.op, device, n.dla_capable, n.reason, n.rule, n.source, n.flops)


def _decide(request: _Request, profile: Any, stats: dict[str, Any]) -> tuple[str, int | None, str, list[str]]:
    share, groups, trans = stats["dla_flops_share"], stats["dla_subgraphs"], stats["transitions"]
    facts = f"{share:.1%} of FLOPs on DLA in {groups} subgraph(s), {trans} GPU<->DLA transition(s)"
    warnings = []
    if groups > MAX_LOADABLES_PER_CORE:
        warnings.append(f"{groups} DLA subgraphs exceed the {MAX_LOADABLES_PER_CORE} loadables a DLA core can hold")
    if request.mode == "core":
        if groups > MAX_LOADABLES_PER_CORE:
            raise PlacementError(f"--dla {request.core}: {warnings[0]}", hint="use --dla auto or off, or simplify the model's head")
        if groups == 0:
            raise PlacementError(f"--dla {request.core}: no layer of this model can run on the DLA", hint="use --dla off")
        return "dla", request.core, f"DLA core {request.core} forced by --dla {request.core}: {facts}", warnings
    if share >= AUTO_MIN_FLOPS_SHARE and 1 <= groups <= AUTO_MAX_SUBGRAPHS:
        return "dla", 0, f"auto chose DLA core 0: {facts} (needs >= {AUTO_MIN_FLOPS_SHARE:.0%} in <= {AUTO_MAX_SUBGRAPHS})", warnings
    why = []
    if share < AUTO_MIN_FLOPS_SHARE:
        why.append(f"less than {AUTO_MIN_FLOPS_SHARE:.0%} of FLOPs")
    if not 1 <= groups <= AUTO_MAX_SUBGRAPHS:
        why.append(f"not 1..{AUTO_MAX_SUBGRAPHS} subgraphs")
    return "gpu", None, f"auto chose GPU: {facts} ({' and '.join(why)}; --dla 0 forces DLA)", warnings
