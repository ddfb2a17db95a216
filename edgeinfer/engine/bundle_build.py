"""`edgeinfer build`: build the engine a bundle's device entry asks for, on the device, and add it
to the bundle with its key, settings and the actual DLA/GPU placement next to the plan.

Example (on a Jetson with TensorRT):
    >>> from edgeinfer.engine import build_engines
    >>> records = build_engines("shapes.bundle", device="auto")           # doctest: +SKIP
    >>> records[0]["key"]["dla_core"], records[0]["placement"]["differences"]   # doctest: +SKIP
    (0, [])
"""
from __future__ import annotations

import datetime
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from .._deps import require
from ..errors import BuildError
from . import trt_shim as shim
from .builder import BuildSpec, build_engine, describe_io, write_plan
from .engine_key import engine_key_for, field
from .int8_report import check_int8_engine, int8_report
from .placement_check import compare_placement, node_devices, summarize_layers
from .recipe import make_build_recipe, recipe_key

log = logging.getLogger(__name__)
DEFAULT_WORKSPACE_MB = 1024


@dataclass(frozen=True)
class Target:
    """The device entry to build for and the JetPack line actually running."""

    name: str
    profile: Dict[str, Any]
    jetpack: Dict[str, Any]


def resolve_target(bundle: Any, *, device: str = "auto", detected: Any = None) -> Target:
    """Pick the bundle's device entry: the detected Jetson for "auto", else the named profile."""
    if device == "auto":
        if detected is None:
            from ..profiles import detect_current_device

            detected = detect_current_device()
        if detected is None:
            raise BuildError("cannot tell which Jetson module this is (no /etc/nv_tegra_release or unknown model)",
                             hint=f"pass --device NAME, one of: {', '.join(bundle.devices)}")
        device = str(field(field(detected, "profile"), "name"))
    entry = bundle.device(device)
    jetpack = dict(entry.jetpack)
    if detected is not None and str(field(field(detected, "profile"), "name")) == device:
        line = field(detected, "jetpack")
        if line is not None:
            jetpack = dict(line.to_dict() if hasattr(line, "to_dict") else line)
        jetpack["l4t"] = str(field(detected, "l4t") or jetpack.get("l4t"))
    return Target(name=device, profile=dict(entry.profile), jetpack=jetpack)


def bundle_input_shapes(bundle: Any, entry: Any) -> Dict[str, Tuple[int, ...]]:
    """Static input shapes: from the entry's recipes, else from the model's (static) inputs."""
    for recipe in (entry.recipes or {}).values():
        if isinstance(recipe, Mapping) and recipe.get("input_shapes"):
            return {str(k): tuple(int(d) for d in v) for k, v in recipe["input_shapes"].items()}
    shapes = {}
    for spec in bundle.model_info.inputs:
        if not all(isinstance(d, int) and d > 0 for d in spec.shape):
            raise BuildError(f"input {spec.name!r} has a dynamic shape {spec.shape} and the bundle has no build recipe",
                             hint="re-package with a fixed --imgsz and --batch")
        shapes[spec.name] = tuple(spec.shape)
    return shapes


def default_timing_cache(tensorrt: str, compute_capability: str) -> Path:
    """Per-user timing cache shared by builds of the same TensorRT and SM (tactic timings, not engines).

    ``tensorrt`` is the FULL version ("10.3.0.30"): a cache is only valid for the exact TensorRT
    build that wrote it, so another patch release gets its own file instead of a stale one.
    """
    root = Path(os.environ.get("EDGEINFER_CACHE_DIR", "~/.cache/edgeinfer")).expanduser()
    return root / "timing" / f"timing-trt{tensorrt}-sm{compute_capability.replace('.', '')}.cache"


def build_engines(bundle_path: Union[str, Path], *, device: str = "auto", dla_core: Any = None,
                  timing_cache: Optional[Union[str, Path]] = None, trt: Any = None, detected: Any = None) -> List[Dict[str, Any]]:
    """Build the engine for this device into the bundle; returns the engine records added.

    Args:
        bundle_path: bundle directory or .tar.
        device: "auto" (detect this Jetson) or a profile name present in the bundle.
        dla_core: None = follow the bundle's placement plan, "gpu" = GPU only, or a DLA core number.
        timing_cache: persistent tactic timing cache file (default: ~/.cache/edgeinfer/timing/...).
    Raises MissingDependencyError without TensorRT (nothing is written), BuildError when the
    build is impossible here (JetPack 4, no DLA on this TensorRT, missing artifact, TensorRT error).
    """
    trt = trt if trt is not None else require("tensorrt", feature="building TensorRT engines")
    shim.check_supported(trt)
    from ..bundle import open_bundle

    bundle = open_bundle(bundle_path)
    target = resolve_target(bundle, device=device, detected=detected)
    entry = bundle.device(target.name)
    version = shim.version_tuple(trt)
    running = dict(target.jetpack, tensorrt=f"{version[0]}.{version[1]}")
    recipe = _recipe_for(bundle, entry, target, running, dla_core)
    spec = _spec_from(bundle, recipe, timing_cache, tensorrt_full=shim.version_text(trt))
    log.info("building %s for %s (TensorRT %s, %s, DLA core %s)", recipe["onnx"], target.name,
             shim.version_text(trt), entry.precision, recipe["dla_core"])
    result = build_engine(spec, trt=trt)
    key = engine_key_for(profile=target.profile, jetpack=running, tensorrt=result.tensorrt_version,
                         precision=entry.precision, shapes=recipe["input_shapes"], dla_core=recipe["dla_core"])
    record = _record(key, recipe, result, entry.placement)
    if entry.precision == "int8":  # what really runs INT8; refuse an engine that is not what was planned
        record["int8"] = int8_report(result.layer_info, cache_plan=(entry.calibration or {}).get("cache_plan"),
                                     node_order=[str(n.get("name")) for n in entry.placement.get("nodes") or []], dla_core=key.dla_core,
                                     calibration_cache=bool(recipe.get("calib_cache")))
        check_int8_engine(record["int8"], device=target.name)
    workdir = Path(tempfile.mkdtemp(prefix="edgeinfer-build-"))
    try:
        bundle.add_engine(target.name, write_plan(workdir / key.filename(), result.plan), record)
    finally:
        shutil.rmtree(str(workdir), ignore_errors=True)
    added = [e for e in bundle.device(target.name).engines if e.get("path", "").endswith(key.filename())]
    return added


