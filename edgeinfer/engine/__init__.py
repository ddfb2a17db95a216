"""TensorRT engine building on the device: version shims, build recipes, engine keys and selection.

Importing this package never imports TensorRT; only :func:`build_engines` (and selection with
``build_on_load=True``) need it. Device-side code: Python 3.8-clean.

Example:
    >>> from edgeinfer.engine import trtexec_command
    >>> trtexec_command({"tensorrt": "10.3", "onnx": "m.onnx", "engine_file": "m.engine",
    ...                  "precision_flags": ["fp16"], "workspace_mb": 1024})
    '/usr/src/tensorrt/bin/trtexec --onnx=m.onnx --saveEngine=m.engine --fp16 --memPoolSize=workspace:1024M'
"""
from __future__ import annotations

import importlib
from typing import Any

from . import trt_shim
from .engine_key import EngineKey, EngineRecord, engine_key_for
from .recipe import make_build_recipe, make_build_recipes, recipe_key, trtexec_command

_LAZY = {
    "select_engine": "selection",
    "build_engines": "bundle_build",
    "build_engine": "builder",
    "import_engine": "engine_import",
}

__all__ = ["EngineKey", "EngineRecord", "build_engine", "build_engines", "engine_key_for", "import_engine", "make_build_recipe",
           "make_build_recipes", "recipe_key", "select_engine", "trt_shim", "trtexec_command"]


def __getattr__(name: str) -> Any:
    # builder/selection pull in the bundle reader and profiles; keep `import edgeinfer.engine` light.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
