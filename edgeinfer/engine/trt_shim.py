"""Every TensorRT version difference edgeinfer cares about, in one module.

The rest of edgeinfer never writes a version check: it asks this module. Each function takes the
imported ``tensorrt`` module as its first argument (so tests can pass a stand-in generated from
the API table) and never imports TensorRT itself.

Version-specific code sits in functions decorated with :func:`requires_trt`. The decorator is
both the runtime guard (calling the function on a TensorRT outside the range raises
:class:`~edgeinfer.errors.BuildError` through :func:`fail_unavailable`) and the marker the
static contract checker (tests/engine/trt_contract.py) reads: names used inside a decorated
function only have to exist in the TensorRT versions of that range. Write the arguments as
literals (``min="8.6"``, ``max_major=10``) so the checker can read them.

Supported: TensorRT 8.5 and 8.6 (JetPack 5.1 / 6.0), 10.x (JetPack 6.1+ / 7.x), 11.x (strongly
typed only). JetPack 4 (TensorRT 8.0 / 8.2) is refused: the runtime needs the name-based tensor
I/O that arrived in 8.5. Nano users build with the emitted trtexec command instead
(see docs/build.md).

Example:
    >>> class FakeTrt: __version__ = "10.3.0.30"
    >>> version_tuple(FakeTrt)
    (10, 3, 0)
    >>> has_precision_flags(FakeTrt), has_calibrator(FakeTrt), has_optimization_level(FakeTrt)
    (True, True, True)
"""
from __future__ import annotations

import functools
import logging
import re
from typing import Any, Callable, Iterable, Optional, Tuple, TypeVar

from ..errors import BuildError
from .trt_logger import make_logger  # noqa: F401 - the shim is where callers look for it

log = logging.getLogger(__name__)

MIN_SUPPORTED = (8, 5)
F = TypeVar("F", bound=Callable[..., Any])
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Tuple[int, int, int]:
    """``"10.3.0.30"`` -> ``(10, 3, 0)``; BuildError for text that is not a version."""
    match = _VERSION_RE.match(str(text).strip())
    if not match:
        raise BuildError(f"cannot read a TensorRT version from {text!r}",
                         hint="reinstall TensorRT from JetPack (sudo apt install python3-libnvinfer)")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def version_tuple(trt: Any) -> Tuple[int, int, int]:
    """The running TensorRT's version as ``(major, minor, patch)``."""
    return parse_version(getattr(trt, "__version__", ""))


def version_text(trt: Any) -> str:
    """The full version string, e.g. ``"10.3.0.30"``."""
    return str(trt.__version__)


def fail_unavailable(feature: str, version: str, *, hint: Optional[str] = None) -> None:
    """Raise BuildError: ``feature`` does not exist in TensorRT ``version``."""
    raise BuildError(f"{feature} is not available in TensorRT {version}",
                     hint=hint or "see docs/build.md ('TensorRT versions') for what each version supports")


def in_range(version: Tuple[int, int, int], *, min: Optional[str] = None,  # noqa: A002 - mirrors the marker
             max_major: Optional[int] = None, max: Optional[str] = None) -> bool:  # noqa: A002
    """Whether ``version`` lies in ``[min, max]`` (both inclusive on major.minor) and major <= max_major."""
    major_minor = version[:2]
    if min is not None and major_minor < parse_version(min)[:2]:
        return False
    if max is not None and major_minor > parse_version(max)[:2]:
        return False
    return max_major is None or version[0] <= max_major


def requires_trt(*, feature: str, min: Optional[str] = None,  # noqa: A002
                 max_major: Optional[int] = None, max: Optional[str] = None) -> Callable[[F], F]:  # noqa: A002
    """Mark a shim function as existing only for TensorRT versions in a range, and enforce it.

    The decorated function's first argument must be the ``tensorrt`` module. The static checker
    reads ``min``/``max``/``max_major`` from the decorator, so pass literals.

    Example:
        >>> @requires_trt(feature="FP16/INT8 builder flags", max_major=10)
        ... def set_fp16(trt, config): config.set_flag(trt.BuilderFlag.FP16)
    """
    def decorate(func: F) -> F:
        @functools.wraps(func)
        def guarded(trt: Any, *args: Any, **kwargs: Any) -> Any:
            if not in_range(version_tuple(trt), min=min, max_major=max_major, max=max):
                fail_unavailable(feature, version_text(trt))
            return func(trt, *args, **kwargs)

        guarded.trt_range = {"min": min, "max": max, "max_major": max_major}  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


