"""load_model on real files: tiny ONNX graphs built here, a random-weight YOLO11n exported by Ultralytics."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeinfer.errors import ConfigError, EdgeInferError, ModelError
from edgeinfer.model import ModelInfo, load_model, normalize_imgsz


def _conv_net(path, *, h="height", w="width", batch="batch"):
    """A generic (non-YOLO) 2-conv segmentation-style net: [N,3,H,W] -> [N,1,H,W]."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.2, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((1, 8, 1, 1)).astype(np.float32) * 0.2, "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Sigmoid", ["c2"], ["prob"], name="sig"),
    ]
    graph = helper.make_graph(
        nodes, "generic", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, h, w])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [batch, 1, h, w])], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)
    return path


def test_generic_dynamic_onnx_is_fixed_to_imgsz(tmp_path):
    src = _conv_net(tmp_path / "seg.onnx")
    m = load_model(src, imgsz="96x64", workdir=tmp_path / "out")
    assert m.info.inputs[0].shape == [1, 3, 64, 96]
    assert m.info.outputs[0].shape == [1, 1, 64, 96]
    assert (m.info.task, m.info.output_layout) == ("generic", "generic")
    assert len(m.source_sha256) == 64 and m.log
    onnx.checker.check_model(str(m.onnx_path))
    out = ort.InferenceSession(str(m.onnx_path)).run(None, {"x": np.ones((1, 3, 64, 96), np.float32)})[0]
    assert out.shape == (1, 1, 64, 96)
    assert ModelInfo.from_dict(m.info.to_dict()) == m.info


def test_dynamic_true_keeps_symbolic_dims(tmp_path):
    m = load_model(_conv_net(tmp_path / "seg.onnx"), dynamic=True, workdir=tmp_path / "out")
    assert not m.info.is_static and m.info.imgsz is None


def test_dynamic_hw_without_imgsz_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="dynamic height/width") as err:
        load_model(_conv_net(tmp_path / "seg.onnx"), workdir=tmp_path / "out")
    assert "imgsz" in err.value.hint


def test_static_onnx_cannot_be_resized(tmp_path):
    src = _conv_net(tmp_path / "s.onnx", h=32, w=32, batch=1)
    assert load_model(src, workdir=tmp_path / "o").info.imgsz == (32, 32)
    with pytest.raises(ModelError, match="cannot be resized|fixed at 32x32"):
        load_model(src, imgsz=64, workdir=tmp_path / "o2")
    with pytest.raises(ModelError, match="static batch of 1"):
        load_model(src, batch=4, workdir=tmp_path / "o3")


def test_source_is_never_overwritten(tmp_path):
    src = _conv_net(tmp_path / "s.onnx", h=32, w=32, batch=1)
    before = src.read_bytes()
    m = load_model(src, workdir=tmp_path)
    assert m.onnx_path != src and src.read_bytes() == before


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf" * 10)
    with pytest.raises(ModelError, match="broken.onnx is not a valid ONNX") as err:
        load_model(bad, workdir=tmp_path / "o")
    assert err.value.hint
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.onnx", workdir=tmp_path / "o")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.pt", workdir=tmp_path / "o")
    with pytest.raises(EdgeInferError):
        load_model(bad, batch=0, workdir=tmp_path / "o")


def test_normalize_imgsz():
    assert normalize_imgsz("640") == (640, 640)
    assert normalize_imgsz("640x384") == (384, 640)
    assert normalize_imgsz([384, 640]) == (384, 640)
    for bad in ("abc", "0", (1, 2, 3)):
        with pytest.raises(ConfigError):
            normalize_imgsz(bad)


def test_yolo11n_from_ultralytics_yaml_and_reingest(tmp_path, monkeypatch):
    """Real Ultralytics export (random weights), offline, then the exported ONNX goes through again."""
    monkeypatch.chdir(tmp_path)  # an export must not write into the cwd either
    m = load_model("yolo11n.yaml", imgsz=(64, 96), workdir=tmp_path / "out")
    assert m.info.output_layout == "yolov8" and m.info.task == "detect"
    assert m.info.inputs[0].shape == [1, 3, 64, 96]
    assert m.info.outputs[0].shape == [1, 84, 126]
    assert len(m.info.names) == 80 and m.info.preprocess.stride == 32 and m.info.opset == 17
    assert any("export success" in line for line in m.log)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    again = load_model(m.onnx_path, workdir=tmp_path / "again")
    assert again.info.outputs == m.info.outputs and again.info.names == m.info.names
