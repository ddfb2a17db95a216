"""Pick the bundle's engine that matches the running device, or refuse and say how to build it.

Never rebuilds silently: a mismatch raises EngineMismatchError naming what differs and the exact
`edgeinfer build` command. With ``build_on_load=True`` (opt-in, used by ``edgeinfer.load`` at
start-up) the missing engine is built once under an exclusive file lock, so two processes
starting together cannot both build: the second waits, re-reads the bundle and uses the first's
engine. The lock is ``fcntl.flock`` (Linux, i.e. every Jetson).

Example:
    >>> record = select_engine(open_bundle("shapes.bundle"), device=None)    # doctest: +SKIP
    >>> record.path.name                                                     # doctest: +SKIP
    'orin-nx-16gb_jp6.2-l4t36.4.3_trt10.3.0.30_sm87_int8_images-1x3x320x320_dla0.engine'
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

from ..errors import EngineMismatchError
from . import trt_shim as shim
from .engine_key import EngineKey, EngineRecord, field, normalize_shapes
from .recipe import effective_dla_core, placement_dla_core

log = logging.getLogger(__name__)
LOCK_SUFFIX = ".engines.lock"


def select_engine(bundle: Any, *, device: Any = None, dla_core: Any = None, tensorrt_version: Optional[str] = None,
                  build_on_load: bool = False, timing_cache: Any = None, trt: Any = None) -> EngineRecord:
    """The engine in ``bundle`` built for this device, TensorRT, precision, shapes and DLA core.

    Args:
        device: a DetectedDevice (None: detect this machine).
        dla_core: None = the bundle's plan, "gpu" = GPU engine, or a DLA core number.
        tensorrt_version: the running TensorRT's full version (``trt.__version__``); without it
            only major.minor of the device's JetPack line is compared.
        build_on_load: build the missing engine once, under a file lock (needs TensorRT).
    """
    detected = device if device is not None else _detect()
    try:
        return _find(bundle, detected, dla_core, tensorrt_version)
    except EngineMismatchError:
        if not build_on_load:
            raise
    from ..bundle import open_bundle
    from .bundle_build import build_engines

    location = Path(bundle.archive or bundle.root)
    with build_lock(location):
        fresh = open_bundle(location)  # another process may have built it while we waited
        try:
            return _find(fresh, detected, dla_core, tensorrt_version)
        except EngineMismatchError:
            log.warning("no matching engine in %s: building one now (start-up only)", location)
        build_engines(location, device=str(field(field(detected, "profile"), "name")), dla_core=dla_core,
                      timing_cache=timing_cache, trt=trt, detected=detected)
        return _find(open_bundle(location), detected, dla_core, tensorrt_version)


@contextlib.contextmanager
def build_lock(bundle_location: Path) -> Iterator[Path]:
    """Exclusive ``fcntl.flock`` on ``.<bundle>.engines.lock`` beside the bundle; blocks until free."""
    import fcntl

    lock_path = bundle_location.parent / f".{bundle_location.name}{LOCK_SUFFIX}"
    with open(str(lock_path), "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield lock_path
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _detect() -> Any:
    from ..profiles import detect_current_device

    found = detect_current_device()
    if found is None:
        raise EngineMismatchError("this machine is not a recognised Jetson, so no TensorRT engine in the bundle can match it",
                                  hint="run the bundle with backend='onnxruntime' (or `edgeinfer run --backend onnxruntime`)")
    return found


def _wanted(bundle: Any, detected: Any, dla_core: Any, tensorrt_version: Optional[str]) -> Tuple[Any, dict]:
    profile = field(detected, "profile")
    name = str(field(profile, "name"))
    entry = bundle.device(name) if name in bundle.devices else None
    if entry is None:
        raise EngineMismatchError(f"the bundle has no entry for this device ({name}; it has {', '.join(bundle.devices)})",
                                  hint=f"re-package with `edgeinfer package MODEL --device {name}`")
    core = placement_dla_core(entry.placement) if dla_core is None else (None if dla_core == "gpu" else int(dla_core))
    line = field(detected, "jetpack")
    trt_wanted = tensorrt_version or (str(field(line, "tensorrt")) if line is not None else None)
    if dla_core is None and core is not None and trt_wanted:  # the plan's core, as a build here would use it
        jetpack = line if line is not None else entry.jetpack
        core = effective_dla_core(profile=entry.profile, jetpack=jetpack, tensorrt=trt_wanted,
                                  placement=entry.placement, precision=entry.precision)
    from .bundle_build import bundle_input_shapes

    wanted = {"module": name, "l4t": str(field(detected, "l4t")), "tensorrt": trt_wanted,
              "compute_capability": str(field(profile, "compute_capability")), "precision": entry.precision,
              "shapes": normalize_shapes(bundle_input_shapes(bundle, entry)), "dla_core": core}
    return entry, wanted


def _mismatches(key: EngineKey, wanted: dict) -> List[str]:
    problems = []
    for name in ("module", "l4t", "compute_capability", "precision", "shapes", "dla_core"):
        if getattr(key, name) != wanted[name]:
            problems.append(f"{name} {_show(getattr(key, name))} != this device's {_show(wanted[name])}")
    trt_wanted = wanted["tensorrt"]
    if trt_wanted is not None:  # `trt` always names the tensorrt module (the contract checker relies on it)
        parts = len(trt_wanted.split("."))
        same = (key.tensorrt == trt_wanted if parts >= 4 else
                shim.parse_version(key.tensorrt)[:parts] == shim.parse_version(trt_wanted)[:parts])
        if not same:
            problems.append(f"TensorRT {key.tensorrt} != this device's {trt_wanted}")
    return problems


def _show(value: Any) -> str:
    if value is None:
        return "gpu"
    if isinstance(value, tuple):
        return ",".join(f"{n}:{'x'.join(map(str, d))}" for n, d in value)
    return str(value)


def _find(bundle: Any, detected: Any, dla_core: Any, tensorrt_version: Optional[str]) -> EngineRecord:
    entry, wanted = _wanted(bundle, detected, dla_core, tensorrt_version)
    closest: Optional[Tuple[str, List[str]]] = None
    for record in entry.engines:
        key = EngineKey.from_dict(record["key"])
        problems = _mismatches(key, wanted)
        if not problems:
            return EngineRecord(path=Path(bundle.root) / record["path"], key=key, record=dict(record), bundle=bundle)
        if closest is None or len(problems) < len(closest[1]):
            closest = (str(record.get("path")), problems)
    target = "gpu" if wanted["dla_core"] is None else str(wanted["dla_core"])
    command = f"edgeinfer build {bundle.archive or bundle.root} --device {wanted['module']} --dla-core {target}"
    if closest is None:
        message = f"the bundle has no TensorRT engine for {wanted['module']} yet"
    else:
        message = f"no engine in the bundle matches this device: {closest[0]} differs ({'; '.join(closest[1])})"
    raise EngineMismatchError(message, hint=f"build it on this device with `{command}`")
