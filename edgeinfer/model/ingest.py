"""Model ingestion: any ``.onnx`` or an Ultralytics ``.pt`` → one validated, simplified, shape-fixed ONNX + ModelInfo.

Steps: validate (onnx.checker) → export (.pt only, offline, opset ≤ 17 by default because the
TensorRT 8.5/8.6 parsers of JetPack 5/6.0 accept ≤ 17) → fix batch/H/W (static by default; DLA
needs static shapes; ``dynamic=True`` keeps symbolic dims) → shape inference → onnxslim →
name unnamed nodes →
checker again → write atomically into ``workdir`` → describe it (ModelInfo: layout, names,
pre-processing).

Resizing rules: a ``.pt`` is re-exported at any ``imgsz``; an ONNX with dynamic H/W gets them
fixed by setting the input dims and re-running shape inference; an ONNX whose *static* size
differs from ``imgsz`` is refused, because reshapes inside a static graph bake the size in.

Example:
    >>> m = load_model("yolo11n.pt", imgsz=640, workdir="build/")      # doctest: +SKIP
    >>> m.info.output_layout, m.info.imgsz, m.onnx_path.name            # doctest: +SKIP
    ('yolov8', (640, 640), 'yolo11n.onnx')
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._deps import require
from ..errors import ConfigError, ModelError
from . import onnx_utils as ou
from .info import ModelInfo, PreprocessSpec
from .layout import (
    describe_input,
    detect_layout,
    input_layout,
    is_ultralytics,
    parse_bool,
    parse_imgsz,
    parse_names,
    static_hw,
)
from .ultralytics_export import export_ultralytics

logger = logging.getLogger(__name__)

DEFAULT_PT_OPSET = ou.MAX_PORTABLE_OPSET
_ULTRALYTICS_SUFFIXES = (".pt", ".yaml", ".yml")


@dataclass(frozen=True)
class IngestedModel:
    """The canonical ONNX written by :func:`load_model` and what it is."""

    onnx_path: Path
    info: ModelInfo
    source_sha256: str
    log: list[str] = field(default_factory=list)


def normalize_imgsz(imgsz: Any) -> tuple[int, int] | None:
    """``None``, ``640``, ``(h, w)`` or the CLI strings ``"640"`` / ``"WxH"`` → ``(h, w)`` or None.

    Example:
        >>> normalize_imgsz("640x480"), normalize_imgsz(320), normalize_imgsz((384, 640))
        ((480, 640), (320, 320), (384, 640))
    """
    if imgsz is None:
        return None
    if isinstance(imgsz, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", imgsz)
        if not m:
            raise ConfigError(f"bad image size {imgsz!r}", hint="use N (square) or WxH, e.g. 640 or 640x384")
        w = int(m.group(1))
        h = int(m.group(2)) if m.group(2) else w
        hw = (h, w)
    elif isinstance(imgsz, int):
        hw = (imgsz, imgsz)
    elif isinstance(imgsz, (tuple, list)) and len(imgsz) == 2:
        hw = (int(imgsz[0]), int(imgsz[1]))
    else:
        raise ConfigError(f"bad image size {imgsz!r}", hint="use an int or an (h, w) pair")
    if min(hw) <= 0 or max(hw) > 8192:
        raise ConfigError(f"image size {hw} out of range", hint="use sizes between 1 and 8192")
    return hw


def load_model(path: str | Path, *, imgsz: Any = None, batch: int = 1, dynamic: bool = False,
               opset: int | None = None, preprocess: Any = None, workdir: str | Path) -> IngestedModel:
    """Ingest an ``.onnx`` or Ultralytics ``.pt``; see the module docstring for every step.

    Args:
        path: ``.onnx`` file, Ultralytics ``.pt`` (or a model ``.yaml`` such as ``yolo11n.yaml``: random weights).
        imgsz: N or (h, w); required for an ONNX with dynamic H/W and no ``imgsz`` metadata.
        batch: static batch size (ignored with ``dynamic=True``).
        dynamic: keep symbolic dims (GPU engines with optimisation profiles; never DLA).
        opset: target opset; default 17 for ``.pt`` exports, unchanged for ONNX.
        preprocess: declared pre-processing overriding what is read from the model: a PreprocessSpec, a
            mapping or the CLI text (``"imagenet resize=stretch"``, see PreprocessSpec.updated).
        workdir: where the canonical ONNX is written.

    Example:
        >>> load_model("model.onnx", imgsz=(384, 640), workdir="out").info.imgsz   # doctest: +SKIP
        (384, 640)
    """
    path = Path(path)
    hw = normalize_imgsz(imgsz)
    if not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"batch must be a positive integer, got {batch!r}", hint="use --batch 1 (or more)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    if preprocess is not None:
        PreprocessSpec().updated(preprocess)  # a bad declaration fails before minutes of export

    def note(msg: str) -> None:
        logger.info(msg)
        lines.append(msg)

    is_pt = path.suffix.lower() in _ULTRALYTICS_SUFFIXES
    if is_pt:
        model, sha = _from_ultralytics(path, hw=hw, batch=batch, dynamic=dynamic, opset=opset, workdir=workdir, note=note)
    else:
        sha = ou.sha256_file(path) if path.is_file() else ""
        model = ou.load_onnx(path)
        note(f"loaded {path.name}: opset {ou.opset_of(model)}, {len(model.graph.node)} nodes, sha256 {sha[:12]}")
        model = _convert_opset(model, opset, note)
        model = _fix_onnx_shapes(model, hw=hw, batch=batch, dynamic=dynamic, preprocess=preprocess, note=note)
        before = len(model.graph.node)
        model = ou.simplify(ou.infer_shapes(model))
        note(f"simplified with onnxslim: {before} -> {len(model.graph.node)} nodes")
    model = ou.infer_shapes(model)
    renamed = ou.name_nodes(model)
    if renamed:
        note(f"named {renamed} unnamed or duplicate-named node(s) (Q/DQ exclusions, DLA pins and TensorRT layers go by name)")
    if not dynamic:
        ou.fill_output_shapes_by_running(model)
    ou.check(model, "ingestion")
    if ou.opset_of(model) > ou.MAX_PORTABLE_OPSET:
        note(f"warning: opset {ou.opset_of(model)} > {ou.MAX_PORTABLE_OPSET}: TensorRT 8.5/8.6 (JetPack 5/6.0) "
             f"cannot parse it; re-export with opset={ou.MAX_PORTABLE_OPSET} for those devices")
    out_path = workdir / f"{path.stem}.onnx"
    if path.exists() and out_path.resolve() == path.resolve():  # never overwrite the user's source file
        out_path = workdir / f"{path.stem}.ingested.onnx"
    ou.save_onnx_atomic(model, out_path)
    info = describe(model, source=("ultralytics:" if is_pt else "") + path.name, note=note, preprocess=preprocess)
    note(f"wrote {out_path}")
    return IngestedModel(onnx_path=out_path, info=info, source_sha256=sha, log=lines)


def _from_ultralytics(path: Path, *, hw, batch, dynamic, opset, workdir, note) -> tuple[Any, str]:
    if not path.is_file() and path.suffix.lower() == ".pt":
        raise ModelError(f"model file not found: {path}",
                         hint="give the path of a .pt on disk (edgeinfer never downloads weights)")
    if path.is_file():
        sha = ou.sha256_file(path)
    else:  # a model .yaml shipped inside Ultralytics (random weights): hash its name
        sha = hashlib.sha256(path.name.encode()).hexdigest()
    target_opset = opset or DEFAULT_PT_OPSET
    note(f"exporting {path.name} with Ultralytics (opset {target_opset}, imgsz {hw or 'model default'}, "
         f"batch {batch}, dynamic {dynamic})")
    onnx_file, export_lines = export_ultralytics(path, imgsz=hw, batch=batch, dynamic=dynamic,
                                                 opset=target_opset, workdir=workdir)
    for ln in export_lines:
        if "export success" in ln or "starting export" in ln or "slimming" in ln:
            note("ultralytics: " + re.sub(r"\x1b\[[0-9;]*m", "", ln).strip())
    try:
        model = ou.load_onnx(onnx_file)
    finally:
        onnx_file.unlink(missing_ok=True)
    return model, sha


def _convert_opset(model: Any, opset: int | None, note) -> Any:
    current = ou.opset_of(model)
    if opset is None or opset == current:
        return model
    onnx = require("onnx")
    try:
        converted = onnx.version_converter.convert_version(model, int(opset))
    except Exception as exc:
        raise ModelError(f"cannot convert the model from opset {current} to {opset}: {str(exc).splitlines()[0][:200]}",
                         hint=f"re-export the model with opset {opset} from its framework") from exc
    note(f"converted opset {current} -> {opset}")
    return converted


def _fix_onnx_shapes(model: Any, *, hw, batch: int, dynamic: bool, preprocess: Any, note) -> Any:
    inputs = ou.graph_inputs(model)
    meta = ou.metadata(model)
    dims: dict[str, list[int | str]] = {}
    for index, inp in enumerate(inputs):
        shape = ou.tensor_spec(inp).shape
        new = list(shape)
        if shape and not dynamic:
            new[0] = _fix_batch(inp.name, shape[0], batch)
        if index == 0 and len(shape) == 4:
            spec, _ = describe_input(shape, meta, graph_hint=graph_layout(model, inp.name), declared=preprocess)
            at = (2, 3) if spec.layout == "NCHW" else (1, 2)
            new[at[0]], new[at[1]] = _fix_hw(inp.name, [shape[at[0]], shape[at[1]]], hw,
                                             parse_imgsz(meta.get("imgsz")), dynamic)
        if not dynamic and not all(isinstance(d, int) for d in new):
            raise ModelError(f"input {inp.name!r} has dynamic dims {shape} that edgeinfer cannot fix by itself",
                             hint="export the model with static shapes, or pass dynamic=True (--dynamic) for GPU-only engines")
        if new != shape:
            dims[inp.name] = new
            note(f"input {inp.name}: {shape} -> {new}")
    if dims:
        ou.set_input_dims(model, dims)
    return model


def _fix_batch(name: str, current: Any, batch: int) -> int:
    if isinstance(current, int):
        if current != batch:
            raise ModelError(f"input {name!r} has a static batch of {current}, not {batch}",
                             hint=f"use batch={current}, or export the model with a dynamic batch axis")
        return current
    return batch


def _fix_hw(name: str, shape: list, hw, meta_hw, dynamic: bool) -> tuple[Any, Any]:
    """``shape`` is the input's [height, width] (whatever the layout)."""
    h, w = shape
    static = isinstance(h, int) and isinstance(w, int)
    if static:
        if hw and (h, w) != hw:
            raise ModelError(
                f"input {name!r} is fixed at {h}x{w} (h x w) but imgsz {hw[0]}x{hw[1]} was asked",
                hint="a static ONNX cannot be resized safely: drop imgsz, pass the .pt, or re-export at that size",
            )
        return h, w
    if dynamic and not hw:
        return h, w
    target = hw or meta_hw
    if not target:
        raise ModelError(f"input {name!r} has dynamic height/width {shape}",
                         hint="pass imgsz (e.g. --imgsz 640 or 640x384) to fix them, or dynamic=True to keep them")
    return target


