"""Per-tensor activation ranges (amax) on the host, with ONNX Runtime's calibrators (no TensorRT).

Which names: TensorRT's ONNX parser names every network input after the ONNX graph input
(``images``) and every layer-output ITensor after the ONNX *value* (tensor) name that node
produces (``/model.0/act/Mul_output_0``) -- the names seen in NVIDIA's own caches
(``images: 3c00f9f4`` in NVIDIA-AI-IOT/cuDLA-samples' cache, ``/model.0/act/Mul_output_0``-style
entries in NVIDIA/Deep-Learning-Accelerator-SW's ``tools/qdq-translator`` output). So the keys
here are ONNX value names: the graph input(s) and every float tensor a node produces, which is
what ``create_calibrator`` with no op filter selects. TensorRT ignores names it does not have after fusion, and a DLA region needs a scale on
every tensor it keeps, hence "every tensor".

Methods: ``minmax`` (max |x| seen; the default), ``percentile`` (99.999th percentile of |x|),
``entropy`` (KL-optimal threshold on a histogram, TensorRT's EntropyCalibration2 rule).

Why minmax by default (docs/benchmarks/int8.md, scripts/bench_int8.py): on the real detectors
measured it keeps as many FP32 boxes as ONNX Runtime's own calibrators (its default is MinMax) and
at least as many as percentile and NVIDIA ModelOpt, and it is the cheapest (no histogram), which
keeps packaging within its time budget; entropy clips the tails of YOLO's SiLU activations and the
class branch (it lost a quarter of NudeNet's boxes), so it is never the default, not even for DLA:
the DLA needs TensorRT's EntropyCalibration2 *calibrator* to read the cache, not entropy *ranges*,
and the cache header names that calibrator whatever method made the ranges.

Example:
    >>> amax = compute_ranges("model.onnx", calib, method="minmax")      # doctest: +SKIP
    >>> amax["images"]                                                 # doctest: +SKIP
    1.0
"""
from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

from .._deps import require
from ..errors import QuantizeError
from .histogram import AbsHistograms

log = logging.getLogger(__name__)

METHODS = ("entropy", "minmax", "percentile")
DEFAULT_METHOD = "minmax"
Progress = Callable[[str, int, int], None]


def model_batch(onnx_path: str | Path) -> tuple[str, int | None]:
    """(first input name, static batch or None) of a model."""
    onnx = require("onnx")
    model = onnx.load(str(onnx_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    first = next(i for i in model.graph.input if i.name not in inits)
    d0 = first.type.tensor_type.shape.dim[0] if first.type.tensor_type.shape.dim else None
    return first.name, (int(d0.dim_value) if d0 is not None and d0.dim_value > 0 else None)


def split_batches(data: Any, batch: int | None) -> list[Any]:
    """Cut (N,C,H,W) into model-sized batches; a static batch drops the incomplete tail (as TensorRT does)."""
    size = batch or 1
    n = (len(data) // size) * size
    if n == 0:
        raise QuantizeError(f"{len(data)} calibration images but the model's batch is {size}",
                            hint=f"give at least {size} images, or package with --batch 1")
    return [data[i:i + size] for i in range(0, n, size)]


def compute_ranges(onnx_path: str | Path, data: Any, *, method: str = DEFAULT_METHOD, percentile: float = 99.999,
                   progress: Progress | None = None) -> dict[str, float]:
    """amax per tensor (TensorRT names: ONNX value names) over ``data`` (N,C,H,W float32, pre-processed).

    Example:
        >>> compute_ranges("m.onnx", np.ones((4, 3, 32, 32), np.float32), method="minmax")["x"]   # doctest: +SKIP
        1.0
    """
    np = require("numpy")
    if method not in METHODS:
        raise QuantizeError(f"unknown calibration method {method!r}", hint=f"use one of {', '.join(METHODS)}")
    data = np.ascontiguousarray(data, dtype=np.float32)
    if data.ndim != 4 or len(data) == 0:
        raise QuantizeError(f"calibration data must be a non-empty (N,C,H,W) array, got shape {data.shape}",
                            hint="use load_calibration_images() to build it")
    input_name, batch = model_batch(onnx_path)
    batches = split_batches(data, batch)
    ranges = _calibrate(Path(onnx_path), input_name, batches, method, percentile, progress)
    log.info("%s calibration: %d tensors over %d images", method, len(ranges), sum(len(b) for b in batches))
    return ranges


class _AbsMax:
    """minmax: the largest |x| seen per tensor (np.max/np.min: two passes, no |x| temporary)."""

    def __init__(self) -> None:
        self.amax: dict[str, float] = {}

    def add(self, name: str, value: Any) -> None:
        np = require("numpy")
        if value.size:
            top = float(max(np.max(value), -np.min(value)))
            self.amax[name] = max(self.amax.get(name, 0.0), top)


def _calibrate(onnx_path: Path, input_name: str, batches: list[Any], method: str, percentile: float,
               progress: Progress | None) -> dict[str, float]:
    """ORT's calibrator augments the graph (every float tensor becomes an output); we run it and
    reduce each tensor ourselves.

    Why not ORT's own collectors: its histogram collector crashes on near-constant tensors (numpy
    "Too many bins", seen on random-weight YOLO11n) and its default entropy setting (128 bins,
    128 levels) reduces to max; its MinMax graph (a ReduceMin + ReduceMax per tensor) ran ~10 %
    slower than reading the outputs with numpy on YOLO11n-640 here.
    """
    q = require("onnxruntime.quantization", feature="INT8 calibration")
    with tempfile.TemporaryDirectory(prefix="edgeinfer-calib-") as tmp, _quiet():
        try:
            calibrator = q.create_calibrator(onnx_path, [], augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                             calibrate_method=q.CalibrationMethod.Percentile)
            session = _fast_session(calibrator.augmented_model_path)
            collector = _AbsMax() if method == "minmax" else AbsHistograms()
            for done, batch in enumerate(batches, start=1):
                _collect(session, calibrator.tensors_to_calibrate, input_name, batch, collector)
                if progress:
                    progress(f"calibrate ({method})", done, len(batches))
        except QuantizeError:
            raise
        except Exception as exc:  # ORT errors: wrong input shape/type, unsupported op in the model
            raise QuantizeError(f"calibration failed on ONNX Runtime: {str(exc).splitlines()[0][:300]}",
                                hint="check that the calibration data matches the model input (shape, float32)") from exc
    if method == "minmax":
        return collector.amax
    return collector.entropy() if method == "entropy" else collector.percentile(percentile)


def _fast_session(path: str) -> Any:
    """ORT's calibrators run with graph optimisations off; with them on (the default) the augmented
    model runs faster and every calibrated tensor is still a graph output, so none is fused away."""
    ort = require("onnxruntime")
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _collect(session: Any, wanted: set[str], input_name: str, batch: Any, collector: Any) -> None:
    names = [o.name for o in session.get_outputs()]
    for name, value in zip(names, session.run(None, {input_name: batch})):
        if name in wanted:
            collector.add(name, value)
    if input_name in wanted:  # graph inputs are not session outputs
        collector.add(input_name, batch)


@contextlib.contextmanager
def _quiet():
    """ORT's calibrators print() progress; keep library output in the log instead."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    for line in buf.getvalue().splitlines():
        if line.strip():
            log.debug("ort: %s", line)
