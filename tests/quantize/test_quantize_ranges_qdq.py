"""Ranges against numpy, histogram rules, and Q/DQ models that pass the checker, run, and leave the head in float."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeinfer.errors import QuantizeError
from edgeinfer.quantize import (
    compute_ranges,
    decode_nodes,
    make_qdq_onnx,
    parse_trt_calibration_cache,
    write_trt_calibration_cache,
)
from edgeinfer.quantize.histogram import AbsHistograms
from edgeinfer.quantize.qdq import lint_qdq


def _numpy_forward(x, w1, w2):
    n, _, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    c1 = np.zeros((n, w1.shape[0], h, w), np.float64)
    for dy in range(3):
        for dx in range(3):
            c1 += np.einsum("ncij,oc->noij", xp[:, :, dy:dy + h, dx:dx + w], w1[:, :, dy, dx])
    r1 = np.maximum(c1, 0)
    c2 = np.einsum("ncij,oc->noij", r1, w2[:, :, 0, 0])
    return {"x": x, "c1": c1, "r1": r1, "c2": c2, "y": 1 / (1 + np.exp(-c2))}


def test_minmax_ranges_match_numpy(tmp_path, tiny_net):
    path, w1, w2 = tiny_net(tmp_path / "tiny.onnx")
    data = np.random.default_rng(3).standard_normal((6, 3, 16, 16)).astype(np.float32)
    seen = []
    ranges = compute_ranges(path, data, method="minmax", progress=lambda *a: seen.append(a))
    assert seen[-1] == ("calibrate (minmax)", 6, 6)
    expected = {k: float(np.abs(v).max()) for k, v in _numpy_forward(data.astype(np.float64), w1, w2).items()}
    assert set(ranges) == set(expected)  # input + every node output: the names TensorRT's parser uses
    for name, amax in expected.items():
        assert ranges[name] == pytest.approx(amax, rel=1e-4)


def test_histogram_methods_clip_outliers(tmp_path, tiny_net):
    path, _, _ = tiny_net(tmp_path / "tiny.onnx")
    data = np.random.default_rng(4).standard_normal((4, 3, 16, 16)).astype(np.float32)
    data[0, 0, 0, 0] = 60.0  # one outlier pixel
    mm = compute_ranges(path, data, method="minmax")
    pc = compute_ranges(path, data, method="percentile", percentile=99.9)
    en = compute_ranges(path, data, method="entropy")
    assert mm["x"] == pytest.approx(60.0)
    assert pc["x"] < 10.0 and en["x"] < 30.0
    for name in mm:
        assert 0 < pc[name] <= mm[name] * (1 + 1e-6) and 0 < en[name] <= mm[name] * (1 + 1e-6)


def test_abs_histogram_percentile_and_growth():
    h = AbsHistograms()
    h.add("t", np.full(1000, 1e-10, np.float32) * np.linspace(1, 1.0001, 1000, dtype=np.float32))  # near-constant
    h.add("t", np.linspace(0, 5, 1000, dtype=np.float32))  # a larger later batch grows the bins
    assert h.amax["t"] == pytest.approx(5.0)
    assert 4.5 < h.percentile(99.0)["t"] <= 5.0
    assert 0 < h.entropy()["t"] <= 5.0


def test_bad_ranges_inputs(tmp_path, tiny_net):
    path, _, _ = tiny_net(tmp_path / "tiny.onnx")
    with pytest.raises(QuantizeError, match="unknown calibration method"):
        compute_ranges(path, np.zeros((1, 3, 16, 16), np.float32), method="kl")
    with pytest.raises(QuantizeError, match="non-empty"):
        compute_ranges(path, np.zeros((0, 3, 16, 16), np.float32), method="minmax")
    with pytest.raises(QuantizeError, match="calibration failed"):
        compute_ranges(path, np.zeros((2, 3, 8, 8), np.float32), method="minmax")


def _qdq_facts(path):
    model = onnx.load(str(path))
    consumers = {}
    for n in model.graph.node:
        for i in n.input[:2]:  # data and weight inputs
            consumers.setdefault(i, []).append(n)
    q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    fed = {c.name: c.op_type for d in dq for c in consumers.get(d.output[0], [])}
    return model, q, dq, fed


def test_qdq_on_yolo11n(yolo64, tmp_path):
    data = np.random.default_rng(0).random((4, 3, 64, 64), dtype=np.float32)
    ranges = compute_ranges(yolo64.onnx_path, data, method="minmax")
    res = make_qdq_onnx(yolo64.onnx_path, tmp_path / "q.onnx", ranges=ranges, info=yolo64.info)
    onnx.checker.check_model(str(res.path))
    model, q, dq, fed = _qdq_facts(res.path)
    assert q and dq
    for init in model.graph.initializer:  # symmetric INT8: every zero point is 0
        if init.name.endswith("_zero_point"):
            assert not onnx.numpy_helper.to_array(init).any()
    decode, boundary = decode_nodes(onnx.load(str(yolo64.onnx_path)))
    assert "/model.23/dfl/conv/Conv" in decode and any("Sigmoid" in n for n in decode)
    assert len(boundary) == 6  # cv2.{0,1,2}.2 and cv3.{0,1,2}.2: the last learned convs
    assert not set(fed) & set(decode)  # nothing of the decode head reads a dequantized tensor
    assert "/model.23/dfl/conv/Conv" in res.excluded
    assert all(fed[name] == "Conv" for name in res.quantized if name in fed)
    assert len(res.quantized) + len(res.excluded) == sum(n.op_type == "Conv" for n in onnx.load(
        str(yolo64.onnx_path)).graph.node)
    a = ort.InferenceSession(str(yolo64.onnx_path)).run(None, {"images": data[:1]})[0]
    b = ort.InferenceSession(str(res.path)).run(None, {"images": data[:1]})[0]
    assert a.shape == b.shape and np.isfinite(b).all()
    assert np.abs(a[:, 4:] - b[:, 4:]).max() < 0.2  # class scores stay close: the sigmoid is not quantized
    cache = parse_trt_calibration_cache(write_trt_calibration_cache(ranges, trt_version="8.6"))
    assert "images" in cache.scales and "/model.0/conv/Conv_output_0" in cache.scales


def test_qdq_exclude_and_errors(yolo64, tmp_path):
    data = np.random.default_rng(1).random((2, 3, 64, 64), dtype=np.float32)
    first = "/model.0/conv/Conv"
    res = make_qdq_onnx(yolo64.onnx_path, tmp_path / "q.onnx", data=data, exclude=[first])
    assert first in res.excluded and first not in res.quantized
    _, _, _, fed = _qdq_facts(res.path)
    assert first not in fed
    with pytest.raises(QuantizeError, match="unknown nodes"):
        make_qdq_onnx(yolo64.onnx_path, tmp_path / "x.onnx", data=data, exclude=["/nope/Conv"])
    with pytest.raises(QuantizeError, match="needs ranges or calibration data"):
        make_qdq_onnx(yolo64.onnx_path, tmp_path / "y.onnx")
    assert not (tmp_path / "x.onnx").exists()


def _dq_input_types(path):
    model = onnx.load(str(path))
    inits = {i.name: onnx.TensorProto.DataType.Name(i.data_type) for i in model.graph.initializer}
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    return [inits.get(n.input[0]) or producers.get(n.input[0]) for n in model.graph.node
            if n.op_type == "DequantizeLinear"]


def test_qdq_biases_stay_float_and_every_dq_reads_int8_or_a_quantize(yolo64, tmp_path):
    data = np.random.default_rng(2).random((2, 3, 64, 64), dtype=np.float32)
    res = make_qdq_onnx(yolo64.onnx_path, tmp_path / "q.onnx", data=data)
    kinds = _dq_input_types(res.path)
    assert kinds and set(kinds) <= {"INT8", "QuantizeLinear"}  # no INT32 bias DequantizeLinear
    lint_qdq(onnx.load(str(res.path)))
    biases = [n.input[2] for n in onnx.load(str(res.path)).graph.node if n.op_type == "Conv" and len(n.input) > 2]
    inits = {i.name: i.data_type for i in onnx.load(str(res.path)).graph.initializer}
    assert biases and all(inits.get(b) == onnx.TensorProto.FLOAT for b in biases)


def test_lint_refuses_an_int32_bias_dequantize(tiny_net, tmp_path):
    """ONNX Runtime's default (QuantizeBias on) makes the graph TensorRT's parser rejects: the lint says so."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    path, _, _ = tiny_net(tmp_path / "tiny.onnx")
    model = onnx.load(str(path))  # give conv1 a bias, the tensor ONNX Runtime quantizes to INT32
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.full(4, 0.1, np.float32), "b1"))
    model.graph.node[0].input.append("b1")
    onnx.save(model, str(path))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)}])

        def get_next(self):
            return next(self.items, None)

    bad = tmp_path / "bad.qdq.onnx"
    quantize_static(str(path), str(bad), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"])
    assert "INT32" in _dq_input_types(bad)
    with pytest.raises(QuantizeError, match=r"DequantizeLinear .* reads .*INT32 initializer.*QuantizeBias off"):
        lint_qdq(onnx.load(str(bad)))


def test_stem_conv_stays_float_unless_asked(yolo64, tmp_path):
    data = np.random.default_rng(5).random((2, 3, 64, 64), dtype=np.float32)
    ranges = compute_ranges(yolo64.onnx_path, data, method="minmax")
    res = make_qdq_onnx(yolo64.onnx_path, tmp_path / "q.onnx", ranges=ranges)
    assert res.stem == ["/model.0/conv/Conv"] and "/model.0/conv/Conv" in res.excluded
    _, _, _, fed = _qdq_facts(res.path)
    assert "/model.0/conv/Conv" not in fed and "/model.1/conv/Conv" in fed
    forced = make_qdq_onnx(yolo64.onnx_path, tmp_path / "q8.onnx", ranges=ranges, stem_int8=True)
    assert forced.stem == [] and "/model.0/conv/Conv" in forced.quantized
    assert "/model.0/conv/Conv" in _qdq_facts(forced.path)[3]


def test_sampled_histogram_keeps_exact_amax_and_close_percentiles():
    rng = np.random.default_rng(9)
    batches = [rng.standard_normal(1 << 20).astype(np.float32) for _ in range(4)]
    batches[2][12345] = 40.0  # one outlier a strided sample may skip: amax must still see it
    sampled, full = AbsHistograms(sample=1 << 14), AbsHistograms(sample=1 << 22)
    for b in batches:
        sampled.add("t", b)
        full.add("t", b)
    assert sampled.amax["t"] == full.amax["t"] == pytest.approx(40.0)
    exact = float(np.percentile(np.abs(np.concatenate(batches)), 99.9))
    assert full.percentile(99.9)["t"] == pytest.approx(exact, rel=0.01)
    assert sampled.percentile(99.9)["t"] == pytest.approx(exact, rel=0.05)  # 64x fewer values binned
