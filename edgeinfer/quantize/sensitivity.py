"""Per-layer INT8 sensitivity in one pass, to choose which Convs to keep in float.

ONNX Runtime's ``qdq_loss_debug`` runs the float and the Q/DQ model once on a few images with
every intermediate tensor exposed; for each Conv we take the signal-to-quantization-noise ratio
(SQNR, dB) of its quantized input activation (``qdq_err``: what Q/DQ does to that tensor) and of
its per-channel INT8 weights. A layer's score is the worse of the two; the lowest scores are the
most sensitive. One pass instead of one quantize+evaluate per layer (87 Convs in YOLO11n) keeps
the gate within minutes on a 2-core host.

Example:
    >>> rank_conv_sensitivity("m.onnx", "m.qdq.onnx", sample)[:2]    # doctest: +SKIP
    [('/model.23/cv3.0/cv3.0.2/Conv', 9.8), ('/model.0/conv/Conv', 17.2)]
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

from .._deps import require
from ..errors import QuantizeError

log = logging.getLogger(__name__)


class _Reader:
    def __init__(self, name: str, batches: list[Any]) -> None:
        self._name, self._batches, self._i = name, batches, 0

    def get_next(self) -> dict | None:
        if self._i >= len(self._batches):
            return None
        self._i += 1
        return {self._name: self._batches[self._i - 1]}

    def rewind(self) -> None:
        self._i = 0

    def __iter__(self):  # ORT's collect_activations iterates the reader
        return self

    def __next__(self) -> dict:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def rank_conv_sensitivity(float_onnx: str | Path, qdq_onnx: str | Path, sample: Any) -> list[tuple[str, float]]:
    """[(conv name, SQNR dB)] for the quantized Convs, most sensitive (lowest SQNR) first."""
    onnx = require("onnx")
    require("onnxruntime", feature="INT8 sensitivity analysis")
    from onnxruntime.quantization import qdq_loss_debug as dbg

    from .ranges import model_batch, split_batches

    input_name, batch = model_batch(float_onnx)
    batches = split_batches(sample, batch)
    try:
        with tempfile.TemporaryDirectory(prefix="edgeinfer-sens-") as tmp, contextlib.redirect_stdout(io.StringIO()):
            aug_f, aug_q = str(Path(tmp) / "f.onnx"), str(Path(tmp) / "q.onnx")
            dbg.modify_model_output_intermediate_tensors(str(float_onnx), aug_f)
            dbg.modify_model_output_intermediate_tensors(str(qdq_onnx), aug_q)
            reader = _Reader(input_name, batches)
            float_acts = dbg.collect_activations(aug_f, reader)
            reader.rewind()
            qdq_acts = dbg.collect_activations(aug_q, reader)
            act_err = dbg.compute_activation_error(dbg.create_activation_matching(qdq_acts, float_acts))
            weight_err = dbg.compute_weight_error(dbg.create_weight_matching(str(float_onnx), str(qdq_onnx)))
    except Exception as exc:
        raise QuantizeError(f"INT8 sensitivity analysis failed: {str(exc).splitlines()[0][:300]}",
                            hint="use --precision fp16 for this model") from exc
    scores = []
    for node in onnx.load(str(float_onnx), load_external_data=False).graph.node:
        if node.op_type != "Conv":
            continue
        act = act_err.get(node.input[0], {}).get("qdq_err")
        wgt = weight_err.get(node.input[1]) if len(node.input) > 1 else None
        known = [float(v) for v in (act, wgt) if v is not None and not math.isnan(float(v))]
        if known:
            scores.append((node.name, round(min(known), 3)))
    scores.sort(key=lambda item: item[1])
    log.info("sensitivity: %d quantized Convs ranked; worst %s", len(scores), scores[:3])
    return scores