_PASS_THROUGH = {"Cast", "Mul", "Add", "Sub", "Div", "Identity", "Clip", "Relu", "Sqrt", "Neg"}


def graph_layout(model: Any, input_name: str, *, max_nodes: int = 16) -> str | None:
    """NCHW/NHWC as the graph itself says: follow the input through element-wise ops to the first node that
    fixes an axis order. ``Transpose(perm=[0,3,1,2])`` (what tf2onnx/keras2onnx put in front of the first
    Conv) means NHWC; a ``Conv`` (always NCHW in ONNX) or ``Transpose(perm=[0,2,3,1])`` means NCHW; None if unclear.

    Example:
        >>> import onnx.helper as h                                     # doctest: +SKIP
        >>> graph_layout(onnx.load("onet.onnx"), "input_3")             # doctest: +SKIP
        'NHWC'
    """
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    frontier, seen = [input_name], 0
    while frontier and seen < max_nodes:
        name = frontier.pop(0)
        for node in consumers.get(name, []):
            seen += 1
            if node.op_type in ("Conv", "ConvTranspose"):
                return "NCHW"
            if node.op_type == "Transpose":
                perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), [])
                return {(0, 3, 1, 2): "NHWC", (0, 2, 3, 1): "NCHW"}.get(tuple(perm))
            if node.op_type in _PASS_THROUGH:
                frontier.extend(node.output)
    return None


