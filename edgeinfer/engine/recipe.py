"""Build recipes: what `edgeinfer build` will do for one device entry on one JetPack line, and the
exact trtexec command line that does the same by hand.

The packager stores one recipe per JetPack line of each device in the bundle manifest
(``devices.<name>.recipes``) and `edgeinfer inspect` prints them. On JetPack 4 (TensorRT 8.0/8.2,
e.g. Jetson Nano) the trtexec command is the only route: `edgeinfer build` refuses there.

Example:
    >>> recipe = make_build_recipe(
    ...     profile={"name": "orin-nx-16gb", "compute_capability": "8.7", "dla_cores": 2},
    ...     jetpack={"jetpack": "6.2", "l4t": "36.4.3", "tensorrt": "10.3"}, precision="int8",
    ...     artifacts={"onnx": "artifacts/a.onnx", "calib_cache": "artifacts/c.cache"},
    ...     placement={"dla_core": 0}, input_shapes={"images": [1, 3, 320, 320]}, workspace_mb=1024)
    >>> recipe["key"], recipe["dla_core"], recipe["precision_flags"]
    ('jp6.2-trt10.3', 0, ['fp16', 'int8'])
"""
from __future__ import annotations

import shlex
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..errors import BuildError
from . import trt_shim
from .engine_key import engine_key_for, field

RECIPE_SCHEMA = 1
TRTEXEC = "/usr/src/tensorrt/bin/trtexec"
ENGINES_DIR = "engines"
DEFAULT_OPT_LEVEL = 3
PRECISIONS = ("fp32", "fp16", "int8")
# trtexec flags by version, read from samples/common/sampleOptions.cpp on each release/X.Y branch of
# github.com/NVIDIA/TensorRT: --layerDeviceTypes from 8.6 (absent in 8.5); --layerPrecisions and
# --precisionConstraints in 8.5-10.x (gone in 11.x, where precision comes from the ONNX types).
LAYER_DEVICE_TYPES_FROM = (8, 6)


def recipe_key(jetpack: Any) -> str:
    """The manifest key of a recipe: ``"jp6.2-trt10.3"``."""
    return f"jp{field(jetpack, 'jetpack')}-trt{field(jetpack, 'tensorrt')}"


def api_era(trt_version: Tuple[int, int, int]) -> str:
    """"binding" (TRT 8.0/8.2, JetPack 4), "named-io" (8.5-10.x) or "strongly-typed" (11.x)."""
    if trt_version[:2] < trt_shim.MIN_SUPPORTED:
        return "binding"
    return "strongly-typed" if trt_version[0] >= 11 else "named-io"


def placement_dla_core(placement: Mapping[str, Any]) -> Optional[int]:
    """The DLA core a placement plan chose: ``dla_core`` unless ``decision`` is "gpu"; None = GPU.

    (PlacementPlan.to_dict() keeps the DLA candidate's core even when it decides for the GPU.)
    """
    decision = placement.get("decision")
    if isinstance(decision, str) and decision.lower() == "gpu":
        return None
    core = placement.get("dla_core")
    if core is None and isinstance(decision, Mapping):
        core = decision.get("dla_core")
    if core is None or core is False or core in ("gpu", "off"):  # `0 in (False,)` is True: test identity
        return None
    return int(core)


def placement_gpu_pins(placement: Mapping[str, Any]) -> List[str]:
    """Layer names a DLA plan pins to the GPU: ``gpu_layers`` or nodes whose device is "gpu"."""
    if placement.get("gpu_layers"):
        return [str(n) for n in placement["gpu_layers"]]
    nodes = placement.get("nodes") or []
    return [str(n["name"]) for n in nodes if isinstance(n, Mapping) and str(n.get("device", "")).lower() == "gpu"]


