"""`edgeinfer build BUNDLE --import ENGINE`: record an engine built by hand (a recipe's trtexec
command) in the bundle's manifest, keyed like the engines `edgeinfer build` makes, so the
runtime's engine selection finds it.

What the key needs and where it comes from, first found wins:
  * module, L4T/JetPack: ``--device`` / this Jetson's detection, else the engine file name;
  * TensorRT: the FULL version of the TensorRT installed here (the runtime compares it exactly:
    a plan runs only on the TensorRT build that made it), else ``--tensorrt``;
  * DLA core: ``--dla-core``, else the file name (``..._dla0.engine`` / ``..._gpu.engine``),
    else the bundle's placement plan as a build here would use it;
  * precision and input shapes: the file name, else the bundle's entry. An engine whose
    precision, shapes or module contradict the entry is refused: it would never be selected.
Where TensorRT is importable the engine is also deserialized (on its DLA core) and its I/O
shapes and per-layer placement read back with the engine inspector; a plan this TensorRT cannot
load is refused. A missing or empty file, or an Ultralytics ``.engine`` (a JSON metadata header
in front of the plan, which TensorRT cannot read), is refused before anything is written.

Example (on the Jetson, inside the bundle directory):
    >>> records = import_engine(".", "engines/orin-nx-16gb_jp6.2-l4t36.4.3_trt10.3_sm87_int8_"
    ...                         "images-1x3x320x320_dla0.engine")                     # doctest: +SKIP
    >>> records[0]["key"]["tensorrt"]                                             # doctest: +SKIP
    '10.3.0.30'

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import datetime
import json
import logging
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from .._deps import is_available, require
from ..errors import BuildError
from . import trt_shim as shim
from .bundle_build import bundle_input_shapes, resolve_target
from .engine_key import engine_key_for, parse_engine_filename
from .engine_key import field as _field
from .placement_check import compare_placement, node_devices, summarize_layers
from .recipe import effective_dla_core, recipe_key

log = logging.getLogger(__name__)


def import_engine(bundle_path: Union[str, Path], engine_file: Union[str, Path], *, device: str = "auto",
                  dla_core: Any = None, tensorrt: Optional[str] = None, trt: Any = None,
                  detected: Any = None) -> List[Dict[str, Any]]:
    """Copy ``engine_file`` into the bundle's engines/ under its key name and record it; returns
    the engine records added. ``dla_core``: None (file name, else plan), "gpu" or a core number.
    ``tensorrt``: the full TensorRT version, needed only where TensorRT is not importable.
    Raises BuildError (nothing written) for a missing/empty/unreadable engine or a contradiction."""
    src = Path(engine_file)
    _check_file(src)
    from ..bundle import open_bundle

    bundle = open_bundle(bundle_path)
    if trt is None and is_available("tensorrt"):
        trt = require("tensorrt", feature="reading TensorRT engines")
    found = parse_engine_filename(src.name, input_names=[t.name for t in bundle.model_info.inputs])
    if detected is None:
        detected = _detect_quietly()
    if device == "auto" and detected is None and found.get("module") in bundle.devices:
        device = found["module"]  # not on a Jetson: the recipe's file name says which entry it was built for
    target = resolve_target(bundle, device=device, detected=detected)
    entry = bundle.device(target.name)
    if found.get("module") not in (None, target.name):
        raise BuildError(f"{src.name} was built for {found['module']}, not {target.name}",
                         hint=f"pass --device {found['module']} (it must be in the bundle), or import the right engine")
    full = _full_version(trt, tensorrt, found, src.name)
    jetpack = dict(target.jetpack)
    on_device = detected is not None and str(_field(_field(detected, "profile"), "name")) == target.name
    if not on_device:  # the runtime compares L4T with the device's: the file name knows it, the bundle guesses
        jetpack.update({k: found[k] for k in ("jetpack", "l4t") if k in found})
    shapes = _shapes(bundle, entry, found, src.name)
    precision = _precision(entry, found, src.name)
    core = _dla_core(dla_core, found, entry, jetpack, full)
    key = engine_key_for(profile=target.profile, jetpack=jetpack, tensorrt=full, precision=precision,
                         shapes=shapes, dla_core=core)
    record: Dict[str, Any] = {
        "key": key.to_dict(), "recipe": recipe_key(dict(jetpack, tensorrt=".".join(full.split(".")[:2]))),
        "tensorrt_version": full, "built_at": None, "settings": {"source": "imported"},
        "imported": {"file": src.name, "at": _now(), "checked_with_tensorrt": trt is not None},
    }
    if trt is not None:
        record.update(_inspect(trt, src, core, shapes, entry.placement))
    workdir = Path(tempfile.mkdtemp(prefix="edgeinfer-import-"))
    try:
        staged = workdir / key.filename()
        staged.symlink_to(src.resolve())  # add_engine copies the content; no second full copy here
        bundle.add_engine(target.name, staged, record)
    finally:
        shutil.rmtree(str(workdir), ignore_errors=True)
    return [e for e in bundle.device(target.name).engines if e.get("path", "").endswith(key.filename())]


def _detect_quietly() -> Any:
    from ..errors import EdgeInferError
    from ..profiles import detect_current_device

    try:
        return detect_current_device()
    except EdgeInferError as exc:
        log.info("device detection failed: %s", exc)
        return None


def _check_file(src: Path) -> None:
    if not src.is_file():
        raise BuildError(f"engine file {src} does not exist",
                         hint="build it first with the recipe's trtexec command (`edgeinfer inspect BUNDLE` prints it)")
    size = src.stat().st_size
    if size == 0:
        raise BuildError(f"engine file {src} is empty (an interrupted or failed trtexec run)",
                         hint="run the trtexec command again and check that it ends with 'PASSED'")
    with open(str(src), "rb") as fh:
        head = fh.read(4096)
    if _ultralytics_header(head):
        raise BuildError(f"{src.name} is an Ultralytics .engine (a JSON metadata header before the TensorRT plan)",
                         hint="build the plan with the bundle's trtexec recipe instead: TensorRT cannot load "
                              "Ultralytics' header (ultralytics PR #16449)")


def _ultralytics_header(head: bytes) -> bool:
    """Ultralytics writes int32 little-endian length + JSON metadata + plan (ultralytics/utils/export/engine.py)."""
    if len(head) < 6 or head[4:5] != b"{":
        return False
    length = struct.unpack("<i", head[:4])[0]
    return 0 < length <= len(head) - 4 and _is_json(head[4:4 + length])


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def _full_version(trt: Any, given: Optional[str], found: Dict[str, Any], name: str) -> str:
    if trt is not None:
        running = shim.version_text(trt)
        if given and given != running:
            raise BuildError(f"--tensorrt {given} but TensorRT {running} is installed here",
                             hint="drop --tensorrt on the device: the installed version is used")
        named = found.get("tensorrt")
        if named and shim.parse_version(named)[:2] != shim.parse_version(running)[:2]:
            raise BuildError(f"{name} was built with TensorRT {named}, but this device runs {running}",
                             hint="rebuild it here with the recipe for this JetPack line")
        return running
    version = given or found.get("tensorrt")
    if not version or len(str(version).split(".")) < 4:
        raise BuildError(f"cannot tell the full TensorRT version of {name} (TensorRT is not installed here"
                         + (f"; the name only says {version}" if version else "") + ")",
                         hint="pass --tensorrt with the device's full version, e.g. --tensorrt 10.3.0.30 "
                              "(python3 -c 'import tensorrt; print(tensorrt.__version__)' on the device)")
    shim.parse_version(str(version))
    return str(version)


def _shapes(bundle: Any, entry: Any, found: Dict[str, Any], name: str) -> Dict[str, Any]:
    wanted = {k: list(v) for k, v in bundle_input_shapes(bundle, entry).items()}
    named = found.get("shapes")
    if named is not None and named != wanted:
        raise BuildError(f"{name} was built for input shapes {named}, the bundle runs {wanted}",
                         hint="the runtime would never select it: rebuild with the bundle's recipe")
    return wanted


def _precision(entry: Any, found: Dict[str, Any], name: str) -> str:
    named = found.get("precision")
    if named is not None and named != entry.precision:
        raise BuildError(f"{name} is a {named} engine, the bundle's entry for {entry.name} is {entry.precision}",
                         hint=f"the runtime selects {entry.precision} engines only: re-package with "
                              f"--precision {named}, or build with this bundle's recipe")
    return str(entry.precision)


def _dla_core(requested: Any, found: Dict[str, Any], entry: Any, jetpack: Dict[str, Any], full: str) -> Optional[int]:
    if requested is not None:
        return None if requested == "gpu" else int(requested)
    if "dla_core" in found:
        return found["dla_core"]
    return effective_dla_core(profile=entry.profile, jetpack=jetpack, tensorrt=full, placement=entry.placement,
                              precision=entry.precision)


def _inspect(trt: Any, src: Path, core: Optional[int], shapes: Dict[str, Any], placement: Dict[str, Any]) -> Dict[str, Any]:
    """Deserialize with this TensorRT; check the input shapes; read per-layer placement."""
    logger = shim.make_logger(trt)
    mark = logger.mark()
    try:
        engine = shim.deserialize(trt, logger, src.read_bytes(), dla_core=core)
    except BuildError as exc:
        detail = "; ".join(logger.errors_since(mark)[-2:]) or exc.message
        raise BuildError(f"TensorRT {shim.version_text(trt)} cannot load {src.name}: {detail}",
                         hint="an engine runs only on the TensorRT and GPU that built it: rebuild it here") from exc
    io = shim.io_tensors(trt, engine)
    inputs = {name: list(shape) for name, mode, shape in io if mode == "input"}
    if inputs != shapes:
        raise BuildError(f"{src.name} has inputs {inputs}, the bundle runs {shapes}",
                         hint="build it from this bundle's ONNX with its recipe")
    layer_info = json.loads(shim.engine_layer_json(trt, engine))
    order = [str(n["name"]) for n in placement.get("nodes") or [] if isinstance(n, dict) and "name" in n]
    actual = node_devices(layer_info, node_order=order, dla_core=core)
    comparison = compare_placement(placement, actual)
    return {"io": [{"name": n, "mode": m, "shape": list(s)} for n, m, s in io],
            "device_memory_bytes": int(shim.device_memory_size(trt, engine)),
            "placement": {"layers": summarize_layers(layer_info, dla_core=core), "nodes": actual,
                          "planned": comparison["planned"], "actual": comparison["actual"],
                          "differences": comparison["differences"], "not_reported": comparison["not_reported"]}}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