def describe(model: Any, *, source: str, note=None, preprocess: Any = None) -> ModelInfo:
    """ModelInfo for an ONNX model: I/O specs, layout, names, pre-processing (Ultralytics metadata when present,
    the input layout read from the graph, then what ``preprocess`` declares)."""
    meta = ou.metadata(model)
    inputs, outputs = ou.io_specs(model)
    names = parse_names(meta.get("names"))
    first = inputs[0] if inputs else None
    shape = first.shape if first is not None else []
    spec, how = describe_input(shape, meta, graph_hint=graph_layout(model, first.name) if first else None,
                               declared=preprocess)
    imgsz = static_hw(shape, spec.layout) or parse_imgsz(meta.get("imgsz"))
    task, layout = detect_layout([o.shape for o in outputs], imgsz=imgsz, names=names,
                                 end2end=parse_bool(meta.get("end2end")), task=meta.get("task"))
    if layout == "centerface" and not names:
        names = {0: "face"}
    if task == "detect" and not names and layout in ("yolov8", "yolov5"):
        nc = outputs[0].shape[1] - 4 if layout == "yolov8" else outputs[0].shape[2] - 5
        names = {i: str(i) for i in range(int(nc))}
    if note:
        note(f"layout {layout} (task {task}, {len(names)} classes), {how}")
    return ModelInfo(inputs=inputs, outputs=outputs, task=task, output_layout=layout, names=names, preprocess=spec,
                     opset=ou.opset_of(model), source=source, metadata=meta)


__all__ = ["IngestedModel", "load_model", "describe", "graph_layout", "input_layout", "normalize_imgsz", "is_ultralytics"]
