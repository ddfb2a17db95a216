"""INT8/FP16 made on the host without TensorRT: calibration data, ranges, TensorRT calibration cache,
Q/DQ ONNX, FP16 ONNX, accuracy report and the accuracy-budget gate.

Heavy modules (onnx, onnxruntime, cv2) are imported inside the functions, so importing this
package is cheap.

Example:
    >>> from edgeinfer.quantize import write_trt_calibration_cache
    >>> write_trt_calibration_cache({"images": 1.0}, trt_version="10.3").splitlines()[0]
    'TRT-100300-EntropyCalibration2'
"""
from __future__ import annotations

from .accuracy import AccuracyReport, evaluate_accuracy
from .cache_ranges import CacheRanges, cache_ranges_for
from .calib_cache import TrtCalibrationCache, parse_trt_calibration_cache, write_trt_calibration_cache
from .calibration import load_calibration_images
from .fp16 import make_fp16_onnx
from .gate import QuantizeResult, quantize_with_budget
from .qdq import QdqResult, decode_nodes, make_qdq_onnx
from .ranges import compute_ranges

__all__ = [
    "AccuracyReport", "CacheRanges", "QdqResult", "cache_ranges_for", "QuantizeResult", "evaluate_accuracy", "make_fp16_onnx", "quantize_with_budget", "TrtCalibrationCache", "compute_ranges", "decode_nodes", "load_calibration_images",
    "make_qdq_onnx", "parse_trt_calibration_cache", "write_trt_calibration_cache",
]
