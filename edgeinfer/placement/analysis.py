"""Counting on a placed graph: FLOPs per node, DLA subgraphs (connected components), transitions.

Example:
    >>> conv_flops((1, 3, 320, 320), (1, 16, 160, 160), kernel=[3, 3], groups=1)
    22118400
"""
from __future__ import annotations

from collections.abc import Mapping
from math import prod

from .graph import Graph, NodeView, is_static


def conv_flops(in_shape, out_shape, *, kernel: list[int], groups: int) -> int:
    """2 x MACs of a convolution: N*Cout*Hout*Wout * (Cin/groups) * kh * kw."""
    if not (is_static(in_shape) and is_static(out_shape)):
        return 0
    return 2 * prod(out_shape) * (in_shape[1] // max(groups, 1)) * prod(kernel)


def node_flops(n: NodeView) -> int:
    """FLOPs of the compute-heavy nodes (Conv, ConvTranspose, Gemm, MatMul); 0 for the rest."""
    x = n.input_shapes[0] if n.input_shapes else None
    y = n.output_shapes[0] if n.output_shapes else None
    if n.op == "Conv":
        w = n.input_shapes[1] if len(n.input_shapes) > 1 else None
        kernel = list(n.attrs.get("kernel_shape") or (w or ())[2:])
        return conv_flops(x, y, kernel=kernel, groups=int(n.attrs.get("group", 1)))
    if n.op == "ConvTranspose":
        w = n.input_shapes[1] if len(n.input_shapes) > 1 else None
        if not (is_static(x) and is_static(w)):
            return 0
        return 2 * prod(x) * prod(w[1:])  # every input pixel scatters Cout/groups * kh * kw MACs
    if n.op in ("Gemm", "MatMul") and is_static(x) and is_static(y):
        k = x[0] if n.op == "Gemm" and n.attrs.get("transA", 0) else x[-1]
        return 2 * prod(y) * k
    return 0


def dla_subgraphs(graph: Graph, devices: Mapping[str, str]) -> list[list[str]]:
    """DLA loadables: DLA nodes joined by direct DLA->DLA edges, split so that no path leaves a
    group for the GPU and comes back into it (a loadable cannot wait mid-way for a GPU layer).

    Each DLA node gets a level: the number of DLA -> GPU -> DLA round trips on the longest path
    reaching it. Joining only equal-level neighbours gives convex groups; nodes whose GPU
    producers do not depend on any DLA node are not split off.
    """
    level = _round_trips(graph, devices)
    parent = {name: name for name, dev in devices.items() if dev == "DLA"}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for src, dst in _node_edges(graph):
        if src in parent and dst in parent and level[src] == level[dst]:
            parent[find(src)] = find(dst)
    groups: dict[str, list[str]] = {}
    for name in parent:
        groups.setdefault(find(name), []).append(name)
    return sorted(groups.values(), key=len, reverse=True)


def _round_trips(graph: Graph, devices: Mapping[str, str]) -> dict[str, int]:
    """Level of every DLA node; GPU nodes carry the highest level of a DLA ancestor (-1: none)."""
    preds: dict[str, list[str]] = {}
    for src, dst in _node_edges(graph):
        preds.setdefault(dst, []).append(src)
    level: dict[str, int] = {}
    for node in graph.nodes:  # ONNX nodes are stored in topological order
        name = node.name
        if name in graph.folded:
            continue
        on_dla = devices.get(name) == "DLA"
        ups = [level.get(p, -1) + (1 if on_dla and devices.get(p) == "GPU" else 0) for p in preds.get(name, [])]
        level[name] = max(ups, default=0 if on_dla else -1)
        if on_dla:
            level[name] = max(level[name], 0)
    return level


def transitions(graph: Graph, devices: Mapping[str, str]) -> int:
    """Tensor edges between a DLA node and a GPU node (each needs a reformat + sync)."""
    placed = {"DLA", "GPU"}
    return sum(
        1 for src, dst in _node_edges(graph)
        if devices.get(src) in placed and devices.get(dst) in placed and devices[src] != devices[dst]
    )


def _node_edges(graph: Graph) -> set[tuple[str, str]]:
    """(producer, consumer) pairs of non-folded nodes, deduplicated per pair."""
    edges = set()
    for tensor, consumers in graph.consumers.items():
        src = graph.producers.get(tensor)
        if src is None or src in graph.folded:
            continue
        edges.update((src, dst) for dst in consumers if dst not in graph.folded)
    return edges
