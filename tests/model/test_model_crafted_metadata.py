"""Crafted ONNX metadata (issue 13 item 8): a 100 kB ``names`` that CPython's parser cannot take ends in one
clear error line from `package` and `run` (exit 1, no traceback, no MemoryError), and a legitimate large
class list still reads."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgeinfer.errors import ModelError
from edgeinfer.model.layout import MAX_NAMES_CHARS, parse_imgsz, parse_names

# Each of these made ast.literal_eval raise MemoryError or RecursionError (Python 3.11).
CRAFTED = {
    "unary": "-" * 100_000 + "1",
    "sum": "+".join(["1"] * 50_000),
    "dict": "{0: " + "~" * 100_000 + "1}",
}


def _tiny(path, names: str):
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Relu", ["images"], ["out"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"names": names, "stride": "32"})
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_names_raise_a_model_error(kind):
    with pytest.raises(ModelError, match="ONNX metadata 'names'") as info:
        parse_names(CRAFTED[kind])
    assert "metadata_props" in info.value.hint


def test_oversized_and_legit_metadata():
    with pytest.raises(ModelError, match="characters long"):
        parse_names("{" + "0: 'a', " * (MAX_NAMES_CHARS // 8 + 1) + "}")
    with pytest.raises(ModelError, match="'imgsz'"):
        parse_imgsz("-" * 100_000 + "1")
    big = {i: f"class number {i}" for i in range(5000)}  # ~120 kB, flat: must still read
    assert parse_names(repr(big)) == big
    assert parse_names("not a literal") == {} and parse_imgsz("[384, 640]") == (384, 640)


def _assert_one_error_line(result, needle):
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr.replace("(MemoryError)", "")
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], result.stderr[-2000:]


def test_package_and_run_cli_refuse_crafted_names(run_cli, tmp_path):
    model = _tiny(tmp_path / "crafted.onnx", CRAFTED["unary"])
    out = tmp_path / "crafted.bundle"
    r = run_cli("package", model, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out)
    _assert_one_error_line(r, "ONNX metadata 'names'")
    assert not out.exists()
    cv2 = pytest.importorskip("cv2")
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    r = run_cli("run", model, "--source", image, "--sink", "null://", "--max-frames", "1")
    _assert_one_error_line(r, "ONNX metadata 'names'")
