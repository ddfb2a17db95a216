"""Model ingestion: ONNX / Ultralytics .pt → canonical ONNX + ModelInfo.

Example:
    >>> from edgeinfer.model import load_model
    >>> m = load_model("yolo11n.pt", imgsz=640, workdir="build")   # doctest: +SKIP
"""
from __future__ import annotations

from .info import ModelInfo, PreprocessSpec, TensorSpec
from .ingest import IngestedModel, load_model, normalize_imgsz

__all__ = ["IngestedModel", "ModelInfo", "PreprocessSpec", "TensorSpec", "load_model", "normalize_imgsz"]
