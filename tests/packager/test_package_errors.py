"""`edgeinfer package` bad input: one clear error line, exit 1, nothing written."""
from __future__ import annotations

import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def _conv_model(path, *, batch=1):
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(8, 3, 3, 3)).astype(np.float32), name="w")
    node = helper.make_node("Conv", ["images", "w"], ["out"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    relu = helper.make_node("Relu", ["out"], ["output0"], name="relu")
    graph = helper.make_graph([node, relu], "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 32, 32])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 8, 32, 32])], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture()
def model(tmp_path):
    return _conv_model(tmp_path / "tiny.onnx")


@pytest.fixture()
def tmpfs(tmp_path):
    """mount(size, *options) -> a directory on its own tmpfs (a real read-only or full disk)."""
    mounts = []

    def mount(size: str, *options: str):
        where = tmp_path / f"fs{len(mounts)}"
        where.mkdir()
        opts = ",".join((f"size={size}",) + options)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs (needs root or CAP_SYS_ADMIN): {res.stderr.strip()}")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(directory):
    with open(directory / "filler", "wb", buffering=0) as fh:
        for size in (65536, 4096, 1):
            try:
                while True:
                    fh.write(b"\0" * size)
            except OSError:
                pass


def _assert_clean_failure(result, out, *needles):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for needle in needles:
        assert needle in error_lines[0], error_lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def test_corrupt_onnx(run_cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf")
    out = tmp_path / "b.bundle"
    r = run_cli("package", bad, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out)
    _assert_clean_failure(r, out, "bad.onnx")


def test_unknown_device(run_cli, model, tmp_path):
    out = tmp_path / "b.bundle"
    r = run_cli("package", model, "--device", "orin-nx-16", "-o", out)
    _assert_clean_failure(r, out, "orin-nx-16", "did you mean")


def test_int8_without_calibration(run_cli, model, tmp_path):
    out = tmp_path / "b.bundle"
    r = run_cli("package", model, "--device", "orin-nano-8gb", "--precision", "int8", "-o", out)
    _assert_clean_failure(r, out, "needs calibration images", "--calib")


def test_missing_calibration_set(run_cli, model, tmp_path):
    out = tmp_path / "b.bundle"
    r = run_cli("package", model, "--device", "orin-nano-8gb", "--precision", "int8", "--calib", tmp_path / "nope", "-o", out)
    _assert_clean_failure(r, out, "does not exist")


def test_dynamic_shapes_with_forced_dla(run_cli, tmp_path):
    model = _conv_model(tmp_path / "dyn.onnx", batch="batch")
    out = tmp_path / "b.bundle"
    r = run_cli("package", model, "--device", "orin-nx-16gb", "--precision", "fp16", "--dynamic", "--dla", "0", "-o", out)
    _assert_clean_failure(r, out, "dynamic input shapes")
    assert "--imgsz" in r.stderr


def test_forced_dla_core_missing_on_module(run_cli, model, tmp_path):
    out = tmp_path / "b.bundle"
    r = run_cli("package", model, "--device", "orin-nx-8gb", "--precision", "fp16", "--dla", "1", "-o", out)
    _assert_clean_failure(r, out, "orin-nx-8gb has 1 DLA core")


def test_existing_bundle_needs_force(run_cli, model, tmp_path):
    out = tmp_path / "b.bundle"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = run_cli("package", model, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out)
    assert r.returncode == 1 and "already exists" in r.stderr and "--force" in r.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_read_only_directory(run_cli, model, tmpfs):
    out = tmpfs("1m", "ro") / "b.bundle"
    r = run_cli("package", model, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out)
    _assert_clean_failure(r, out, "read-only file system", str(out.parent))


def test_parent_is_a_file(run_cli, model, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    for out in (blocker / "b.bundle", blocker / "sub" / "b.bundle"):
        r = run_cli("package", model, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        error_lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(error_lines) == 1 and f"{blocker} is a file, not a directory" in error_lines[0], r.stderr
        assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir", "tiny.onnx"]


@pytest.mark.parametrize("archive", [False, True])
def test_disk_full(run_cli, model, tmpfs, archive):
    disk = tmpfs("1m")
    _fill(disk)
    out = disk / ("b.bundle.tar" if archive else "b.bundle")
    args = ["--archive"] if archive else []
    r = run_cli("package", model, "--device", "orin-nano-8gb", "--precision", "fp16", "-o", out, *args)
    _assert_clean_failure(r, out, "no space left", str(disk))
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no partial dir or temp file left
