"""Real models for the quantize tests: a tiny detector-like ONNX built with onnx.helper, and a
random-weight YOLO11n exported by Ultralytics at 64x64 (once per session)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def build_tiny_net(path, *, size=16, seed=0, depth=0):
    """[1,3,S,S] -> conv -> relu -> (conv -> relu) x depth -> conv -> sigmoid -> [1,2,S,S]: known tensors to
    check ranges against; ``depth`` adds middle Convs for the gate's float-layer fallback to choose from."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((2, 4, 1, 1)).astype(np.float32) * 0.3
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1")]
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")]
    last = "r1"
    for i in range(depth):
        w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.3
        inits.append(numpy_helper.from_array(w, f"wm{i}"))
        nodes += [helper.make_node("Conv", [last, f"wm{i}"], [f"cm{i}"], name=f"mid{i}", pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"cm{i}"], [f"rm{i}"], name=f"relum{i}")]
        last = f"rm{i}"
    nodes += [helper.make_node("Conv", [last, "w2"], ["c2"], name="conv2"),
              helper.make_node("Sigmoid", ["c2"], ["y"], name="sig")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, size, size])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path, w1, w2


@pytest.fixture(scope="session")
def yolo64(tmp_path_factory):
    """Random-weight YOLO11n at 64x64 through load_model (real Ultralytics export)."""
    from edgeinfer.model import load_model

    return load_model("yolo11n.yaml", imgsz=64, workdir=tmp_path_factory.mktemp("yolo64"))


@pytest.fixture()
def tiny_net():
    """The builder above (fixtures, not imports: conftest modules are not importable by name)."""
    return build_tiny_net
