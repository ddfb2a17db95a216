"""The only door to optional, heavy and hardware-only imports.

Nothing else in edgeinfer imports cv2, onnx, onnxruntime, torch, ultralytics, tensorrt, pycuda,
cuda-python, paho-mqtt or jtop at module scope: call :func:`require` where the feature is used.
The error names the missing package and the exact install command for *this* machine: a pip
extra on a host, the JetPack package on a Jetson (TensorRT and OpenCV must come from JetPack
there, never from pip). Nothing is ever installed at run time.

Example:
    >>> from edgeinfer._deps import require, is_available
    >>> np = require("numpy")
    >>> is_available("surely_not_a_module_name")
    False
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Dict, Optional

from .errors import MissingDependencyError


@dataclass(frozen=True)
class _Dep:
    pip: str  # the PyPI distribution that provides the module on a host
    extra: Optional[str]  # the edgeinfer extra that pulls it in
    jetson: Optional[str] = None  # how to get it on a Jetson, when pip is the wrong route
    purpose: str = ""


_DEPS: Dict[str, _Dep] = {
    "numpy": _Dep("numpy", None, purpose="arrays"),
    "cv2": _Dep(
        "opencv-python-headless", "runtime",
        jetson="use JetPack's OpenCV (sudo apt install python3-opencv; it has GStreamer) and do not pip-install opencv over it",
        purpose="image and video I/O",
    ),
    "onnx": _Dep("onnx", "host", purpose="ONNX model handling"),
    "onnxruntime": _Dep("onnxruntime", "runtime", purpose="ONNX Runtime inference"),
    "onnxslim": _Dep("onnxslim", "host", purpose="ONNX graph simplification"),
    "torch": _Dep("torch", "export", purpose="Ultralytics .pt export"),
    "ultralytics": _Dep("ultralytics", "export", purpose="Ultralytics .pt export"),
    "tensorrt": _Dep(
        "tensorrt", None,
        jetson="TensorRT comes with JetPack: sudo apt install python3-libnvinfer (it is preinstalled on JetPack images)",
        purpose="TensorRT engine build and execution",
    ),
    "pycuda": _Dep(
        "pycuda", "jetson",
        jetson="pip install 'edgeinfer[jetson]' builds pycuda against JetPack's CUDA (needs /usr/local/cuda/bin on PATH)",
        purpose="CUDA buffers and streams (pycuda)",
    ),
    "cuda.bindings": _Dep("cuda-python", "cuda", purpose="CUDA buffers and streams (cuda-python)"),
    "tensorrt_rtx_bindings": _Dep(
        "tensorrt-rtx-cu13-bindings", "verify",
        jetson="on a Jetson, JetPack's own TensorRT is the parser (sudo apt install python3-libnvinfer); "
               "TensorRT-RTX ships no aarch64 wheels",
        purpose="NVIDIA's ONNX parser and builder on a host without a GPU (TensorRT-RTX)",
    ),
    "cupy": _Dep("cupy-cuda12x", None, purpose="GPU pre-processing through CuPy"),
    "paho.mqtt": _Dep("paho-mqtt", "mqtt", purpose="MQTT uplink"),
    "jtop": _Dep("jetson-stats", "jetson", jetson="sudo pip3 install jetson-stats && sudo jtop --install-service", purpose="Jetson telemetry"),
    "matplotlib": _Dep("matplotlib", "dev", purpose="benchmark plots"),
    "gi": _Dep(
        "PyGObject<3.51", None,
        jetson="sudo apt install python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0 (JetPack's Python has them)",
        purpose="GStreamer through PyGObject (appsink sources, RTSP server output, H.264 files)",
    ),
    "cryptography": _Dep("cryptography", "fleet", purpose="Ed25519 bundle signatures"),
}


def on_jetson() -> bool:
    """True when this machine looks like a Jetson (L4T release file present)."""
    return os.path.exists(os.environ.get("EDGEINFER_TEGRA_RELEASE", "/etc/nv_tegra_release"))


def install_hint(module: str) -> str:
    """The one command (or instruction) that makes ``module`` importable on this machine."""
    dep = _DEPS.get(module)
    if dep is None:
        return f"pip install {module.split('.')[0]}"
    if on_jetson() and dep.jetson:
        return dep.jetson
    if module == "tensorrt":
        return ("TensorRT is only available on a Jetson (JetPack) or an NVIDIA GPU host with TensorRT "
                "installed; on a plain host use the ONNX Runtime backend or build engines on the device")
    if dep.extra == "export":
        # pip's default torch on Linux x86 is the multi-GB CUDA build; a host without a GPU wants the CPU wheels.
        return ("pip install 'edgeinfer[export]' (no NVIDIA GPU here? install the CPU-only torch first: "
                "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu)")
    if dep.extra:
        return f"pip install 'edgeinfer[{dep.extra}]'"
    return f"pip install {dep.pip}"


def is_available(module: str) -> bool:
    """Whether ``module`` could be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, feature: Optional[str] = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` with the install command.

    Args:
        module: dotted import name, e.g. ``"cv2"`` or ``"paho.mqtt.client"``.
        feature: what the caller wanted it for, used in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module if module in _DEPS else _closest_known(module)
        dep = _DEPS.get(top)
        what = feature or (dep.purpose if dep else "this feature")
        raise MissingDependencyError(
            f"'{module}' is needed for {what} but could not be imported ({exc})",
            hint=install_hint(top),
        ) from exc


def _closest_known(module: str) -> str:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in _DEPS:
            return candidate
    return parts[0]
