#!/usr/bin/env python3
"""What computing the FP32 reference once saves the accuracy gate: the same fallback search run
with the reference reused (the gate today) and re-run per attempt (the gate before), side by side.

Model: the demo detector (edgeinfer/_data/demo, 320) on synthetic shapes frames. The agreement
mAP50-95 threshold is set between what full INT8 reaches and 1, and at most 3 % of the Convs may
be kept in float, so the gate makes up to three attempts (0, 1, 2 float layers); both arms make the
same attempts, only the FP32 (and FP16) passes differ. The "per attempt" arm still runs the
up-front reference the gate needs for its not-measured check, so it does one pass more than the
old gate did: the old gate's cost is that arm minus one pass, printed as such.

Usage:
    .venv/bin/python scripts/bench_gate_reference.py [--images 16] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _machine import machine_info  # noqa: E402

from edgeinfer.demo import demo_model_path, make_dataset  # noqa: E402
from edgeinfer.errors import QuantizeError  # noqa: E402
from edgeinfer.model import load_model  # noqa: E402
from edgeinfer.quantize import load_calibration_images, make_fp16_onnx, quantize_with_budget  # noqa: E402


def _run(model, calib, work, *, reuse: bool, min_cos: float, fp16) -> tuple[float, int, float]:
    """(seconds, attempts, FP32+FP16 seconds of one reference) of one gate run; a final miss is fine here."""
    gate = sys.modules["edgeinfer.quantize.gate"]
    original, calls, ref_seconds = gate.evaluate_accuracy, [], []

    def counted(*args, reference=None, **kwargs):
        calls.append(1)
        ref_seconds.append(reference.seconds)
        if reuse:
            return original(*args, reference=reference, **kwargs)
        return original(*args, **kwargs, data=reference.x)  # the old gate: FP32/FP16 again every attempt

    gate.evaluate_accuracy = counted
    started = time.monotonic()
    try:
        quantize_with_budget(model.onnx_path, info=model.info, calib=calib, out_dir=work, min_f1=0.0,
                             min_agreement_map=min_cos, max_float_fraction=0.03, fp16_onnx=fp16)
    except QuantizeError:
        pass
    finally:
        gate.evaluate_accuracy = original
    return time.monotonic() - started, len(calls), ref_seconds[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16, help="held-out images (the ranges use 7x as many)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = load_model(demo_model_path("onnx"), workdir=tmp / "m")
        ds = make_dataset(tmp / "ds", n_train=8 * args.images, n_val=1, n_test=0, imgsz=320, seed=11)
        calib = load_calibration_images(ds / "images" / "train", model.info, max_images=8 * args.images)
        fp16 = make_fp16_onnx(model.onnx_path, tmp / "h.onnx")
        probe = quantize_with_budget(model.onnx_path, info=model.info, calib=calib, out_dir=tmp / "p",
                                     min_f1=0.0, min_agreement_map=0.0)
        cos0 = probe.attempts[0]["agreement_map50_95"]
        min_cos = cos0 + (1.0 - cos0) * 0.5  # out of reach with every Conv in INT8
        rows = {}
        for name, reuse in (("reference reused", True), ("reference per attempt", False)):
            seconds, attempts, ref = _run(model, calib, tmp / name.replace(" ", "_"), reuse=reuse, min_cos=min_cos,
                                          fp16=fp16)
            rows[name] = {"seconds": round(seconds, 2), "attempts": attempts, "reference_seconds": round(ref, 2)}
    load_after = os.getloadavg()
    now, before = rows["reference reused"], rows["reference per attempt"]
    old_gate = before["seconds"] - now["reference_seconds"]  # minus the up-front pass the old gate did not make
    saved = old_gate - now["seconds"]
    result = {"machine": machine_info(), "load_before": load_before, "load_after": load_after,
              "held_out_images": args.images, "min_agreement_map50_95": min_cos, "rows": rows,
              "old_gate_seconds": round(old_gate, 2), "saved_seconds": round(saved, 2),
              "ratio": round(old_gate / now["seconds"], 3)}
    for name, row in rows.items():
        print(f"{name:<24} {row['seconds']:7.2f} s  ({row['attempts']} attempts, FP32+FP16 pass "
              f"{row['reference_seconds']:.2f} s)")
    print(f"old gate (per attempt, no up-front pass) ~{old_gate:.2f} s; saved {saved:.2f} s (x{result['ratio']}); "
          f"load average before {load_before}, after {load_after}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
