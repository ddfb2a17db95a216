"""On-device runtime: backends (TensorRT, ONNX Runtime), CUDA buffers, pre/post-processing, `load`."""
from __future__ import annotations
