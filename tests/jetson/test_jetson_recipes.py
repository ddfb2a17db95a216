"""Jetson tier: each bundle's trtexec recipe against `edgeinfer build`, on THIS Jetson.

Only a real Jetson with JetPack's TensorRT and trtexec can run this (the `jetson` marker skips it
elsewhere); it has NOT run anywhere yet. For each bundle (FP16 and INT8, packaged as in
test_jetson_build.py) it:
  1. runs the recipe's trtexec command exactly as the bundle stores it, inside the bundle
     directory (engines/ must exist; a static model gets no --shapes, or trtexec refuses it);
  2. builds the same engine with `edgeinfer build` (build_engines) and keeps a copy;
  3. records the trtexec engine with `edgeinfer build BUNDLE --import ENGINE` and checks the
     runtime's selection picks it;
  4. runs both engines and ONNX Runtime (FP32, CPU) on the same frames and holds both to the
     tolerances of test_jetson_build.py, and reports how far the two engines differ;
  5. prints each engine's per-layer precision and device from the engine inspector and checks
     the INT8 share of the INT8 engines (at least MIN_INT8_SHARE of the convolution layers).
Results go to $EDGEINFER_JETSON_REPORT (one JSON line per case) and the per-layer tables to
$EDGEINFER_JETSON_OUT/layers-<case>.txt.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_jetson_build import (  # noqa: F401 - module fixtures shared with the build cases
    FP16_COSINE,
    FP16_MAX_SCORE_ERR,
    INT8_COSINE,
    INT8_MEAN_SCORE_ERR,
    REPORT,
    _this_device,
    bundles,
    frames,
)

pytestmark = pytest.mark.jetson

MIN_INT8_SHARE = 0.5  # of the convolution layers; the accuracy gate keeps only a few in float
OUT = Path(os.environ.get("EDGEINFER_JETSON_OUT", "."))


def _recipe_for_this_tensorrt(bundle_path: Path, device: str) -> dict:
    import tensorrt as trt

    from edgeinfer.bundle import open_bundle
    from edgeinfer.engine.trt_shim import parse_version

    running = parse_version(trt.__version__)[:2]
    for recipe in open_bundle(bundle_path).device(device).recipes.values():
        if parse_version(recipe["tensorrt"])[:2] == running:
            return recipe
    pytest.skip(f"the bundle has no recipe for TensorRT {trt.__version__} (packaged for other JetPack lines)")


def _run_trtexec(bundle_path: Path, recipe: dict, log: Path) -> Path:
    argv = shlex.split(recipe["trtexec"])
    if not Path(argv[0]).is_file():
        pytest.fail(f"{argv[0]} not found: JetPack's trtexec ships in the tensorrt package (sudo apt install tensorrt)")
    assert not [a for a in argv if a.startswith("--shapes")], "a static model's recipe must not pass --shapes"
    result = subprocess.run(argv, cwd=str(bundle_path), capture_output=True, text=True, timeout=3600)
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"trtexec failed (log: {log}): {result.stdout[-2000:]}{result.stderr[-2000:]}"
    engine = bundle_path / recipe["engine_file"]
    assert engine.is_file() and engine.stat().st_size > 0
    return engine


def _layers(engine_path: Path, dla_core):
    """Per-layer (name, type, device, precision) of an engine, read back with the inspector."""
    import tensorrt as trt

    from edgeinfer.engine import trt_shim
    from edgeinfer.engine.placement_check import summarize_layers

    engine = trt_shim.deserialize(trt, trt_shim.make_logger(trt), engine_path.read_bytes(), dla_core=dla_core)
    return summarize_layers(json.loads(trt_shim.engine_layer_json(trt, engine)), dla_core=dla_core)


def _outputs(engine_path: Path, batch: np.ndarray, dla_core) -> np.ndarray:
    from edgeinfer.runtime.trt_backend import TensorRTBackend

    backend = TensorRTBackend(engine_path, dla_core=dla_core)
    try:
        results = []
        for image in batch:
            backend.input_buffer()[...] = image[None]
            results.append(next(iter(backend.infer().values())).copy())
        return np.concatenate(results)
    finally:
        backend.close()


def _metrics(got: np.ndarray, reference: np.ndarray) -> dict:
    cosine = float(np.dot(got.ravel(), reference.ravel()) /
                   (np.linalg.norm(got.ravel()) * np.linalg.norm(reference.ravel()) + 1e-12))
    score_err = np.abs(got[:, 4:] - reference[:, 4:])
    return {"cosine": cosine, "max_score_err": float(score_err.max()), "mean_score_err": float(score_err.mean())}


def _within(precision: str, m: dict) -> bool:
    if precision == "fp16":
        return m["cosine"] >= FP16_COSINE and m["max_score_err"] <= FP16_MAX_SCORE_ERR
    return m["cosine"] >= INT8_COSINE and m["mean_score_err"] <= INT8_MEAN_SCORE_ERR


def _print_layers(case: str, which: str, layers) -> None:
    lines = [f"{case} / {which}: {len(layers)} layers"] + [
        f"  {x['device']:<8} {x['precision']:<7} {x['type']:<20} {x['name']}" for x in layers]
    text = "\n".join(lines)
    print(text)
    with (OUT / f"layers-{case}.txt").open("a") as fh:
        fh.write(text + "\n")


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_trtexec_recipe_and_edgeinfer_build_agree_with_onnxruntime(precision, bundles, frames, tmp_path, run_cli):  # noqa: F811
    from edgeinfer.bundle import open_bundle
    from edgeinfer.engine import build_engines, select_engine
    from edgeinfer.engine.placement_check import int8_share
    from edgeinfer.runtime.ort_backend import OnnxRuntimeBackend
    from edgeinfer.runtime.preprocess import preprocess_batch

    detected = _this_device()
    device = detected.profile.name
    bundle_path = bundles[precision]
    recipe = _recipe_for_this_tensorrt(bundle_path, device)
    core = recipe["dla_core"]
    case = f"recipe-{precision}-{'gpu' if core is None else f'dla{core}'}"

    (built,) = build_engines(bundle_path, device=device, timing_cache=tmp_path / "timing.cache")
    builder_engine = tmp_path / "edgeinfer-build.engine"
    shutil.copy(str(bundle_path / built["path"]), str(builder_engine))

    trtexec_engine = _run_trtexec(bundle_path, recipe, OUT / f"trtexec-{case}.log")
    result = run_cli("build", bundle_path, "--import", trtexec_engine, "--json")
    assert result.returncode == 0, result.stderr
    (imported,) = json.loads(result.stdout)
    selected = select_engine(open_bundle(bundle_path), device=detected)
    assert selected.record["sha256"] == imported["sha256"], "the runtime does not select the imported engine"

    bundle = open_bundle(bundle_path)
    batch, _ = preprocess_batch(frames, bundle.model_info.preprocess, bundle.model_info.imgsz)
    reference = _outputs_ort(OnnxRuntimeBackend(bundle.artifact_path(device, "onnx"), device="cpu"), batch)
    got_trtexec = _outputs(selected.path, batch, core)
    got_builder = _outputs(builder_engine, batch, core)
    metrics = {"trtexec": _metrics(got_trtexec, reference), "edgeinfer_build": _metrics(got_builder, reference),
               "trtexec_vs_build": _metrics(got_trtexec, got_builder)}

    layers = {"trtexec": _layers(selected.path, core), "edgeinfer_build": _layers(builder_engine, core)}
    shares = {which: int8_share(x) for which, x in layers.items()}
    for which, x in layers.items():
        _print_layers(case, which, x)
    with REPORT.open("a") as fh:
        fh.write(json.dumps({"case": case, "recipe": recipe["trtexec"], "metrics": metrics, "int8_share": shares,
                             "float_layers": recipe.get("float_layers", [])}) + "\n")

    assert _within(precision, metrics["edgeinfer_build"]), metrics
    assert _within(precision, metrics["trtexec"]), metrics
    if precision == "int8":
        for which, share in shares.items():
            assert share["share"] >= MIN_INT8_SHARE, f"{which}: only {share} of the convolutions run INT8"


def _outputs_ort(backend, batch: np.ndarray) -> np.ndarray:
    results = []
    for image in batch:
        backend.input_buffer()[...] = image[None]
        results.append(next(iter(backend.infer().values())).copy())
    return np.concatenate(results)
