"""INT8 under an accuracy budget: calibrate once, quantize, measure, keep the most sensitive Convs in float.

Budget (stated in the report, thresholds included):

* with labels (``val``): INT8 mAP50-95 may be at most ``budget`` mAP *points* below FP32
  (default **1.0** point = 0.010 mAP50-95, e.g. 0.512 → 0.502 passes);
* without labels, detectors: INT8 must *agree* with FP32 on held-out inputs, FP32's boxes (conf 0.25)
  standing in for labels: agreement mAP50-95 ≥ ``min_agreement_map`` (default **0.95**: INT8's
  detections ranked by its own confidence, scored against FP32's boxes at IoU 0.50–0.95, so lost,
  added, shifted and re-ranked boxes all cost) and box F1 ≥ ``min_f1`` (default **0.90**, IoU 0.5,
  same class, conf 0.25 on both sides: the decisions at the operating threshold);
* generic (non-detector) models, per raw output: cosine ≥ ``min_output_cosine`` (default **0.99**) and
  max relative error (max |INT8 − FP32| / max |FP32| of that output) ≤ ``max_rel_err`` (default **0.2**).

Why agreement mAP and not a cosine of the class-score tensor (the gate before): that cosine runs over
every anchor and class, so it depends on how much background a model scores, not on its decisions
(NudeNet's 18-class YOLOv8n sat at 0.976–0.988 with boxes unchanged). On the demo detector, whose
labels give the true drop, agreement mAP50-95 separates INT8 that holds (minmax: 0.991, true drop 0.5
points) from INT8 that does not (entropy: 0.916, true drop 6.9 points), where box F1 does not (0.96 for
that entropy model). F1 at a fixed threshold is a secondary bound: on a few dozen held-out images one
box whose score INT8 moves from 0.26 to 0.24 costs several points of F1 (NudeNet's YOLOv8n: F1 0.91
with agreement mAP50-95 0.99), so it is held at 0.90, not 0.95; docs/benchmarks/int8.md.

A gate that cannot fail is no gate, so a measurement resting on nothing is **not measured**, and
INT8 is refused (QuantizeError) unless the caller accepts it (``accept_unmeasured``, CLI
``--accept-unmeasured``; the report then says ``measured: false``):

* fewer than ``min_reference_boxes`` (default **20**) FP32 boxes on the held-out images, or labelled
  boxes in ``val`` (two models that both find nothing "agree" with F1 1.0);
* FP32 mAP50 below 0.01 on ``val`` (the set is not labelled for this model: 0.000 → 0.000 is no drop);
* a generic model whose every FP32 output is constant on the held-out inputs.

A ``val`` whose class count differs from the model's is refused outright (see ``accuracy``). Fewer
than 32 evaluation images is allowed but warned about (one box more or less moves F1 by several %).

When INT8 misses, Convs are ranked by :func:`rank_conv_sensitivity` and the 1, 2, 4, 8, … most
sensitive are kept in float until the budget holds, up to ``max_float_fraction`` of all Convs
(default 25 %: beyond that INT8 buys little over FP16). FP32 (and FP16) run once for all those
attempts (:func:`edgeinfer.quantize.accuracy.prepare_reference`). If it still misses, QuantizeError;
the packager maps ``--precision best`` to an FP16 fallback on that error.

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
from .accuracy import AccuracyReport, Reference, evaluate_accuracy, prepare_reference
from .cache_ranges import cache_ranges_for
from .calib_cache import write_trt_calibration_cache
from .qdq import make_qdq_onnx
from .ranges import DEFAULT_METHOD, compute_ranges
from .sensitivity import rank_conv_sensitivity

log = logging.getLogger(__name__)

DEFAULT_BUDGET_POINTS = 1.0
DEFAULT_MIN_F1 = 0.90
DEFAULT_MIN_AGREEMENT_MAP = 0.95
DEFAULT_MIN_OUTPUT_COSINE = 0.99
DEFAULT_MAX_REL_ERR = 0.2
DEFAULT_MIN_REFERENCE_BOXES = 20
TINY_SET_IMAGES = 32
_MIN_FP32_MAP50 = 0.01
_SENSITIVITY_IMAGES = 4
_UNMEASURED_HINT = ("give more representative images (--calib, or a labelled --val for this model), "
                    "use --precision fp16, or pass --accept-unmeasured to ship INT8 unchecked")


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
    measured: bool = True
    warnings: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    reference_seconds: float = 0.0  # the FP32/FP16 pass every attempt reuses

    def to_dict(self) -> dict:
        return {"qdq_onnx": self.qdq_path.name, "excluded_layers": list(self.excluded_layers),
                "criterion": self.criterion, "attempts": list(self.attempts), "measured": self.measured,
                "warnings": list(self.warnings), "thresholds": dict(self.thresholds),
                "accuracy": self.report.to_dict()}


@dataclass(frozen=True)
class _Gate:
    kind: str  # "map" | "agreement" | "outputs"
    budget: float
    min_f1: float
    min_map: float
    min_cos: float
    max_rel_err: float
    min_boxes: int

    def thresholds(self) -> dict[str, float]:
        if self.kind == "map":
            return {"max_map50_95_drop_points": self.budget, "min_label_boxes": self.min_boxes}
        if self.kind == "agreement":
            return {"min_box_f1": self.min_f1, "min_agreement_map50_95": self.min_map,
                    "min_reference_boxes": self.min_boxes}
        return {"min_output_cosine": self.min_cos, "max_output_rel_err": self.max_rel_err}

    def criterion(self) -> str:
        if self.kind == "map":
            return (f"INT8 mAP50-95 at most {self.budget:g} points (= {self.budget / 100:.3f} mAP) below FP32 "
                    f"(ONNX Runtime, labelled val set, >= {self.min_boxes} labelled boxes)")
        if self.kind == "agreement":
            return (f"INT8 vs FP32 box F1 >= {self.min_f1:g} and agreement mAP50-95 >= {self.min_map:g} "
                    f"(ONNX Runtime, held-out inputs, >= {self.min_boxes} FP32 boxes)")
        return (f"every INT8 output vs FP32: cosine >= {self.min_cos:g} and max relative error "
                f"(max |INT8-FP32| / max |FP32|) <= {self.max_rel_err:g} (ONNX Runtime, held-out inputs)")

    def holds(self, report: AccuracyReport) -> tuple[bool, dict]:
        int8 = report.precisions.get("int8", {})
        if self.kind == "map":
            drop = report.drop("int8")
            return drop is not None and drop <= self.budget + 1e-9, {"map50_95_drop_points": drop}
        if self.kind == "agreement":
            f1, amap = int8["agreement"]["f1"], int8["agreement"].get("map50_95")
            ok = f1 is not None and amap is not None and f1 >= self.min_f1 and amap >= self.min_map
            return ok, {"f1": f1, "agreement_map50_95": amap, "score_cosine": int8.get("score_cosine")}
        outs = int8.get("outputs", {}).values()
        cos = min((o["cosine"] for o in outs), default=0.0)
        rel = max((o["max_rel_err"] for o in outs if o.get("max_rel_err") is not None), default=0.0)
        return cos >= self.min_cos and rel <= self.max_rel_err, {"output_cosine": cos, "output_max_rel_err": rel}

    def unmeasured(self, ref: Reference, info: Any) -> str | None:
        """Why the reference cannot tell a good INT8 from a broken one, or None."""
        summary = ref.summary(info)
        if self.kind == "map":
            if summary["label_boxes"] < self.min_boxes:
                return f"the labelled set has {summary['label_boxes']} boxes (< {self.min_boxes})"
            fp32 = ref.fp32_map(info)
            if fp32["map50"] < _MIN_FP32_MAP50:
                return (f"FP32 itself scores mAP50 {fp32['map50']:.3f} on the labelled set "
                        "(labelled for another model or domain?)")
            return None
        if self.kind == "agreement":
            if summary["fp32_boxes"] < self.min_boxes:
                return (f"FP32 finds {summary['fp32_boxes']} boxes on the {summary['images']} held-out images "
                        f"(< {self.min_boxes}): box agreement would rest on nothing")
            return None
        if len(summary["constant_outputs"]) == len(ref.outputs["fp32"]):
            return "every FP32 output is constant on the held-out inputs"
        return None


def quantize_with_budget(onnx_path: str | Path, *, info: Any, calib: Any, out_dir: str | Path, val: Any = None,
                         method: str = DEFAULT_METHOD, budget: float | None = None, min_f1: float = DEFAULT_MIN_F1,
                         min_agreement_map: float = DEFAULT_MIN_AGREEMENT_MAP,
                         min_output_cosine: float = DEFAULT_MIN_OUTPUT_COSINE, max_rel_err: float = DEFAULT_MAX_REL_ERR,
                         min_reference_boxes: int = DEFAULT_MIN_REFERENCE_BOXES, accept_unmeasured: bool = False,
                         trt_version: str = "10.3", max_float_fraction: float = 0.25,
                         fp16_onnx: str | Path | None = None,
                         progress: Callable[[str, int, int], None] | None = None) -> QuantizeResult:
    """Calibrate, quantize and check the budget, keeping sensitive Convs in float as needed.

    Example:
        >>> quantize_with_budget("m.onnx", info=info, calib=calib, out_dir="b", val="data.yaml", budget=1.0)  # doctest: +SKIP
    """
    warnings: list[str] = []
    if budget is not None and val is None:
        warnings.append("--accuracy-budget is an mAP50-95 drop and applies only with a labelled --val; without "
                        "one INT8 is checked against FP32 on held-out images (agreement thresholds) instead")
    budget = DEFAULT_BUDGET_POINTS if budget is None else float(budget)
    if budget < 0 or not 0 <= max_float_fraction <= 1:
        raise ConfigError(f"accuracy budget {budget} / max_float_fraction {max_float_fraction} out of range",
                          hint="use a budget >= 0 mAP50-95 points, e.g. --accuracy-budget 1.0")
    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    labelled = val is not None and info.task == "detect"
    kind = "map" if labelled else ("agreement" if info.task == "detect" else "outputs")
    gate = _Gate(kind, budget, min_f1, min_agreement_map, min_output_cosine, max_rel_err, int(min_reference_boxes))
    ranges_data, heldout = _split(calib, labelled=val is not None, warnings=warnings)
    # FP32 (and FP16) once, before calibration: a --val from another label space fails in seconds.
    reference = prepare_reference(onnx_path, info=info, data=heldout, val=val, fp16_onnx=fp16_onnx, progress=progress)
    warnings += _tiny_set_warning(len(reference.x), labelled)
    why = gate.unmeasured(reference, info)
    if why and not accept_unmeasured:
        raise QuantizeError(f"INT8 accuracy not measured, so the accuracy budget cannot be checked: {why}",
                            hint=_UNMEASURED_HINT)
    ranges = compute_ranges(onnx_path, ranges_data, method=method, progress=progress)
    qdq_out = out_dir / f"{onnx_path.stem}.int8.qdq.onnx"
    attempts: list[dict] = []

    def attempt(exclude: list[str]) -> tuple[Any, AccuracyReport, bool]:
        res = make_qdq_onnx(onnx_path, qdq_out, ranges=ranges, info=info, exclude=exclude)
        rep = evaluate_accuracy(onnx_path, info=info, int8_onnx=res.path, fp16_onnx=fp16_onnx, reference=reference,
                                progress=progress)
        ok, figures = gate.holds(rep)
        attempts.append({"float_layers": len(exclude), "passed": ok, **figures})
        log.info("INT8 attempt with %d float layers: %s %s", len(exclude), "pass" if ok else "miss", figures)
        return res, rep, ok

    res, report, ok = attempt([])
    if why:  # accepted unmeasured: nothing to search against
        warnings.append(f"INT8 accuracy NOT measured ({why}); shipped unchecked because --accept-unmeasured was given")
        ok = True
    if not ok:
        res, report, ok = _keep_sensitive_in_float(onnx_path, res, info, heldout, ranges_data, max_float_fraction,
                                                   attempt)
    if not ok:
        qdq_out.unlink(missing_ok=True)
        raise QuantizeError(
            f"INT8 misses the accuracy budget ({gate.criterion()}) even with the {attempts[-1]['float_layers']} most "
            f"sensitive Conv layers kept in float; last attempt: {attempts[-1]}",
            hint="use --precision fp16 (or --precision best, which falls back to FP16), loosen --accuracy-budget, "
                 "or calibrate with more representative images",
        )
    for line in warnings:
        log.warning("%s", line)
    excluded = [name for name in res.excluded if name not in res.decode and name not in res.stem]
    # the cache leaves the decode head and the float-kept layers out, as the Q/DQ ONNX does
    cache_text = write_trt_calibration_cache(cache_ranges_for(ranges, onnx_path, float_layers=excluded).ranges,
                                             trt_version=trt_version, method=method)
    return QuantizeResult(qdq_path=res.path, cache_text=cache_text, report=report, excluded_layers=excluded,
                          ranges=ranges, criterion=gate.criterion(), attempts=attempts, measured=not why,
                          warnings=warnings, thresholds=gate.thresholds(), reference_seconds=reference.seconds)


def _keep_sensitive_in_float(onnx_path: Path, res: Any, info: Any, heldout: Any, ranges_data: Any,
                             max_float_fraction: float, attempt: Callable) -> tuple[Any, AccuracyReport, bool]:
    # Every intermediate tensor of both models is kept for these images: fewer at large sizes.
    hw = info.imgsz or (640, 640)
    n_images = _SENSITIVITY_IMAGES if hw[0] * hw[1] <= 416 * 416 else 2
    sample = (heldout if heldout is not None else ranges_data)[:n_images]
    ranking = [name for name, _ in rank_conv_sensitivity(onnx_path, res.path, sample)]
    # At least one Conv stays INT8: keeping them all in float would ship a float model named INT8.
    limit = min(int(math.floor(max_float_fraction * (len(res.quantized) + len(res.excluded)))), len(res.quantized) - 1)
    report, ok = None, False
    for k in _growing(min(limit, len(ranking))):
        res, report, ok = attempt(ranking[:k])
        if ok:
            break
    return res, report, ok


def _growing(limit: int) -> list[int]:
    """1, 2, 4, … up to and including ``limit``."""
    steps, k = [], 1
    while k < limit:
        steps.append(k)
        k *= 2
    if limit >= 1:
        steps.append(limit)
    return steps


def _tiny_set_warning(images: int, labelled: bool) -> list[str]:
    if images >= TINY_SET_IMAGES:
        return []
    where = "labelled --val images" if labelled else "held-out calibration images"
    return [f"accuracy measured on only {images} {where} (< {TINY_SET_IMAGES}): a box more or less moves the "
            f"figures by several percent; give more images for a verdict you can trust"]


def _split(calib: Any, *, labelled: bool, warnings: list[str]) -> tuple[Any, Any]:
    """(ranges data, held-out data). With a labelled val set nothing is held out of calibration."""
    if labelled:
        return calib, None
    n = len(calib)
    k = max(8, n // 8)
    if n < 2 * k:
        warnings.append(f"only {n} calibration images: INT8 is compared with FP32 on the calibration images "
                        f"themselves (not held out); give at least {2 * k} for a held-out check")
        return calib, calib
    return calib[:n - k], calib[n - k:]