def _recipe_for(bundle: Any, entry: Any, target: Target, running: Dict[str, Any], dla_core: Any) -> Dict[str, Any]:
    stored = (entry.recipes or {}).get(recipe_key(running)) or next(iter((entry.recipes or {}).values()), {}) or {}
    workspace = stored.get("workspace_mb") or field(field(target.profile, "defaults", {}), "workspace_mb") or DEFAULT_WORKSPACE_MB
    requested = "plan" if dla_core is None else (None if dla_core == "gpu" else int(dla_core))
    recipe = make_build_recipe(profile=target.profile, jetpack=running, precision=entry.precision,
                               artifacts=entry.artifacts, placement=entry.placement,
                               input_shapes=bundle_input_shapes(bundle, entry), workspace_mb=int(workspace),
                               dla_core=requested, strongly_typed=stored.get("network") == "strongly-typed",
                               dynamic_inputs=stored.get("dynamic_inputs") or (),
                               float_layers=float_layers(entry))
    if recipe["refusal"]:
        raise BuildError(f"cannot build for {target.name} on TensorRT {running['tensorrt']}: {recipe['refusal']}",
                         hint=f"build by hand: {recipe['trtexec']}")
    if isinstance(requested, int) and recipe["dla_core"] is None:
        raise BuildError(f"DLA core {requested} cannot be used here: {'; '.join(recipe['notes'])}",
                         hint="pass --dla-core gpu")
    return recipe


def _spec_from(bundle: Any, recipe: Mapping[str, Any], timing_cache: Optional[Union[str, Path]], *,
               tensorrt_full: str) -> BuildSpec:
    root = Path(bundle.root)
    cache = Path(timing_cache) if timing_cache else default_timing_cache(tensorrt_full, recipe["compute_capability"])
    return BuildSpec(
        onnx_path=root / recipe["onnx"], precision=recipe["precision"],
        input_shapes={k: tuple(v) for k, v in recipe["input_shapes"].items()}, workspace_mb=int(recipe["workspace_mb"]),
        calib_cache=root / recipe["calib_cache"] if recipe.get("calib_cache") else None,
        strongly_typed=recipe["network"] == "strongly-typed", dla_core=recipe["dla_core"],
        gpu_fallback=bool(recipe["gpu_fallback"]), gpu_layers=tuple(recipe.get("gpu_layers") or ()),
        opt_level=recipe.get("builder_optimization_level"), timing_cache=cache,
        float_layers=tuple(recipe.get("float_layers") or ()),
    )


def float_layers(entry: Any) -> List[str]:
    """Layers the INT8 accuracy gate kept in float, as the packager records them
    (``accuracy.excluded_layers`` of the device entry)."""
    accuracy = entry.accuracy if isinstance(entry.accuracy, Mapping) else {}
    return [str(name) for name in accuracy.get("excluded_layers") or []]


def _record(key: Any, recipe: Mapping[str, Any], result: Any, placement: Mapping[str, Any]) -> Dict[str, Any]:
    order = [str(n["name"]) for n in placement.get("nodes") or [] if isinstance(n, Mapping) and "name" in n]
    actual = node_devices(result.layer_info, node_order=order, dla_core=key.dla_core)
    comparison = compare_placement(placement, actual)
    return {
        "key": key.to_dict(), "recipe": recipe["key"], "tensorrt_version": result.tensorrt_version,
        "built_at": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "build_seconds": round(result.seconds, 3), "settings": result.settings, "onnx": recipe["onnx"],
        "io": describe_io(result.io), "device_memory_bytes": int(result.device_memory_bytes),
        "placement": {"layers": summarize_layers(result.layer_info, dla_core=key.dla_core), "nodes": actual,
                      "planned": comparison["planned"], "actual": comparison["actual"],
                      "differences": comparison["differences"], "not_reported": comparison["not_reported"]},
    }