# ---------------------------------------------------------------- support and feature predicates

def check_supported(trt: Any) -> None:
    """Refuse TensorRT older than 8.5 (JetPack 4: Nano, TX2, Xavier on JP4) with the manual route."""
    if version_tuple(trt)[:2] < MIN_SUPPORTED:
        raise BuildError(
            f"TensorRT {version_text(trt)} (JetPack 4) is not supported by `edgeinfer build`: the edgeinfer "
            "runtime needs name-based tensor I/O, which TensorRT has from 8.5 (JetPack 5.1)",
            hint="build by hand with the trtexec command that `edgeinfer inspect BUNDLE` prints, "
                 "or run the bundle's ONNX with the ONNX Runtime backend",
        )


def has_precision_flags(trt: Any) -> bool:
    """BuilderFlag.FP16/INT8 exist (TensorRT <= 10.x; removed in 11 where networks are strongly typed)."""
    return version_tuple(trt)[0] <= 10


def has_calibrator(trt: Any) -> bool:
    """Implicit INT8 through a calibrator / calibration cache (TensorRT <= 10.x)."""
    return version_tuple(trt)[0] <= 10


def has_strongly_typed(trt: Any) -> bool:
    """NetworkDefinitionCreationFlag.STRONGLY_TYPED exists (TensorRT >= 9, so 10.x and 11.x here)."""
    return version_tuple(trt)[0] >= 10


def always_strongly_typed(trt: Any) -> bool:
    """TensorRT 11 removed weak typing: every network is strongly typed."""
    return version_tuple(trt)[0] >= 11


def has_optimization_level(trt: Any) -> bool:
    """IBuilderConfig.builder_optimization_level exists (TensorRT >= 8.6)."""
    return version_tuple(trt)[:2] >= (8, 6)


def dla_support(trt_version: Tuple[int, int, int], *, profile_name: str, families: Iterable[str],
                jetpack: str, dla_cores: int = 1) -> Optional[str]:
    """None when this TensorRT can put layers on DLA for this device, else the reason it cannot.

    The rule itself lives in :func:`edgeinfer.profiles.dla.dla_unsupported_reason`, shared with
    static placement so a plan never promises a DLA the build refuses.
    """
    from ..profiles.dla import dla_unsupported_reason

    return dla_unsupported_reason(trt_version, profile_name=profile_name, families=families,
                                  dla_cores=dla_cores, jetpack=jetpack)


def check_dla_available(trt: Any) -> None:
    """Refuse DLA on TensorRT 11.0-11.3, which has none whatever the device (11.4's AGX-Orin-only
    rule needs the device profile and is applied where the device is known: recipes, build_engines)."""
    major, minor = version_tuple(trt)[:2]
    if major == 11 and minor < 4:
        fail_unavailable("DLA", version_text(trt), hint="pass --dla-core gpu; DLA returns in TensorRT 11.4 on AGX Orin")


def _jetpack_tuple(text: str) -> Tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", str(text))[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


# ---------------------------------------------------------------- network and parser

def network_flags(trt: Any, *, strongly_typed: bool) -> int:
    """Creation flags: EXPLICIT_BATCH on 8.x, 0 on 10.x, STRONGLY_TYPED when asked (10.x) or always (11.x)."""
    major = version_tuple(trt)[0]
    if major <= 8:
        if strongly_typed:
            fail_unavailable("strongly typed networks", version_text(trt),
                             hint="use TensorRT >= 10 or build with FP16/INT8 flags")
        return _explicit_batch_flag(trt)
    if strongly_typed or always_strongly_typed(trt):
        return _strongly_typed_flag(trt)
    return 0


@requires_trt(feature="NetworkDefinitionCreationFlag.EXPLICIT_BATCH", max_major=8)
def _explicit_batch_flag(trt: Any) -> int:
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


@requires_trt(feature="NetworkDefinitionCreationFlag.STRONGLY_TYPED", min="10.0")
def _strongly_typed_flag(trt: Any) -> int:
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def parser_errors(parser: Any) -> str:
    """All ONNX parser errors as one '; '-joined string."""
    return "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))


# ---------------------------------------------------------------- builder config

