"""INT8 and FP16 artifacts for a bundle, made once and shared by every device that can use them.

INT8: calibration images are loaded and calibrated ONCE (edgeinfer.quantize.quantize_with_budget:
ranges, Q/DQ ONNX with the most sensitive Convs kept in float until the accuracy budget holds,
accuracy report); the Q/DQ ONNX (explicit quantization: TensorRT 10 GPU, TensorRT 11) is shared;
a TensorRT calibration cache (implicit quantization: DLA on JetPack 5/6, GPU on 8.x) is written
per TensorRT version from the same ranges, because its header carries the version.

Example:
    >>> a = make_int8_artifacts(model, calib="data/val", method="percentile", val=None, budget=None,
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

MAX_CALIB_IMAGES = 256
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Int8Artifacts:
    qdq_path: Path
    caches: dict[str, Path]  # TensorRT version -> calibration cache file
    report: dict[str, Any]  # accuracy report + budget criterion, attempts, float-kept layers
    calibration: dict[str, Any]  # method, image count, data digest, source
    excluded: list[str] = field(default_factory=list)


def make_int8_artifacts(model: Any, *, calib: Any, method: str, val: Any, budget: float | None,
                        trt_versions: Iterable[str], work: Path, accept_unmeasured: bool = False,
                        dla_nodes: Iterable[str] = (), fp16_onnx: Path | None = None,
                        progress: Progress | None = None) -> Int8Artifacts:
    """Calibrate once, quantize under the budget, and write one calibration cache per TensorRT version.

    Raises QuantizeError (from edgeinfer.quantize) for an empty/unreadable calibration set or a
    budget INT8 cannot meet.
    """
    from .. import quantize as q

    data = q.load_calibration_images(calib, model.info, max_images=MAX_CALIB_IMAGES, progress=progress)
    calibration = {"method": method, "images": int(len(data)), "source": Path(str(calib)).name,
                   "data_sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    out = work / "int8"
    out.mkdir(parents=True, exist_ok=True)
    result = q.quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=out, val=val, method=method,
                                    budget=budget, accept_unmeasured=accept_unmeasured, fp16_onnx=fp16_onnx,
                                    progress=progress)
    caches = {}
    # head and float-kept layers out, DLA equal-range groups unified (edgeinfer.quantize.cache_ranges)
    plan = q.cache_ranges_for(result.ranges, model.onnx_path, float_layers=result.excluded_layers, dla_nodes=dla_nodes)
    cache_ranges = plan.ranges
    calibration["float_layers"] = len(result.excluded_layers)
    calibration["cache_plan"] = plan.to_dict()
    for version in sorted(set(trt_versions)):
        path = out / f"calib-trt{version}.cache"
        # EntropyCalibration2 whatever the range method: the header only picks the calibrator class
        # that reads the cache (the scales are ours), and it is the one DLA requires
        # (NvInfer.h, TensorRT 10.3: IInt8EntropyCalibrator2 "is the required calibrator for DLA").
        path.write_text(q.write_trt_calibration_cache(cache_ranges, trt_version=version, method=method,
                                                      algorithm="EntropyCalibration2"))
        caches[version] = path
    report = dict(result.report.to_dict(), measured=result.measured, criterion=result.criterion,
                  thresholds=dict(result.thresholds), warnings=list(result.warnings),
                  excluded_layers=list(result.excluded_layers), attempts=list(result.attempts))
    if not result.measured:
        report["note"] = "; ".join(result.warnings)
    return Int8Artifacts(qdq_path=Path(result.qdq_path), caches=caches, report=report, calibration=calibration,
                         excluded=list(result.excluded_layers))


def _without_float_layers(ranges: dict[str, float], onnx_path: Path, float_layers: list[str]) -> dict[str, float]:
    """Ranges minus the outputs of the layers the accuracy gate kept in float.

    The Q/DQ ONNX keeps those layers float by leaving their Q/DQ out; an implicit-INT8 build
    (calibration cache: DLA, TensorRT 8.x) has no such marker, but TensorRT runs a layer whose
    output tensor has no scale in higher precision, so the same layers stay out of INT8 there.
    """
    if not float_layers:
        return dict(ranges)
    import onnx

    wanted = set(float_layers)
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    produced = {out for node in graph.node if node.name in wanted for out in node.output}
    return {name: amax for name, amax in ranges.items() if name not in produced}


def make_fp16_artifact(model: Any, work: Path) -> Path:
    """FP16 ONNX (FP32 I/O kept) for strongly typed TensorRT builds (11.x, or 10.x with --stronglyTyped)."""
    from .. import quantize as q

    out = work / "fp16"
    out.mkdir(parents=True, exist_ok=True)
    return Path(q.make_fp16_onnx(model.onnx_path, out / "model.fp16.onnx"))


def measure_fp16(model: Any, fp16_path: Path, *, val: Any, progress: Progress | None) -> dict[str, Any]:
    """FP16 vs FP32 accuracy on the labelled val set (only when one is given: it costs a full evaluation)."""
    from .. import quantize as q

    if val is None:
        return {"precision": "fp16", "measured": False, "note": "no --val set given: accuracy not measured"}
    report = q.evaluate_accuracy(model.onnx_path, info=model.info, fp16_onnx=fp16_path, val=val, progress=progress)
    return dict(report.to_dict(), precision="fp16", measured=True)
