"""Small ONNX helpers shared by ingestion and quantization: load/validate, shapes, metadata, atomic save.

Host-only code (Python 3.10+). onnx/onnxslim/onnxruntime are imported through ``_deps.require``
inside the functions so that ``import edgeinfer.model`` stays light.

Example:
    >>> from edgeinfer.model.onnx_utils import load_onnx, io_specs
    >>> model = load_onnx("yolo11n.onnx")            # doctest: +SKIP
    >>> inputs, outputs = io_specs(model)            # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .._deps import require
from ..errors import ModelError
from .info import TensorSpec

log = logging.getLogger(__name__)

# TensorRT 8.5/8.6 (JetPack 5 / 6.0) ONNX parsers accept opsets up to 17.
MAX_PORTABLE_OPSET = 17

_ELEM_TYPE_NAMES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64"}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed (models can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_onnx(path: str | Path) -> Any:
    """Load and validate an ONNX file; ModelError naming the file and the fix when it is not valid ONNX."""
    onnx = require("onnx")
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}", hint="check the path (an .onnx or Ultralytics .pt file)")
    try:
        # The path form of the checker also handles >2 GB models with external data.
        onnx.checker.check_model(str(path))
        return onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, ValidationError, OSError: all mean "not usable ONNX"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path} is not a valid ONNX model ({first[:200]})",
            hint="re-export it (e.g. `yolo export model=<file>.pt format=onnx opset=17`) or pass the .pt instead",
        ) from exc


def check(model: Any, what: str) -> None:
    """Run onnx.checker on an in-memory model; a failure here is our conversion's fault, named as such."""
    onnx = require("onnx")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelError(f"{what} produced an invalid ONNX graph: {str(exc).splitlines()[0][:200]}",
                         hint="report this model; meanwhile try the original ONNX with --dynamic or another opset") from exc


def infer_shapes(model: Any) -> Any:
    """ONNX shape inference (strict off: unknown custom ops keep their outputs unshaped)."""
    onnx = require("onnx")
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:  # shape inference is best-effort; the model itself already passed the checker
        log.warning("shape inference failed (%s); continuing without inferred shapes", exc)
        return model


def simplify(model: Any) -> Any:
    """Constant-fold and clean the graph with onnxslim (what Ultralytics uses for its exports)."""
    onnxslim = require("onnxslim")
    try:
        return onnxslim.slim(model)
    except Exception as exc:  # a simplifier bug must not block packaging: the unsimplified graph is valid
        log.warning("onnxslim failed (%s); keeping the unsimplified graph", exc)
        return model


