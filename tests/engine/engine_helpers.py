"""Shared pieces of the engine tests, imported by name (``from engine_helpers import ...``): a uniquely
named module, because every test folder has a ``conftest`` and which one ``import conftest`` finds depends on
what pytest collected first."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

ORIN_NX = {"name": "orin-nx-16gb", "display_name": "Jetson Orin NX 16GB", "families": ["orin", "orin-nx"],
           "compute_capability": "8.7", "dla_cores": 2, "dla_generation": 2,
           "defaults": {"precision": "int8", "dla": "auto", "workspace_mb": 1024}}
JP62 = {"jetpack": "6.2", "l4t": "36.4.3", "tensorrt": "10.3", "cuda": "12.6", "cudnn": "9.3", "python": "3.10",
        "ubuntu": "22.04"}
SHAPE = (1, 3, 32, 32)


def _graph(kind: str):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    dtype = np.float16 if kind == "fp16" else np.float32
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(dtype) * 0.1, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 8, 1, 1)).astype(dtype) * 0.1, "w2")
    shape = numpy_helper.from_array(np.array([1, 8, -1], dtype=np.int64), "shape")
    nodes, inits, src = [], [w1, w2, shape], "images"
    if kind == "fp16":
        nodes.append(helper.make_node("Cast", ["images"], ["images_h"], name="/in/Cast", to=TensorProto.FLOAT16))
        src = "images_h"
    if kind == "qdq":
        inits += [numpy_helper.from_array(np.array(1 / 127, dtype=np.float32), "s"),
                  numpy_helper.from_array(np.array(0, dtype=np.int8), "z")]
        nodes += [helper.make_node("QuantizeLinear", ["images", "s", "z"], ["q"], name="/in/Q"),
                  helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"], name="/in/DQ")]
        src = "dq"
    nodes += [
        helper.make_node("Conv", [src, "w1"], ["c1"], name="/model.0/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c1"], ["s1"], name="/model.0/act/Sigmoid"),
        helper.make_node("Mul", ["c1", "s1"], ["a1"], name="/model.0/act/Mul"),
        helper.make_node("Conv", ["a1", "w2"], ["c2"], name="/model.1/conv/Conv"),
        helper.make_node("Reshape", ["c2", "shape"], ["r"], name="/model.23/Reshape"),
        helper.make_node("Softmax", ["r"], ["out_h" if kind == "fp16" else "output0"], name="/model.23/Softmax", axis=1),
    ]
    if kind == "fp16":
        nodes.append(helper.make_node("Cast", ["out_h"], ["output0"], name="/out/Cast", to=TensorProto.FLOAT))
    graph = helper.make_graph(nodes, f"tiny_{kind}", [helper.make_tensor_value_info("images", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 8, 1024])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _hex_scale(amax: float) -> str:
    return f"{struct.unpack('!I', struct.pack('!f', amax / 127.0))[0]:08x}"


def write_bundle(out: Path, model_files: dict, *, precision: str = "int8", placement=None, devices=None,
                 accuracy=None) -> Path:
    """A real bundle (BundleWriter) with one device entry per profile dict in ``devices``."""
    from edgeinfer.bundle import BundleWriter
    from edgeinfer.engine import make_build_recipes

    placement = placement if placement is not None else {"dla_core": 0, "gpu_layers": ["/model.23/Reshape"]}
    info = {"inputs": [{"name": "images", "shape": list(SHAPE), "dtype": "float32"}],
            "outputs": [{"name": "output0", "shape": [1, 8, 1024], "dtype": "float32"}], "task": "generic"}
    with BundleWriter(out, force=True) as writer:
        artifacts = {"onnx": writer.add_artifact(model_files["fp32"]), "qdq_onnx": writer.add_artifact(model_files["qdq"]),
                     "fp16_onnx": writer.add_artifact(model_files["fp16"]), "calib_cache": writer.add_artifact(model_files["cache"])}
        writer.set_model(info=info, name="tiny.onnx", source_sha256="0" * 64)
        for profile, jetpack in devices or [(ORIN_NX, JP62)]:
            recipes = make_build_recipes(profile=profile, jetpacks=[jetpack], precision=precision, artifacts=artifacts,
                                         placement=placement, input_shapes={"images": SHAPE}, workspace_mb=512)
            writer.add_device(profile["name"], profile=profile, jetpack=jetpack, precision=precision,
                              artifacts=artifacts, placement=placement, recipes=recipes, accuracy=accuracy)
    return out


def crash_with_signal(signum: int) -> None:
    """Die the way a native library does (run in a child by the isolate tests)."""
    import os

    os.kill(os.getpid(), signum)


def raise_config_error(message: str) -> None:
    from edgeinfer.errors import ConfigError

    raise ConfigError(message, hint="the hint travels too")
