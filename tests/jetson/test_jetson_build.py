"""Jetson tier: build real TensorRT engines for the demo model and compare them with ONNX Runtime.

Runs only on a Jetson with TensorRT (the `jetson` marker skips it elsewhere); it has NOT run
anywhere yet - see docs/build.md "Jetson tier" for how to run it and what it reports.

Cases: GPU FP16, GPU INT8 (calibration cache), DLA0 INT8 with GPU fallback (skipped on modules
without DLA). Tolerances, measured on the raw output tensor against ONNX Runtime FP32 on the CPU
for the same pre-processed frames:
  * FP16: cosine similarity >= 0.999 and max |score difference| <= 0.05
  * INT8 (GPU or DLA): cosine similarity >= 0.98 and mean |score difference| <= 0.03
("score" = the class-score rows of a YOLOv8/11 output [1, 4+nc, N]; cosine over the whole tensor.)
Placement: a DLA build must report at least one layer on DLA in the inspector JSON, and the
actual-vs-planned differences are written to the report (not asserted: they are the finding).

Bundles: EDGEINFER_JETSON_BUNDLE_FP16 / EDGEINFER_JETSON_BUNDLE_INT8 may point at bundles packaged
on a host; otherwise the demo model is packaged here (needs the host extra: onnx, onnxruntime).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.jetson

FP16_COSINE, FP16_MAX_SCORE_ERR = 0.999, 0.05
INT8_COSINE, INT8_MEAN_SCORE_ERR = 0.98, 0.03
REPORT = Path(os.environ.get("EDGEINFER_JETSON_REPORT", "jetson-tier-report.jsonl"))


def _this_device():
    from edgeinfer.profiles import detect_current_device

    detected = detect_current_device()
    if detected is None:
        pytest.skip("this Jetson module is not recognised by edgeinfer.profiles")
    return detected


def _bundle(precision: str, tmp_path_factory) -> Path:
    env = os.environ.get(f"EDGEINFER_JETSON_BUNDLE_{precision.upper()}")
    work = tmp_path_factory.mktemp(f"bundle-{precision}")
    if env:
        copy = work / Path(env).name
        shutil.copytree(env, copy) if Path(env).is_dir() else shutil.copy(env, copy)
        return copy
    from edgeinfer.demo import demo_model_path, make_dataset
    from edgeinfer.packager import package_model

    data = make_dataset(work / "data", n_train=1, n_val=64, n_test=0)
    return package_model(demo_model_path("onnx"), devices=_this_device().profile.name, precision=precision,
                         calib=data / "images" / "val", dla="auto", out=work / "demo.bundle")


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    return {p: _bundle(p, tmp_path_factory) for p in ("fp16", "int8")}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    import cv2

    from edgeinfer.demo import make_dataset

    data = make_dataset(tmp_path_factory.mktemp("frames"), n_train=1, n_val=8, n_test=0, seed=7)

    return [cv2.imread(str(p)) for p in sorted((data / "images" / "val").glob("*.jpg"))]


def _outputs(backend, batch: np.ndarray) -> np.ndarray:
    results = []
    for image in batch:
        backend.input_buffer()[...] = image[None]
        results.append(next(iter(backend.infer().values())).copy())
    return np.concatenate(results)


def _compare(bundle_path: Path, record: dict, frames, dla_core) -> dict:
    from edgeinfer.bundle import open_bundle
    from edgeinfer.runtime.ort_backend import OnnxRuntimeBackend
    from edgeinfer.runtime.preprocess import preprocess_batch
    from edgeinfer.runtime.trt_backend import TensorRTBackend

    bundle = open_bundle(bundle_path)
    info = bundle.model_info
    batch, _ = preprocess_batch(frames, info.preprocess, info.imgsz)
    device = _this_device().profile.name
    reference = _outputs(OnnxRuntimeBackend(bundle.artifact_path(device, "onnx"), device="cpu"), batch)
    trt = TensorRTBackend(bundle.root / record["path"], dla_core=dla_core)
    try:
        got = _outputs(trt, batch)
    finally:
        trt.close()
    cosine = float(np.dot(got.ravel(), reference.ravel()) /
                   (np.linalg.norm(got.ravel()) * np.linalg.norm(reference.ravel()) + 1e-12))
    score_err = np.abs(got[:, 4:] - reference[:, 4:])
    return {"cosine": cosine, "max_score_err": float(score_err.max()), "mean_score_err": float(score_err.mean())}


def _report(case: str, record: dict, metrics: dict) -> None:
    placement = record.get("placement", {})
    line = {"case": case, "engine": record["path"], "tensorrt": record["tensorrt_version"],
            "build_seconds": record["build_seconds"], "metrics": metrics, "placement_actual": placement.get("actual"),
            "placement_planned": placement.get("planned"), "placement_differences": placement.get("differences")}
    with REPORT.open("a") as fh:
        fh.write(json.dumps(line) + "\n")


@pytest.mark.parametrize("case, precision, dla_core", [("gpu-fp16", "fp16", "gpu"), ("gpu-int8", "int8", "gpu"),
                                                       ("dla0-int8", "int8", 0)])
def test_build_compare_and_placement(case, precision, dla_core, bundles, frames, tmp_path):
    from edgeinfer.bundle import open_bundle
    from edgeinfer.engine import build_engines, select_engine

    detected = _this_device()
    if dla_core != "gpu" and int(detected.profile.dla_cores) == 0:
        pytest.skip(f"{detected.profile.name} has no DLA")
    (record,) = build_engines(bundles[precision], device="auto", dla_core=dla_core, timing_cache=tmp_path / "timing.cache")
    selected = select_engine(open_bundle(bundles[precision]), device=detected, dla_core=dla_core)
    assert selected.record["sha256"] == record["sha256"]
    core = None if dla_core == "gpu" else dla_core
    metrics = _compare(bundles[precision], record, frames, core)
    _report(case, record, metrics)
    if precision == "fp16":
        assert metrics["cosine"] >= FP16_COSINE and metrics["max_score_err"] <= FP16_MAX_SCORE_ERR, metrics
    else:
        assert metrics["cosine"] >= INT8_COSINE and metrics["mean_score_err"] <= INT8_MEAN_SCORE_ERR, metrics
    if core is not None:
        layers = record["placement"]["layers"]
        assert any(layer["device"] == "dla" for layer in layers), "nothing runs on the DLA"
        assert record["key"]["dla_core"] == 0
