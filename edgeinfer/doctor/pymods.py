"""Probe the Python side: which backends and CUDA bindings import, and how OpenCV was built.

Imports happen here, inside the probe, through :func:`edgeinfer._deps.require` — never at CLI
import time. ``quick=True`` only asks whether a module *could* import (no import at all), which is
what a container HEALTHCHECK wants.

Example:
    >>> probe_module("surely_not_a_module", quick=True)["available"]
    False
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any, Dict, Optional

from .._deps import is_available, require
from ..errors import MissingDependencyError

# module -> distribution whose version to report when the module has no __version__
_DISTRIBUTIONS = {
    "cuda.bindings": ("cuda-bindings", "cuda-python"),
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "tensorrt": ("tensorrt",),
    "jtop": ("jetson-stats",),
}


def distribution_version(*names: str) -> Optional[str]:
    """Installed version of the first distribution found (importlib.metadata; no import of the module)."""
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def findable(name: str) -> bool:
    """Whether ``name`` could import, importing nothing (find_spec of "a.b" would import "a")."""
    top, _, rest = name.partition(".")
    if not rest:
        return is_available(name)
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    locations = list(spec.submodule_search_locations or []) if spec else []
    first = rest.split(".")[0]
    return any((Path(loc) / first).is_dir() or any(Path(loc).glob(first + ".*")) for loc in locations)


def probe_module(name: str, *, quick: bool) -> Dict[str, Any]:
    """{"available", "version", "error", "module"} for ``name``; imports it unless ``quick``."""
    if quick:
        ok = findable(name)
        return {"available": ok, "version": distribution_version(*_DISTRIBUTIONS.get(name, (name,))) if ok else None,
                "error": None if ok else "not installed", "module": None}
    try:
        module = require(name)
    except MissingDependencyError as exc:
        return {"available": False, "version": None, "error": exc.message, "module": None}
    except Exception as exc:  # a broken install (missing .so, ABI clash) must be reported, not crash the doctor
        return {"available": False, "version": None, "error": f"{type(exc).__name__}: {exc}", "module": None}
    version = getattr(module, "__version__", None) or getattr(module, "VERSION_TEXT", None)
    if version is None:
        version = distribution_version(*_DISTRIBUTIONS.get(name, (name,)))
    return {"available": True, "version": str(version) if version else None, "error": None, "module": module}


def onnxruntime_providers(module: Any) -> list:
    try:
        return list(module.get_available_providers())
    except Exception:  # an ORT build without the call is still a usable CPU backend
        return []


def opencv_build(module: Any) -> Dict[str, Any]:
    """GStreamer/FFmpeg on or off and where cv2 was loaded from (pip's wheel vs JetPack's build)."""
    info = module.getBuildInformation()

    def flag(label: str) -> Optional[bool]:
        match = re.search(rf"^\s*{label}:\s*(YES|NO)", info, re.MULTILINE)
        return None if match is None else match.group(1) == "YES"

    return {"version": getattr(module, "__version__", None), "file": getattr(module, "__file__", None),
            "gstreamer": flag("GStreamer"), "ffmpeg": flag("FFMPEG"), "cuda": flag("NVIDIA CUDA")}