def make_build_recipe(*, profile: Any, jetpack: Any, precision: str, artifacts: Mapping[str, str],
                      placement: Mapping[str, Any], input_shapes: Mapping[str, Sequence[int]],
                      workspace_mb: int, dla_core: Any = "plan", strongly_typed: bool = False,
                      dynamic_inputs: Iterable[str] = (), float_layers: Iterable[str] = ()) -> Dict[str, Any]:
    """The build recipe for one device on one JetPack line, as a JSON/YAML-ready dict.

    Args:
        profile: DeviceProfile or its ``to_dict()`` (``name``, ``compute_capability``, ``dla_cores``, ``families``).
        jetpack: JetPackLine or its dict (``jetpack``, ``l4t``, ``tensorrt``).
        precision: "fp32", "fp16" or "int8".
        artifacts: kind -> bundle-relative path ("onnx", "qdq_onnx", "fp16_onnx", "calib_cache").
        placement: PlacementPlan.to_dict(); reads ``dla_core`` (or ``decision.dla_core``) and
            ``gpu_layers`` (or ``nodes[*].device == "gpu"``) for the per-layer GPU pins.
        input_shapes: input name -> static shape.
        workspace_mb: builder workspace pool limit.
        dla_core: "plan" (follow the placement), None (GPU only) or a core number.
        strongly_typed: on TensorRT 10.x build the Q/DQ / FP16 ONNX as a strongly typed network
            (always the case on 11.x).
        dynamic_inputs: ONNX inputs declared with symbolic dims; they get a build profile
            (``--minShapes/--optShapes/--maxShapes``, all = ``input_shapes``). Static inputs get no
            shape flag at all: trtexec refuses one ("Static model does not take explicit shapes",
            samples/common/sampleEngines.cpp, TensorRT 8.5-10.x).
        float_layers: layers the INT8 accuracy gate kept in float (the manifest's
            ``accuracy.excluded_layers``); a weakly typed INT8 build pins them to FP16 with
            ``--layerPrecisions=NAME:fp16 --precisionConstraints=obey`` (TensorRT <= 10.x).

    Returns a dict with: ``schema``, ``key`` ("jp6.2-trt10.3"), ``device``, ``jetpack``, ``l4t``,
    ``tensorrt``, ``compute_capability``, ``api_era`` ("binding"|"named-io"|"strongly-typed"),
    ``supported_by_edgeinfer_build`` (bool) + ``refusal`` (why not, or None), ``precision``,
    ``network`` ("explicit-batch"|"default"|"strongly-typed"), ``onnx`` (the artifact parsed),
    ``calib_cache`` (or None), ``precision_flags`` (e.g. ["fp16", "int8"]), ``dla_core`` (or None),
    ``gpu_fallback``, ``gpu_layers``, ``workspace_mb``, ``builder_optimization_level`` (None before
    8.6), ``profiling_verbosity`` ("detailed"), ``input_shapes``, ``engine_file``, ``layer_info_file``,
    ``timing_cache_file`` (all bundle-relative), ``dynamic_inputs``, ``float_layers`` (the layers
    pinned to FP16 by this recipe; [] where precision lives in the ONNX), ``notes`` (list of str),
    ``edgeinfer_build``, ``import_command`` and ``trtexec`` (command lines; trtexec paths are
    relative to the bundle directory).
    """
    if precision not in PRECISIONS:
        raise BuildError(f"unknown precision {precision!r}", hint=f"use one of {', '.join(PRECISIONS)}")
    version = trt_shim.parse_version(str(field(jetpack, "tensorrt")))
    notes: List[str] = []
    core = _choose_dla_core(profile, jetpack, version, placement, precision, dla_core, notes)
    typed = version[0] >= 11 or (strongly_typed and version[0] >= 10 and core is None)
    onnx, calib, flags = _precision_plan(version, precision, artifacts, typed=typed, dla=core is not None)
    key = engine_key_for(profile=profile, jetpack=jetpack, tensorrt=str(field(jetpack, "tensorrt")),
                         precision=precision, shapes=input_shapes, dla_core=core)
    stem = key.filename()[: -len(".engine")]
    refusal = _refusal(version, onnx)
    pinned_float = sorted(set(float_layers)) if precision == "int8" and not typed and version[0] <= 10 else []
    gpu_layers = placement_gpu_pins(placement) if core is not None else []
    if gpu_layers and version[:2] < LAYER_DEVICE_TYPES_FROM:
        notes.append(f"trtexec {version[0]}.{version[1]} has no --layerDeviceTypes (it arrived in 8.6): the command "
                     f"below does NOT apply the plan's {len(gpu_layers)} GPU pin(s); `edgeinfer build` does")
    recipe: Dict[str, Any] = {
        "schema": RECIPE_SCHEMA, "key": recipe_key(jetpack), "device": str(field(profile, "name")),
        "jetpack": str(field(jetpack, "jetpack")), "l4t": str(field(jetpack, "l4t")),
        "tensorrt": str(field(jetpack, "tensorrt")), "compute_capability": str(field(profile, "compute_capability")),
        "api_era": api_era(version), "supported_by_edgeinfer_build": refusal is None, "refusal": refusal,
        "precision": precision, "network": _network_kind(version, typed), "onnx": onnx, "calib_cache": calib,
        "precision_flags": flags, "dla_core": core, "gpu_fallback": core is not None,
        "gpu_layers": gpu_layers,
        "workspace_mb": int(workspace_mb),
        "builder_optimization_level": DEFAULT_OPT_LEVEL if version[:2] >= (8, 6) else None,
        "profiling_verbosity": "detailed", "input_shapes": {k: list(v) for k, v in key.shapes},
        "engine_file": f"{ENGINES_DIR}/{key.filename()}", "layer_info_file": f"{ENGINES_DIR}/{stem}.layers.json",
        "timing_cache_file": f"{ENGINES_DIR}/timing-trt{key.tensorrt}-sm{key.compute_capability.replace('.', '')}.cache",
        "dynamic_inputs": sorted(set(dynamic_inputs) & set(input_shapes)), "float_layers": pinned_float,
        "notes": notes,
    }
    target = "gpu" if core is None else str(core)
    recipe["edgeinfer_build"] = f"edgeinfer build BUNDLE --device {recipe['device']} --dla-core {target}"
    # trtexec writes into engines/ (every bundle has it) but never records the engine: this does.
    recipe["import_command"] = f"edgeinfer build BUNDLE --device {recipe['device']} --import {recipe['engine_file']}"
    recipe["trtexec"] = trtexec_command(recipe)
    return recipe


