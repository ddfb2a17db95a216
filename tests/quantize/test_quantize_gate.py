"""FP16 export, accuracy report and the budget gate on real ONNX Runtime runs."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeinfer.errors import QuantizeError
from edgeinfer.model import load_model
from edgeinfer.quantize import (
    evaluate_accuracy,
    make_fp16_onnx,
    parse_trt_calibration_cache,
    quantize_with_budget,
)


@pytest.fixture()
def deep(tmp_path, tiny_net):
    """The tiny net with three middle Convs: room for the gate to keep some in float and still be INT8."""
    path, _, _ = tiny_net(tmp_path / "deep.onnx", size=16, depth=3)
    model = load_model(path, workdir=tmp_path / "ingested-deep")
    data = np.random.default_rng(7).standard_normal((24, 3, 16, 16)).astype(np.float32)
    return model, data


@pytest.fixture()
def tiny(tmp_path, tiny_net):
    path, _, _ = tiny_net(tmp_path / "tiny.onnx", size=16)
    model = load_model(path, workdir=tmp_path / "ingested")
    data = np.random.default_rng(7).standard_normal((24, 3, 16, 16)).astype(np.float32)
    return model, data


def test_fp16_keeps_fp32_io_and_runs(tmp_path, tiny):
    model, data = tiny
    out = make_fp16_onnx(model.onnx_path, tmp_path / "h.onnx")
    onnx.checker.check_model(str(out))
    m = onnx.load(str(out))
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert m.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in m.graph.initializer)
    a = ort.InferenceSession(str(model.onnx_path)).run(None, {"x": data[:1]})[0]
    b = ort.InferenceSession(str(out)).run(None, {"x": data[:1]})[0]
    assert b.dtype == np.float32 and np.abs(a - b).max() < 1e-2


def test_accuracy_report_generic(tmp_path, tiny):
    model, data = tiny
    fp16 = make_fp16_onnx(model.onnx_path, tmp_path / "h.onnx")
    seen = []
    rep = evaluate_accuracy(model.onnx_path, info=model.info, fp16_onnx=fp16, data=data,
                            progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert ("accuracy (fp32)", 24, 24) in seen and ("accuracy (fp16)", 24, 24) in seen
    d = rep.to_dict()
    assert "ONNX Runtime" in d["note"] and "TensorRT" in d["note"]
    out = d["precisions"]["fp16"]["outputs"]["y"]
    assert 0 < out["max_abs_err"] < 1e-2 and out["cosine"] > 0.999
    assert d["labelled"] is False and d["map50_95_drop_points"] == {"fp16": None}
    with pytest.raises(QuantizeError, match="held-out data or a labelled val set"):
        evaluate_accuracy(model.onnx_path, info=model.info)


def test_gate_passes_when_loose(tmp_path, tiny):
    model, data = tiny
    res = quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=tmp_path, min_output_cosine=0.9,
                               trt_version="8.6")
    assert res.excluded_layers == [] and res.attempts[0]["passed"]
    assert res.qdq_path.is_file() and parse_trt_calibration_cache(res.cache_text).version == 8600
    assert "cosine >= 0.9" in res.criterion and res.to_dict()["accuracy"]["precisions"]["int8"]


def test_gate_keeps_sensitive_layers_in_float_until_it_holds(tmp_path, deep):
    model, data = deep
    first = quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=tmp_path / "a",
                                 min_output_cosine=0.0)
    cos0 = first.attempts[0]["output_cosine"]
    assert cos0 < 1.0
    target = cos0 + (1.0 - cos0) * 0.5  # unreachable with every Conv in INT8, reachable with fewer
    res = quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=tmp_path / "b",
                               min_output_cosine=target, max_float_fraction=1.0)
    assert res.excluded_layers and not res.attempts[0]["passed"] and res.attempts[-1]["passed"]
    assert res.attempts[-1]["output_cosine"] >= target
    # however much is kept in float, what ships is still an INT8 model (not a float one under that name)
    qdq = onnx.load(str(res.qdq_path))
    assert any(n.op_type == "QuantizeLinear" for n in qdq.graph.node)
    assert len(res.excluded_layers) <= 3  # 4 quantizable Convs (the stem is float): at least one stays INT8


def test_gate_impossible_budget_is_a_quantize_error(tmp_path, tiny):
    model, data = tiny
    with pytest.raises(QuantizeError, match="misses the accuracy budget") as err:
        quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=tmp_path, min_output_cosine=1.0)
    assert "fp16" in err.value.hint
    assert not list(tmp_path.glob("*.qdq.onnx"))  # nothing half-made left behind


def _demo_model(tmp_path):
    from edgeinfer.demo import demo_model_path
    from edgeinfer.errors import ModelError

    try:
        return load_model(demo_model_path("onnx"), workdir=tmp_path / "m")
    except ModelError:
        pytest.skip("demo weights not committed in this checkout (scripts/train_demo_model.py makes them)")


def test_accuracy_with_a_yolo_labelled_set(tmp_path):
    """The labelled path end to end: YOLO txt labels, runtime pre/post-processing, mAP per precision."""
    from edgeinfer.demo import make_dataset

    model = _demo_model(tmp_path)
    ds = make_dataset(tmp_path / "ds", n_train=2, n_val=6, n_test=0, imgsz=320, seed=2)
    fp16 = make_fp16_onnx(model.onnx_path, tmp_path / "h.onnx")
    rep = evaluate_accuracy(model.onnx_path, info=model.info, fp16_onnx=fp16, val=ds / "data.yaml")
    assert rep.labelled and rep.images == 6
    for name in ("fp32", "fp16"):
        figures = rep.precisions[name]
        assert 0.0 <= figures["map50_95"] <= figures["map50"] <= 1.0 and figures["images"] == 6
    assert rep.precisions["fp32"]["map50"] > 0.3  # the trained detector sees the shapes: a real measurement
    assert rep.drop("fp16") is not None and rep.reference["label_boxes"] > 0
    same = evaluate_accuracy(model.onnx_path, info=model.info, val=ds / "images" / "val")  # a plain image dir too
    assert same.precisions["fp32"]["map50"] == rep.precisions["fp32"]["map50"]


def test_val_of_another_label_space_is_refused(yolo64, tmp_path):
    """An 80-class model scored on a 3-class set gives mAP 0.000 -> 0.000, a 'drop' of 0: refused."""
    from edgeinfer.demo import make_dataset

    ds = make_dataset(tmp_path / "ds", n_train=2, n_val=4, n_test=0, imgsz=96, seed=2)
    calib = np.random.default_rng(0).random((8, 3, 64, 64), dtype=np.float32)
    with pytest.raises(QuantizeError, match="declares 3 classes but the model has 80"):
        quantize_with_budget(yolo64.onnx_path, info=yolo64.info, calib=calib, out_dir=tmp_path, val=ds / "data.yaml")
    assert not list(tmp_path.glob("*.qdq.onnx"))
    # no data.yaml: a label id the model does not have is refused too
    label = next((ds / "labels" / "val").glob("*.txt"))
    label.write_text("95 0.5 0.5 0.2 0.2\n")
    with pytest.raises(QuantizeError, match="class id 95 but the model has 80"):
        evaluate_accuracy(yolo64.onnx_path, info=yolo64.info, val=ds)


def test_demo_model_int8_within_budget(tmp_path):
    """The trained demo detector: INT8 mAP50-95 within the default 1-point budget on its val split."""
    from edgeinfer.demo import demo_model_path, make_dataset
    from edgeinfer.errors import ModelError
    from edgeinfer.quantize import load_calibration_images

    try:
        onnx_path = demo_model_path("onnx")
    except ModelError:
        pytest.skip("demo weights not committed in this checkout (scripts/train_demo_model.py makes them)")
    model = load_model(onnx_path, workdir=tmp_path / "m")
    ds = make_dataset(tmp_path / "ds", n_train=48, n_val=24, n_test=0, imgsz=320, seed=5)
    calib = load_calibration_images(ds / "images" / "train", model.info, max_images=48)
    res = quantize_with_budget(model.onnx_path, info=model.info, calib=calib, out_dir=tmp_path, val=ds / "data.yaml")
    fp32 = res.report.precisions["fp32"]
    assert fp32["map50"] > 0.5  # the metric sees a working detector
    assert res.report.drop("int8") <= 1.0


def test_no_reference_boxes_is_not_measured_and_refused(yolo64, tmp_path):
    """Random-weight YOLO on noise finds no box in FP32 or INT8: that used to 'pass' with box F1 1.000."""
    calib = np.random.default_rng(1).random((16, 3, 64, 64), dtype=np.float32)
    with pytest.raises(QuantizeError, match="not measured.*FP32 finds 0 boxes") as err:
        quantize_with_budget(yolo64.onnx_path, info=yolo64.info, calib=calib, out_dir=tmp_path)
    assert "--accept-unmeasured" in err.value.hint
    assert not list(tmp_path.glob("*.qdq.onnx"))
    res = quantize_with_budget(yolo64.onnx_path, info=yolo64.info, calib=calib, out_dir=tmp_path, accept_unmeasured=True)
    assert res.measured is False and any("NOT measured" in w for w in res.warnings)
    assert res.to_dict()["accuracy"]["precisions"]["int8"]["agreement"]["f1"] is None


def test_fp32_runs_once_across_fallback_attempts_and_tiny_sets_warn(tmp_path, deep):
    """Several attempts (sensitive layers kept in float), one FP32 pass; 8 held-out images are flagged."""
    model, data = deep
    first = quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=tmp_path / "a",
                                 min_output_cosine=0.0, max_rel_err=1e9)
    cos0 = first.attempts[0]["output_cosine"]
    stages = []
    res = quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=tmp_path / "b",
                               min_output_cosine=cos0 + (1.0 - cos0) * 0.5, max_rel_err=1e9, max_float_fraction=1.0,
                               progress=lambda stage, done, total: done == total and stages.append(stage))
    assert len(res.attempts) >= 2
    assert stages.count("accuracy (fp32)") == 1 and stages.count("accuracy (int8)") == len(res.attempts)
    assert any("only 8 held-out" in w for w in res.warnings)


def test_generic_model_gated_on_relative_error_too(tmp_path, tiny):
    """Per output: cosine AND max relative error, both thresholds in the report."""
    model, data = tiny
    res = quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=tmp_path, min_output_cosine=0.9)
    out = res.report.precisions["int8"]["outputs"]["y"]
    assert 0 < out["max_rel_err"] <= 0.2 and res.attempts[0]["output_max_rel_err"] == out["max_rel_err"]
    assert res.thresholds == {"min_output_cosine": 0.9, "max_output_rel_err": 0.2}
    assert "max relative error" in res.criterion
    assert not any("--accuracy-budget" in w for w in res.warnings)
    unlabelled = quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=tmp_path / "budget",
                                      min_output_cosine=0.9, budget=0.5)  # a budget without --val checks nothing
    assert any("applies only with a labelled --val" in w for w in unlabelled.warnings)
    with pytest.raises(QuantizeError, match="misses the accuracy budget"):
        quantize_with_budget(model.onnx_path, info=model.info, calib=data, out_dir=tmp_path / "strict",
                             min_output_cosine=0.0, max_rel_err=out["max_rel_err"] / 10, max_float_fraction=0.0)


def test_generic_model_with_constant_outputs_is_not_measured(tmp_path, tiny):
    model, _ = tiny
    zeros = np.zeros((24, 3, 16, 16), np.float32)  # bias-free convs: sigmoid(0) = 0.5 everywhere
    with pytest.raises(QuantizeError, match="not measured.*constant"):
        quantize_with_budget(model.onnx_path, info=model.info, calib=zeros, out_dir=tmp_path)
