"""INT8 under an accuracy budget: calibrate once, quantize, measure, keep the most sensitive Convs in float.

Budget (stated in the report):

* with labels (``val``): INT8 mAP50-95 may be at most ``budget`` points (default **1.0**) below FP32;
* without labels: INT8 must *agree* with FP32 on held-out inputs: box F1 ≥ ``min_f1`` (default
  **0.95**, IoU 0.5, same class) and class-score cosine ≥ ``min_score_cosine`` (default **0.99**);
  generic (non-detector) models use the cosine of their outputs.

When INT8 misses, Convs are ranked by :func:`rank_conv_sensitivity` and the 1, 2, 4, 8, … most
sensitive are kept in float until the budget holds, up to ``max_float_fraction`` of all Convs
(default 25 %: beyond that INT8 buys little over FP16). If it still misses, QuantizeError; the
packager maps ``--precision best`` to an FP16 fallback on that error.

Held-out data: with ``val`` the labelled images; otherwise the last ⅛ of the calibration images
(at least 8) are set aside and not used for the ranges.

Example:
    >>> res = quantize_with_budget("m.onnx", info=info, calib=calib, out_dir="build")   # doctest: +SKIP
    >>> res.excluded_layers, res.report.to_dict()["precisions"]["int8"]["agreement"]["f1"]   # doctest: +SKIP
    ([], 0.981)
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, QuantizeError
from .accuracy import AccuracyReport, evaluate_accuracy
from .calib_cache import write_trt_calibration_cache
from .qdq import make_qdq_onnx
from .ranges import DEFAULT_METHOD, compute_ranges
from .sensitivity import rank_conv_sensitivity

log = logging.getLogger(__name__)

DEFAULT_BUDGET_POINTS = 1.0
DEFAULT_MIN_F1 = 0.95
DEFAULT_MIN_SCORE_COSINE = 0.99
_SENSITIVITY_IMAGES = 4


@dataclass(frozen=True)
class QuantizeResult:
    """What the packager stores: Q/DQ ONNX, TensorRT cache text, accuracy report, float-kept layers."""

    qdq_path: Path
    cache_text: str
    report: AccuracyReport
    excluded_layers: list[str] = field(default_factory=list)
    ranges: dict[str, float] = field(default_factory=dict)
    criterion: str = ""
    attempts: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"qdq_onnx": self.qdq_path.name, "excluded_layers": list(self.excluded_layers),
                "criterion": self.criterion, "attempts": list(self.attempts), "accuracy": self.report.to_dict()}


def _criterion(labelled: bool, budget: float, min_f1: float, min_cos: float) -> str:
    if labelled:
        return f"INT8 mAP50-95 at most {budget:g} points below FP32 (ONNX Runtime, labelled val set)"
    return f"INT8 vs FP32 box F1 >= {min_f1:g} and class-score cosine >= {min_cos:g} (ONNX Runtime, held-out inputs)"


def _holds(report: AccuracyReport, *, budget: float, min_f1: float, min_cos: float) -> tuple[bool, dict]:
    int8 = report.precisions.get("int8", {})
    if report.labelled:
        drop = report.drop("int8")
        return drop is not None and drop <= budget + 1e-9, {"map50_95_drop_points": drop}
    if "agreement" in int8:
        f1, cos = int8["agreement"]["f1"], int8.get("score_cosine", 0.0)
        return f1 >= min_f1 and cos >= min_cos, {"f1": f1, "score_cosine": cos}
    cos = min((o["cosine"] for o in int8.get("outputs", {}).values()), default=0.0)
    return cos >= min_cos, {"output_cosine": cos}


def quantize_with_budget(onnx_path: str | Path, *, info: Any, calib: Any, out_dir: str | Path, val: Any = None,
                         method: str = DEFAULT_METHOD, budget: float | None = None, min_f1: float = DEFAULT_MIN_F1,
                         min_score_cosine: float = DEFAULT_MIN_SCORE_COSINE, trt_version: str = "10.3",
                         max_float_fraction: float = 0.25, fp16_onnx: str | Path | None = None,
                         progress: Callable[[str, int, int], None] | None = None) -> QuantizeResult:
    """Calibrate, quantize and check the budget, keeping sensitive Convs in float as needed.

    Example:
        >>> quantize_with_budget("m.onnx", info=info, calib=calib, out_dir="b", val="data.yaml", budget=1.0)  # doctest: +SKIP
    """
    budget = DEFAULT_BUDGET_POINTS if budget is None else float(budget)
    if budget < 0 or not 0 <= max_float_fraction <= 1:
        raise ConfigError(f"accuracy budget {budget} / max_float_fraction {max_float_fraction} out of range",
                          hint="use a budget >= 0 mAP points, e.g. --accuracy-budget 1.0")
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    ranges_data, heldout = _split(calib, labelled=val is not None)
    ranges = compute_ranges(onnx_path, ranges_data, method=method, progress=progress)
    cache_text = write_trt_calibration_cache(ranges, trt_version=trt_version, method=method)
    qdq_out = out_dir / f"{onnx_path.stem}.int8.qdq.onnx"

    def attempt(exclude: list[str]) -> tuple[Any, AccuracyReport, bool, dict]:
        res = make_qdq_onnx(onnx_path, qdq_out, ranges=ranges, info=info, exclude=exclude)
        rep = evaluate_accuracy(onnx_path, info=info, int8_onnx=res.path, fp16_onnx=fp16_onnx, data=heldout,
                                val=val, progress=progress)
        ok, figures = _holds(rep, budget=budget, min_f1=min_f1, min_cos=min_score_cosine)
        attempts.append({"float_layers": len(exclude), "passed": ok, **figures})
        log.info("INT8 attempt with %d float layers: %s %s", len(exclude), "pass" if ok else "miss", figures)
        return res, rep, ok, figures

    attempts: list[dict] = []
    criterion = _criterion(val is not None and info.task == "detect", budget, min_f1, min_score_cosine)
    res, report, ok, _ = attempt([])
    if not ok:
        # Every intermediate tensor of both models is kept for these images: fewer at large sizes.
        hw = info.imgsz or (640, 640)
        n_images = _SENSITIVITY_IMAGES if hw[0] * hw[1] <= 416 * 416 else 2
        sample = (heldout if heldout is not None else ranges_data)[:n_images]
        ranking = [name for name, _ in rank_conv_sensitivity(onnx_path, res.path, sample)]
        limit = int(math.floor(max_float_fraction * (len(res.quantized) + len(res.excluded))))
        for k in _growing(min(limit, len(ranking))):
            res, report, ok, _ = attempt(ranking[:k])
            if ok:
                break
    if not ok:
        qdq_out.unlink(missing_ok=True)
        raise QuantizeError(
            f"INT8 misses the accuracy budget ({criterion}) even with the {attempts[-1]['float_layers']} most "
            f"sensitive Conv layers kept in float; last attempt: {attempts[-1]}",
            hint="use --precision fp16 (or --precision best, which falls back to FP16), loosen --accuracy-budget, "
                 "or calibrate with more representative images",
        )
    excluded = [name for name in res.excluded if name not in res.decode and name not in res.stem]
    return QuantizeResult(qdq_path=res.path, cache_text=cache_text, report=report, excluded_layers=excluded,
                          ranges=ranges, criterion=criterion, attempts=attempts)


def _growing(limit: int) -> list[int]:
    """1, 2, 4, … up to and including ``limit``."""
    steps, k = [], 1
    while k < limit:
        steps.append(k)
        k *= 2
    if limit >= 1:
        steps.append(limit)
    return steps


def _split(calib: Any, *, labelled: bool) -> tuple[Any, Any]:
    """(ranges data, held-out data). With a labelled val set nothing is held out of calibration."""
    if labelled:
        return calib, None
    n = len(calib)
    k = max(8, n // 8)
    if n < 2 * k:
        log.warning("only %d calibration images: evaluating agreement on calibration images themselves", n)
        return calib, calib
    return calib[:n - k], calib[n - k:]
