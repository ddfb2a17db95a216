"""FP16 ONNX with FP32 inputs/outputs, for strongly typed TensorRT (11.x has no FP16 builder flag).

TensorRT 11 builds exactly the precisions written in the graph, so "FP16" has to be baked into
the ONNX (TensorRT 11.x migration guide on docs.nvidia.com/deeplearning/tensorrt/: the FP16 builder
flag is gone; FP16 → ModelOpt AutoCast + a strongly typed network). ONNX Runtime's
``onnxruntime.transformers.float16.convert_float_to_float16`` does that with
``keep_io_types=True`` (Casts at the edges), the same converter Ultralytics uses for
``quantize=16``; the I/O stays float32 so the runtime's buffers do not change with precision.

Example:
    >>> make_fp16_onnx("yolo11n.onnx", "yolo11n.fp16.onnx")     # doctest: +SKIP
    PosixPath('yolo11n.fp16.onnx')
"""
from __future__ import annotations

import logging
from pathlib import Path

from .._deps import require
from ..errors import QuantizeError
from ..model.onnx_utils import save_onnx_atomic, topological_sort

log = logging.getLogger(__name__)


def make_fp16_onnx(onnx_path: str | Path, out_path: str | Path) -> Path:
    """Write an FP16 copy of ``onnx_path`` (FP32 I/O kept) to ``out_path``; validated on ONNX Runtime."""
    onnx = require("onnx")
    require("onnxruntime", feature="FP16 conversion")
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(onnx_path))
    try:
        half = convert_float_to_float16(model, keep_io_types=True)
        topological_sort(half)  # the converter appends its input Casts at the end of the node list
        onnx.checker.check_model(half)
    except Exception as exc:
        raise QuantizeError(f"FP16 conversion failed: {str(exc).splitlines()[0][:300]}",
                            hint="package the float (non-Q/DQ) model, or --precision int8 for a model that already carries Q/DQ; "
                                 "TensorRT <= 10 can still build FP16 from the FP32 ONNX with its FP16 flag") from exc
    out = save_onnx_atomic(half, out_path)
    _smoke_run(out)
    log.info("FP16 ONNX written to %s", out)
    return out


def _smoke_run(path: Path) -> None:
    ort = require("onnxruntime")
    np = require("numpy")
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {i.name: np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in i.shape], np.float32)
                 for i in sess.get_inputs()}
        sess.run(None, feeds)
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise QuantizeError(f"the FP16 model does not run on ONNX Runtime: {str(exc).splitlines()[0][:300]}",
                            hint="use --precision fp32 for this model") from exc