def set_workspace(trt: Any, config: Any, workspace_mb: int) -> None:
    """Workspace limit through the memory-pool API (present in every supported version, 8.4+);
    the old ``max_workspace_size`` attribute is gone in 10.x, so it is never used."""
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)


@requires_trt(feature="BuilderFlag.FP16/INT8 (weakly typed precision)", max_major=10)
def set_precision_flags(trt: Any, config: Any, precision: str) -> None:
    """FP16 for "fp16"; INT8 + FP16 for "int8" (layers without INT8 kernels fall back to FP16, not FP32)."""
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)


@requires_trt(feature="INT8 calibrators (implicit quantization)", max_major=10)
def set_calibrator(trt: Any, config: Any, calibrator: Any) -> None:
    """Attach an INT8 calibrator (deprecated in 10.1, removed in 11)."""
    config.int8_calibrator = calibrator


@requires_trt(feature="builder optimization level", min="8.6")
def set_optimization_level(trt: Any, config: Any, level: int) -> None:
    """0-5; 3 is TensorRT's default."""
    config.builder_optimization_level = int(level)


def set_detailed_profiling(trt: Any, config: Any) -> None:
    """DETAILED verbosity so the engine inspector reports every layer with its type and tactic."""
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED


def configure_dla(trt: Any, builder: Any, config: Any, *, dla_core: int, gpu_fallback: bool = True) -> None:
    """Default device DLA on ``dla_core``; layers DLA cannot run go to the GPU when ``gpu_fallback``."""
    available = int(builder.num_DLA_cores)
    if dla_core < 0 or dla_core >= available:
        raise BuildError(f"DLA core {dla_core} requested but this device has {available} DLA core(s)",
                         hint="pass --dla-core gpu, or a core number below " + str(available))
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = int(dla_core)
    if gpu_fallback:
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def pin_layers_to_gpu(trt: Any, network: Any, config: Any, names: Iterable[str]) -> Tuple[str, ...]:
    """Set DeviceType.GPU on the network layers named in ``names``; returns the names pinned."""
    wanted = set(names)
    pinned = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.name in wanted:
            config.set_device_type(layer, trt.DeviceType.GPU)
            pinned.append(layer.name)
    return tuple(pinned)


@requires_trt(feature="per-layer precision with OBEY_PRECISION_CONSTRAINTS (weakly typed networks)", max_major=10)
def pin_layers_fp16(trt: Any, network: Any, config: Any, names: Iterable[str]) -> Tuple[str, ...]:
    """Run the layers named in ``names`` in FP16 and make TensorRT obey it (an INT8 build would
    otherwise be free to pick INT8 for layers the accuracy gate kept out of INT8). Same effect
    as trtexec ``--layerPrecisions=NAME:fp16 --precisionConstraints=obey``; returns the names set."""
    wanted = set(names)
    pinned = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.name in wanted:
            layer.precision = trt.DataType.HALF
            pinned.append(layer.name)
    if pinned:
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    return tuple(pinned)


