"""Shared fixtures for the runtime tests: a random-weight YOLO11n ONNX and a tiny generic model."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def yolo_env(ultralytics_offline):
    """Ultralytics offline (the root conftest's session-wide config dir)."""
    return ultralytics_offline


@pytest.fixture(scope="session")
def random_yolo11n_onnx(tmp_path_factory, yolo_env) -> Path:
    """YOLO11n from yolo11n.yaml (random weights, 80 classes), exported at 320x320 static."""
    pytest.importorskip("ultralytics")
    out = tmp_path_factory.mktemp("yolo")
    cwd = os.getcwd()
    os.chdir(out)
    try:
        from ultralytics import YOLO

        path = YOLO("yolo11n.yaml").export(format="onnx", imgsz=320, opset=17, simplify=False, dynamic=False)
    finally:
        os.chdir(cwd)
    return (out / path).resolve() if not Path(path).is_absolute() else Path(path)


@pytest.fixture(scope="session")
def generic_onnx(tmp_path_factory) -> Path:
    """A non-YOLO model: out = 2 * images + 1, [1, 3, 32, 48] -> same shape."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 48])
    y = helper.make_tensor_value_info("scaled", TensorProto.FLOAT, [1, 3, 32, 48])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    graph = helper.make_graph([helper.make_node("Mul", ["images", "two"], ["t"]),
                               helper.make_node("Add", ["t", "one"], ["scaled"])],
                              "affine", [x], [y], initializer=[two, one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("generic") / "affine.onnx"
    onnx.save(model, str(path))
    return path
