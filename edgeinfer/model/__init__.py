"""Model ingestion: ONNX / Ultralytics .pt → canonical ONNX + ModelInfo.

``ModelInfo`` and friends are light and device-side (bundles carry them). Ingestion is host-only
(onnx, onnxslim, Ultralytics; Python 3.10+), so it loads on first use: reading a bundle on a
Jetson imports ``edgeinfer.model.info`` without pulling the ingestion modules in.

Example:
    >>> from edgeinfer.model import load_model
    >>> m = load_model("yolo11n.pt", imgsz=640, workdir="build")   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

from .info import ModelInfo, PreprocessSpec, TensorSpec

_HOST_ONLY = {"IngestedModel", "load_model", "normalize_imgsz"}

__all__ = ["IngestedModel", "ModelInfo", "PreprocessSpec", "TensorSpec", "load_model", "normalize_imgsz"]


def __getattr__(name: str) -> Any:
    if name in _HOST_ONLY:
        from . import ingest

        return getattr(ingest, name)
    raise AttributeError(f"module 'edgeinfer.model' has no attribute {name!r}")