def make_build_recipes(*, profile: Any, jetpacks: Optional[Iterable[Any]] = None, **kwargs: Any) -> Dict[str, Dict[str, Any]]:
    """One recipe per JetPack line of ``profile`` (default: all of them), keyed by :func:`recipe_key`."""
    lines = list(jetpacks if jetpacks is not None else field(profile, "jetpacks", ()))
    return {recipe_key(line): make_build_recipe(profile=profile, jetpack=line, **kwargs) for line in lines}


def effective_dla_core(*, profile: Any, jetpack: Any, tensorrt: str, placement: Mapping[str, Any], precision: str,
                       requested: Any = "plan") -> Optional[int]:
    """The DLA core a build for this device and TensorRT really uses (None = GPU): the plan's or
    requested core, unless the module, the precision or this TensorRT rules DLA out."""
    return _choose_dla_core(profile, jetpack, trt_shim.parse_version(tensorrt), placement, precision, requested, [])


def _choose_dla_core(profile: Any, jetpack: Any, version: Tuple[int, int, int], placement: Mapping[str, Any],
                     precision: str, requested: Any, notes: List[str]) -> Optional[int]:
    core = placement_dla_core(placement) if requested == "plan" else requested
    if core is None:
        return None
    core = int(core)
    cores = int(field(profile, "dla_cores", 0) or 0)
    if core >= cores:
        notes.append(f"DLA core {core} requested but {field(profile, 'name')} has {cores} DLA core(s): GPU only")
        return None
    if precision == "fp32":
        notes.append("DLA runs only FP16/INT8: an fp32 build stays on the GPU")
        return None
    reason = trt_shim.dla_support(version, profile_name=str(field(profile, "name")),
                                  families=field(profile, "families", ()) or (), jetpack=str(field(jetpack, "jetpack")))
    if reason:
        notes.append(reason + ": GPU only")
        return None
    return core


def _precision_plan(version: Tuple[int, int, int], precision: str, artifacts: Mapping[str, str], *,
                    typed: bool, dla: bool) -> Tuple[Optional[str], Optional[str], List[str]]:
    """(onnx artifact to parse, calibration cache or None, precision flags)."""
    if typed:  # precision lives in the ONNX tensor types: Q/DQ for INT8, FP16 ONNX for FP16
        kind = {"int8": "qdq_onnx", "fp16": "fp16_onnx", "fp32": "onnx"}[precision]
        return artifacts.get(kind), None, []
    flags = [] if precision == "fp32" else (["fp16"] if precision == "fp16" else ["fp16", "int8"])
    if precision != "int8":
        return artifacts.get("onnx"), None, flags
    if artifacts.get("calib_cache"):
        return artifacts.get("onnx"), artifacts["calib_cache"], flags
    if artifacts.get("qdq_onnx") and not dla:  # explicit quantization with weak typing (8.5-10.x)
        return artifacts["qdq_onnx"], None, flags
    return None, None, flags