def opset_of(model: Any) -> int:
    """The default-domain opset version of a model."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def metadata(model: Any) -> dict[str, str]:
    """metadata_props as a plain dict (Ultralytics stores names, stride, imgsz, task there)."""
    return {p.key: p.value for p in model.metadata_props}


def _dims(value_info: Any) -> list[int | str]:
    shape = value_info.type.tensor_type.shape
    dims: list[int | str] = []
    for i, d in enumerate(shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or f"d{i}")
    return dims


def tensor_spec(value_info: Any) -> TensorSpec:
    elem = value_info.type.tensor_type.elem_type
    return TensorSpec(value_info.name, _dims(value_info), _ELEM_TYPE_NAMES.get(elem, f"onnx:{elem}"))


def graph_inputs(model: Any) -> list[Any]:
    """Real inputs (initializers listed as inputs by old exporters are not inputs)."""
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def io_specs(model: Any) -> tuple[list[TensorSpec], list[TensorSpec]]:
    return [tensor_spec(i) for i in graph_inputs(model)], [tensor_spec(o) for o in model.graph.output]


def set_input_dims(model: Any, dims: dict[str, list[int | str]]) -> None:
    """Overwrite input dims in place (ints fix them, strs name them) and forget stale output/value shapes.

    Output and intermediate shapes were inferred for the old dims, so they are cleared and
    re-inferred by the caller (``infer_shapes``), never trusted.
    """
    for inp in graph_inputs(model):
        if inp.name not in dims:
            continue
        shape = inp.type.tensor_type.shape
        new = dims[inp.name]
        if len(new) != len(shape.dim):
            raise ModelError(f"input {inp.name!r} has rank {len(shape.dim)}, cannot set shape {new}")
        for d, v in zip(shape.dim, new):
            if isinstance(v, int):
                d.Clear()
                d.dim_value = v
            else:
                d.Clear()
                d.dim_param = v
    del model.graph.value_info[:]
    for out in model.graph.output:
        if out.type.tensor_type.HasField("shape"):
            for i, d in enumerate(out.type.tensor_type.shape.dim):
                d.Clear()
                d.dim_param = f"{out.name}_d{i}"


def fill_output_shapes_by_running(model: Any) -> None:
    """Give static output shapes to a static-input model by one ONNX Runtime run on zeros.

    Some graphs (Reshape with computed shapes) keep symbolic outputs after shape inference;
    TensorRT and the bundle want concrete ones, and one run is the ground truth.
    """
    np = require("numpy")
    ort = require("onnxruntime")
    inputs, outputs = io_specs(model)
    if not all(t.is_static for t in inputs) or all(t.is_static for t in outputs):
        return
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {t.name: np.zeros(t.shape, dtype=_np_dtype(np, t.dtype)) for t in inputs}
    results = sess.run(None, feeds)
    for out, arr in zip(model.graph.output, results):
        shape = out.type.tensor_type.shape
        del shape.dim[:]
        for v in arr.shape:
            shape.dim.add().dim_value = int(v)


def _np_dtype(np: Any, name: str) -> Any:
    return {"float16": np.float16, "uint8": np.uint8, "int8": np.int8, "int32": np.int32, "int64": np.int64,
            "bool": np.bool_, "float64": np.float64}.get(name, np.float32)


def save_onnx_atomic(model: Any, path: str | Path) -> Path:
    """Write a model via a temp file in the same directory + os.replace: never half-written."""
    onnx = require("onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def name_nodes(model: Any) -> int:
    """Give every unnamed (or duplicate-named) node a unique name, in place; returns how many were named.

    Older exporters (CenterFace's opset-9 graph, for one) leave node names empty. Everything after
    ingestion refers to nodes by name: the Q/DQ step's float-kept layers (ONNX Runtime's quantizer
    excludes by name, so an excluded ``""`` would exclude *every* unnamed Conv and leave an "INT8"
    model without a single Q/DQ pair), the DLA placement pins, and TensorRT's layer names, which the
    ONNX parser takes from the node name.

    Example:
        >>> import onnx.helper as h
        >>> g = h.make_graph([h.make_node("Relu", ["x"], ["y"]), h.make_node("Relu", ["y"], ["z"], name="r")],
        ...                  "g", [h.make_tensor_value_info("x", 1, [1])], [h.make_tensor_value_info("z", 1, [1])])
        >>> m = h.make_model(g)
        >>> name_nodes(m), [n.name for n in m.graph.node]
        (1, ['Relu_0', 'r'])
    """
    taken = {n.name for n in model.graph.node if n.name}
    seen: set[str] = set()
    named = 0
    for i, node in enumerate(model.graph.node):
        if node.name and node.name not in seen:
            seen.add(node.name)
            continue
        base = f"{node.op_type}_{i}" if not node.name else f"{node.name}_{i}"
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        node.name = name
        taken.add(name)
        seen.add(name)
        named += 1
    return named


def topological_sort(model: Any) -> None:
    """Reorder graph nodes so every input is produced before use (in place).

    Some converters append their Cast nodes at the end; ONNX Runtime copes, but the checker and
    TensorRT's parser walk nodes in order.
    """
    nodes = list(model.graph.node)
    available = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    ordered, pending = [], nodes
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ModelError("the graph has a cycle or an input that nothing produces",
                             hint="re-export the model; its graph is not a valid DAG")
        ready_ids = {id(n) for n in ready}
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        pending = [n for n in pending if id(n) not in ready_ids]
    del model.graph.node[:]
    model.graph.node.extend(ordered)