def add_static_profile(builder: Any, network: Any, config: Any, shapes: dict) -> bool:
    """Add one optimization profile min=opt=max=``shapes`` when an input is dynamic; False if all static."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if all(all(int(d) >= 0 for d in tensor.shape) for tensor in inputs):
        return False
    profile = builder.create_optimization_profile()
    for tensor in inputs:
        shape = shapes.get(tensor.name)
        if shape is None:
            raise BuildError(f"network input {tensor.name!r} is dynamic but the bundle records no shape for it",
                             hint="re-package with a fixed --imgsz/--batch")
        profile.set_shape(tensor.name, tuple(shape), tuple(shape), tuple(shape))
    config.add_optimization_profile(profile)
    return True


# ---------------------------------------------------------------- timing cache

def attach_timing_cache(config: Any, data: bytes) -> Any:
    """Create a timing cache from ``data`` (b"" for a fresh one) and attach it to ``config``.

    A stale or corrupt file must never fail a build: TensorRT returns no cache (or raises) for
    bytes it cannot read, and refuses (False) one from another device/TensorRT. Either way the
    build starts from an empty cache, which the save afterwards replaces. (Cache files are also
    named by the full TensorRT version, see bundle_build.default_timing_cache, so another
    TensorRT's file is not even opened.)
    """
    cache = _create_timing_cache(config, data) if data else None
    # ignore_mismatch=False: a cache from another device/TensorRT is refused rather than half-used.
    if cache is not None and config.set_timing_cache(cache, False):
        return cache
    if data:
        log.warning("the timing cache could not be used (corrupt, or from another device/TensorRT); starting a new one")
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)
    return cache


def _create_timing_cache(config: Any, data: bytes) -> Any:
    try:
        return config.create_timing_cache(data)
    except (RuntimeError, TypeError, ValueError) as exc:  # pybind11 turns TensorRT's refusal into these
        log.debug("create_timing_cache refused the file: %s", exc)
        return None


def serialize_timing_cache(config: Any) -> bytes:
    """The timing cache after a build, as bytes to persist."""
    cache = config.get_timing_cache()
    return bytes(cache.serialize())


# ---------------------------------------------------------------- engine

def deserialize(trt: Any, logger: Any, plan: bytes, *, dla_core: Optional[int]) -> Any:
    """Deserialize ``plan``; the runtime's DLA core is set first when the engine uses DLA."""
    runtime = trt.Runtime(logger)
    if dla_core is not None:
        runtime.DLA_core = int(dla_core)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise BuildError("TensorRT could not deserialize the engine it just built",
                         hint="run with -v to see TensorRT's log")
    return engine


def engine_layer_json(trt: Any, engine: Any) -> str:
    """The engine inspector's JSON (needs ProfilingVerbosity.DETAILED at build for full layer info)."""
    inspector = engine.create_engine_inspector()
    return str(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


def io_tensors(trt: Any, engine: Any) -> Tuple[Tuple[str, str, Tuple[int, ...]], ...]:
    """Name-based I/O (8.5+): ``(name, "input"|"output", shape)`` per tensor."""
    result = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
        result.append((name, mode, tuple(int(d) for d in engine.get_tensor_shape(name))))
    return tuple(result)


def device_memory_size(trt: Any, engine: Any) -> int:
    """Activation memory the engine needs: ``device_memory_size_v2`` from 10.1 (it is not in 10.0's
    bindings: NVIDIA/TensorRT python/src/infer/pyCore.cpp, release/10.0 vs release/10.1), the old
    ``device_memory_size`` before (removed in 11)."""
    if version_tuple(trt)[:2] >= (10, 1):
        return _device_memory_v2(trt, engine)
    return _device_memory_v1(trt, engine)


@requires_trt(feature="ICudaEngine.device_memory_size_v2", min="10.1")
def _device_memory_v2(trt: Any, engine: Any) -> int:
    return int(engine.device_memory_size_v2)


@requires_trt(feature="ICudaEngine.device_memory_size", max="10.0")
def _device_memory_v1(trt: Any, engine: Any) -> int:
    return int(engine.device_memory_size)


def trt_version_code(version: Tuple[int, int, int]) -> int:
    """NV_TENSORRT_VERSION as written in calibration-cache headers: 8502 for 8.5.2, 100300 for 10.3.0."""
    major, minor, patch = version
    if major < 10:
        return major * 1000 + minor * 100 + patch
    return major * 10000 + minor * 100 + patch


@requires_trt(feature="INT8 calibrators (implicit quantization)", max_major=10)
def make_cache_calibrator(trt: Any, cache: bytes, *, algorithm: str = "entropy2") -> Any:
    """A calibrator that only READS ``cache``: it never feeds batches, so TensorRT takes every scale
    from the cache (and fails the build, rather than calibrating on nothing, if one is missing).

    The class is defined here, inside the function, so importing edgeinfer never touches TensorRT.
    ``algorithm`` must match the cache header ("entropy2" or "minmax"), or TensorRT rejects it.
    """
    base = trt.IInt8MinMaxCalibrator if algorithm == "minmax" else trt.IInt8EntropyCalibrator2

    class CacheOnlyCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self, data: bytes) -> None:
            base.__init__(self)  # pybind11 trampolines need the base __init__ called explicitly
            self.cache = bytes(data)
            self.cache_reads = 0

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: Any) -> None:
            return None  # no data: calibration must come from the cache

        def read_calibration_cache(self) -> bytes:
            self.cache_reads += 1
            return self.cache

        def write_calibration_cache(self, cache: Any) -> None:
            log.debug("TensorRT offered %d bytes of calibration cache; the bundle's cache is kept", len(cache))

    return CacheOnlyCalibrator(cache)