def _network_kind(version: Tuple[int, int, int], typed: bool) -> str:
    if typed:
        return "strongly-typed"
    return "explicit-batch" if version[0] <= 8 else "default"


def _refusal(version: Tuple[int, int, int], onnx: Optional[str]) -> Optional[str]:
    if version[:2] < trt_shim.MIN_SUPPORTED:
        return ("JetPack 4 (TensorRT < 8.5): the edgeinfer runtime needs name-based tensor I/O; "
                "build with the trtexec command and use the engine outside edgeinfer, or use ONNX Runtime")
    if onnx is None:
        return "the bundle lacks the ONNX artifact this precision needs on this TensorRT (re-package)"
    return None


def trtexec_command(recipe: Mapping[str, Any]) -> str:
    """The trtexec command line equivalent to ``recipe`` (run it inside the bundle directory).

    Era rules: ``--fp16/--int8/--calib`` only up to 10.x (TensorRT 11 removed them; its precision
    comes from the Q/DQ or FP16 ONNX and ``--stronglyTyped`` is a no-op there, so it is left out);
    ``--stronglyTyped`` on 10.x strongly typed recipes; ``--workspace=N`` before 10.0,
    ``--memPoolSize=workspace:NM`` from 10.0; ``--builderOptimizationLevel`` from 8.6;
    ``--layerDeviceTypes`` from 8.6; ``--layerPrecisions=NAME:fp16 --precisionConstraints=obey``
    for the recipe's ``float_layers`` (8.5-10.x); ``--profilingVerbosity/--exportLayerInfo`` from
    8.2; shapes only for ``dynamic_inputs``, as ``--minShapes/--optShapes/--maxShapes`` (a static
    model given ``--shapes`` is refused by trtexec).

    Example:
        >>> trtexec_command({"tensorrt": "8.6", "onnx": "m.onnx", "engine_file": "m.engine",
        ...     "precision_flags": ["fp16"], "network": "explicit-batch", "workspace_mb": 512})
        '/usr/src/tensorrt/bin/trtexec --onnx=m.onnx --saveEngine=m.engine --fp16 --workspace=512'
    """
    version = trt_shim.parse_version(str(recipe["tensorrt"]))
    args = [TRTEXEC, f"--onnx={recipe['onnx'] or 'MISSING_ONNX_ARTIFACT'}", f"--saveEngine={recipe['engine_file']}"]
    if version[0] <= 10:
        args += [f"--{flag}" for flag in recipe.get("precision_flags") or []]
        if recipe.get("calib_cache"):
            args.append(f"--calib={recipe['calib_cache']}")
        if recipe.get("network") == "strongly-typed":
            args.append("--stronglyTyped")
    if recipe.get("dla_core") is not None:
        args += [f"--useDLACore={int(recipe['dla_core'])}", "--allowGPUFallback"]
        if recipe.get("gpu_layers") and version[:2] >= LAYER_DEVICE_TYPES_FROM:
            args.append("--layerDeviceTypes=" + ",".join(f"{name}:GPU" for name in recipe["gpu_layers"]))
    if recipe.get("float_layers") and version[0] <= 10:
        args += ["--layerPrecisions=" + ",".join(f"{name}:fp16" for name in recipe["float_layers"]),
                 "--precisionConstraints=obey"]
    mb = int(recipe["workspace_mb"])
    args.append(f"--memPoolSize=workspace:{mb}M" if version[0] >= 10 else f"--workspace={mb}")
    if recipe.get("timing_cache_file"):
        args.append(f"--timingCacheFile={recipe['timing_cache_file']}")
    if recipe.get("builder_optimization_level") is not None and version[:2] >= (8, 6):
        args.append(f"--builderOptimizationLevel={int(recipe['builder_optimization_level'])}")
    if version[:2] >= (8, 2) and recipe.get("layer_info_file"):
        args += ["--profilingVerbosity=detailed", f"--exportLayerInfo={recipe['layer_info_file']}"]
    shapes = recipe.get("input_shapes") or {}
    dynamic = [name for name in recipe.get("dynamic_inputs") or [] if name in shapes]
    if dynamic:  # one profile pinned to the keyed shape; inference shapes default to the opt shapes
        profile = ",".join(f"{name}:{'x'.join(map(str, shapes[name]))}" for name in dynamic)
        args += [f"--minShapes={profile}", f"--optShapes={profile}", f"--maxShapes={profile}"]
    return " ".join(shlex.quote(a) for a in args)
