"""edgeinfer: take vision models (YOLO first, any ONNX model) to fleets of NVIDIA Jetson devices.

``import edgeinfer`` is light: it never imports cv2, torch, onnxruntime, tensorrt or CUDA
bindings. The heavy parts load on first use.

Example:
    >>> import edgeinfer
    >>> edgeinfer.__version__
    '0.1.0'
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Public names resolved lazily (PEP 562) so that importing the package stays cheap.
_LAZY = {
    "load": ("edgeinfer.runtime.model", "load"),
    "Model": ("edgeinfer.runtime.model", "Model"),
    "Detections": ("edgeinfer.runtime.detections", "Detections"),
    "Pipeline": ("edgeinfer.pipeline.pipeline", "Pipeline"),
    "Uplink": ("edgeinfer.uplink.uplink", "Uplink"),
    "DeviceProfile": ("edgeinfer.profiles.profile", "DeviceProfile"),
    "get_profile": ("edgeinfer.profiles.registry", "get_profile"),
    "resolve_devices": ("edgeinfer.profiles.registry", "resolve_devices"),
    "detect_current_device": ("edgeinfer.profiles.detect", "detect_current_device"),
    "EdgeInferError": ("edgeinfer.errors", "EdgeInferError"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'edgeinfer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(list(globals()) + list(_LAZY))
