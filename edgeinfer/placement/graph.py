"""A read-only view of an ONNX graph for placement: shapes after inference, constants, neighbours.

Example:
    >>> g = load_graph("model.onnx")                       # doctest: +SKIP
    >>> [n.op for n in g.nodes][:3]                        # doctest: +SKIP
    ['Conv', 'Sigmoid', 'Mul']
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._deps import require
from ..errors import ModelError

Shape = tuple[int | str, ...]

# Ops TensorRT evaluates at build time from shapes/constants: they never become layers.
SHAPE_OPS = frozenset({"Constant", "Shape", "Size", "ConstantOfShape", "Range", "EyeLike"})


@dataclass(frozen=True)
class NodeView:
    """One ONNX node with everything a DLA rule may look at."""

    name: str
    op: str
    attrs: dict[str, Any]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    input_shapes: tuple[Shape | None, ...]
    output_shapes: tuple[Shape | None, ...]
    const_inputs: dict[int, Any] = field(default_factory=dict)  # input index -> numpy value (None: static, value unknown)
    producer_ops: tuple[str, ...] = ()
    consumer_ops: tuple[str, ...] = ()

    def is_const(self, index: int) -> bool:
        return index in self.const_inputs

    def const(self, index: int) -> Any:
        return self.const_inputs.get(index)


@dataclass(frozen=True)
class Graph:
    nodes: tuple[NodeView, ...]
    folded: frozenset[str]  # names of nodes TensorRT folds away (constants, shape arithmetic)
    producers: dict[str, str]  # tensor -> node name
    consumers: dict[str, tuple[str, ...]]  # tensor -> node names
    input_shapes: dict[str, Shape | None]
    output_names: tuple[str, ...]


def load_graph(onnx_path: str | Path) -> Graph:
    """Load ``onnx_path``, run shape inference and index nodes, shapes and constants."""
    onnx = require("onnx", feature="DLA placement")
    try:
        model = onnx.load(str(onnx_path))
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, InferenceError...
        raise ModelError(f"cannot read ONNX model {onnx_path}: {exc}".splitlines()[0],
                         hint="check the file is a valid ONNX model (e.g. python -m onnx.checker)") from exc
    return _index(model)


def _index(model: Any) -> Graph:
    numpy_helper = require("onnx.numpy_helper")
    g = model.graph
    shapes = {vi.name: _shape(vi) for vi in [*g.input, *g.output, *g.value_info]}
    consts: dict[str, Any] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for t in g.initializer:
        shapes[t.name] = tuple(t.dims)
    folded: set[str] = set()
    for i, node in enumerate(g.node):
        name = node.name or f"{node.op_type}_{i}"
        if _is_folded(node, consts):
            folded.add(name)
            value = _constant_value(node, numpy_helper)
            for out in node.output:
                consts[out] = value
    graph_inputs = {vi.name for vi in g.input} - set(consts)
    producers, consumers, ops = _edges(g)
    get_attr = require("onnx").helper.get_attribute_value
    nodes = tuple(_view(i, node, shapes, consts, producers, consumers, ops, get_attr) for i, node in enumerate(g.node))
    return Graph(
        nodes=nodes, folded=frozenset(folded), producers=producers,
        consumers={k: tuple(v) for k, v in consumers.items()},
        input_shapes={name: shapes.get(name) for name in graph_inputs},  # None: no shape recorded (dynamic)
        output_names=tuple(o.name for o in g.output),
    )


def _is_folded(node: Any, consts: dict[str, Any]) -> bool:
    if node.op_type in SHAPE_OPS:
        return True
    ins = [i for i in node.input if i]
    return bool(ins) and all(i in consts for i in ins)


def _constant_value(node: Any, numpy_helper: Any) -> Any:
    if node.op_type == "Constant":
        for attr in node.attribute:
            if attr.name == "value":
                return numpy_helper.to_array(attr.t)
    return None  # static but computed by TensorRT: value unknown here


def _edges(g: Any) -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    producers: dict[str, str] = {}
    consumers: dict[str, list[str]] = {}
    ops: dict[str, str] = {}
    for i, node in enumerate(g.node):
        name = node.name or f"{node.op_type}_{i}"
        ops[name] = node.op_type
        for out in node.output:
            producers[out] = name
        for inp in node.input:
            if inp:
                consumers.setdefault(inp, []).append(name)
    return producers, consumers, ops


def _view(i: int, node: Any, shapes: dict, consts: dict, producers: dict, consumers: dict, ops: dict,
          get_attr: Any) -> NodeView:
    attrs = {a.name: get_attr(a) for a in node.attribute}
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
    return NodeView(
        name=node.name or f"{node.op_type}_{i}", op=node.op_type, attrs=attrs,
        inputs=tuple(node.input), outputs=tuple(node.output),
        input_shapes=tuple(shapes.get(x) if x else None for x in node.input),
        output_shapes=tuple(shapes.get(x) for x in node.output),
        const_inputs={k: consts[x] for k, x in enumerate(node.input) if x and x in consts},
        producer_ops=tuple(ops[producers[x]] for x in node.input if x in producers),
        consumer_ops=tuple(ops[c] for x in node.output for c in consumers.get(x, [])),
    )


def _shape(value_info: Any) -> Shape | None:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[int | str] = []
    for d in tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or "?")
    return tuple(dims)


def is_static(shape: Shape | None) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)
