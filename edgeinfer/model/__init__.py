"""Model ingestion: ONNX / Ultralytics .pt → canonical ONNX + ModelInfo."""
from __future__ import annotations

from .info import ModelInfo, PreprocessSpec, TensorSpec

__all__ = ["ModelInfo", "PreprocessSpec", "TensorSpec"]
