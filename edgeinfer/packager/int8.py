"""INT8 and FP16 artifacts for a bundle, made once and shared by every device that can use them.

INT8: calibration images are loaded and calibrated ONCE; the Q/DQ ONNX (explicit quantization:
TensorRT 10 GPU, TensorRT 11) is made once; a TensorRT calibration cache (implicit quantization:
DLA on JetPack 5/6, GPU on 8.x) is written per TensorRT version, because its header carries the
version. With a validation set the accuracy budget decides which layers stay in float.

Example:
    >>> a = make_int8_artifacts(model, calib="data/val", method="entropy", val=None, budget=None,
    ...                         trt_versions={"10.3"}, work=Path("work"), progress=None)   # doctest: +SKIP
    >>> sorted(a.caches)                                                                    # doctest: +SKIP
    ['10.3']
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import QuantizeError

MAX_CALIB_IMAGES = 256


@dataclass(frozen=True)
class Int8Artifacts:
    qdq_path: Path
    caches: dict[str, Path]  # TensorRT version -> calibration cache file
    report: dict[str, Any]  # accuracy report (AccuracyReport.to_dict() or {"measured": False})
    calibration: dict[str, Any]  # method, image count, data digest, source
    excluded: list[str] = field(default_factory=list)


def make_int8_artifacts(model: Any, *, calib: Any, method: str, val: Any, budget: float | None,
                        trt_versions: Iterable[str], work: Path, progress: Callable[[str, int, int], None] | None
                        ) -> Int8Artifacts:
    """Calibrate once, then write the Q/DQ ONNX and one calibration cache per TensorRT version."""
    from .. import quantize as q

    data = q.load_calibration_images(calib, model.info, max_images=MAX_CALIB_IMAGES, progress=progress)
    if len(data) == 0:
        raise QuantizeError(f"calibration set {calib} holds no images", hint="point --calib at a folder of images")
    calibration = {"method": method, "images": int(len(data)), "source": Path(str(calib)).name,
                   "data_sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    ranges = q.compute_ranges(model.onnx_path, data, method=method, progress=progress)
    out = work / "int8"
    out.mkdir(parents=True, exist_ok=True)
    if val is not None:
        result = q.quantize_with_budget(model.onnx_path, out / "model.int8.qdq.onnx", ranges=ranges, info=model.info,
                                        val=val, budget=budget, progress=progress)
        qdq_path, report, excluded = Path(result.qdq_path), result.report.to_dict(), list(result.excluded_layers)
        report["measured"] = True
    else:
        qdq = q.make_qdq_onnx(model.onnx_path, out / "model.int8.qdq.onnx", ranges=ranges, info=model.info)
        qdq_path, excluded = Path(qdq.path), list(qdq.excluded)
        report = {"measured": False, "note": "no --val set given: accuracy not measured"}
    caches = {}
    for version in sorted(set(trt_versions)):
        path = out / f"calib-trt{version}.cache"
        path.write_text(q.write_trt_calibration_cache(ranges, trt_version=version, method=method))
        caches[version] = path
    return Int8Artifacts(qdq_path=qdq_path, caches=caches, report=report, calibration=calibration, excluded=excluded)


def make_fp16_artifact(model: Any, work: Path) -> Path:
    """FP16 ONNX (FP32 I/O kept) for strongly typed TensorRT builds (11.x, or 10.x with --stronglyTyped)."""
    from .. import quantize as q

    out = work / "fp16"
    out.mkdir(parents=True, exist_ok=True)
    return Path(q.make_fp16_onnx(model.onnx_path, out / "model.fp16.onnx"))
