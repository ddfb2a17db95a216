"""The nvparse tier: NVIDIA's own ONNX parser and builder (TensorRT-RTX, ahead of time on the CPU).

Tests that need the parser carry ``pytestmark = NEEDS_PARSER``: they skip, with the reason, only when
``tensorrt_rtx_bindings`` is absent (CI installs it through ``edgeinfer[verify]``). Tiny models are made
here with onnx.helper; the demo bundles come from the real CLI.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HAS_RTX = importlib.util.find_spec("tensorrt_rtx_bindings") is not None
NEEDS_PARSER = [pytest.mark.nvparse, pytest.mark.skipif(
    not HAS_RTX, reason="needs NVIDIA's parser: pip install 'edgeinfer[verify]' (tensorrt_rtx_bindings)")]


def tiny_conv_model(path: Path, *, opset: int = 17, reduce_mean: bool = False, dynamic: bool = False) -> Path:
    """images[1,3,32,32] -> Conv(bias) -> Relu -> Conv(bias) -> out; node names /c1, /r1, /c2 (optionally /rm)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.2, (4, 8, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.1, (4,)).astype(np.float32), "b2")]
    nodes = [helper.make_node("Conv", ["images", "w1", "b1"], ["t1"], name="/c1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["t1"], ["t2"], name="/r1"),
             helper.make_node("Conv", ["t2", "w2", "b2"], ["t3" if reduce_mean else "out"], name="/c2", pads=[1, 1, 1, 1])]
    out_shape = [1, 4, 32, 32]
    if reduce_mean:  # ReduceMean-18 takes axes as an input: an opset-18 graph
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "axes"))
        nodes.append(helper.make_node("ReduceMean", ["t3", "axes"], ["out"], name="/rm", keepdims=1))
        out_shape = [1, 1, 32, 32]
    in_shape = ["n", 3, "h", "w"] if dynamic else [1, 3, 32, 32]
    out_shape = ["n", out_shape[1], "h", "w"] if dynamic else out_shape
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ort_qdq_with_int32_bias(src: Path, dst: Path) -> Path:
    """Q/DQ as ONNX Runtime's quantize_static makes it by default (QuantizeBias on): INT32 bias DequantizeLinear."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(1)
            self._data = iter([{"images": rng.random((1, 3, 32, 32), np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self._data, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, per_channel=True)
    return dst


def run_edgeinfer(*args, env=None, prelude: str = "", timeout: int = 900) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess; ``prelude`` runs first (e.g. to hide a module)."""
    code = f"{prelude}\nfrom edgeinfer.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def manifest_verification(bundle: Path) -> dict:
    from edgeinfer.bundle import open_bundle

    return open_bundle(bundle).manifest["verification"]


def inspect_verify_json(bundle: Path) -> tuple:
    r = run_edgeinfer("inspect", bundle, "--verify", "--json")
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr
