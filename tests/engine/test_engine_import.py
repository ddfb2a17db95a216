"""Engines built by hand with a recipe's trtexec command: every bundle has the engines/ folder the
command writes into, and `edgeinfer build BUNDLE --import ENGINE` records the file so the runtime's
selection finds it (TensorRT is the table-generated stand-in; the jetson tier runs real trtexec)."""
from __future__ import annotations

import json
import shlex
import struct
from pathlib import Path

import pytest
from engine_helpers import JP62, ORIN_NX, SHAPE, write_bundle
from test_build_cli import _standin_path
from trt_standin import make_standin

from edgeinfer._deps import is_available
from edgeinfer.bundle import open_bundle
from edgeinfer.bundle.archive import pack_archive
from edgeinfer.engine import select_engine
from edgeinfer.engine.builder import BuildSpec, build_engine

DETECTED = {"profile": ORIN_NX, "l4t": "36.4.3", "jetpack": JP62}
NOT_A_JETSON = {"EDGEINFER_TEGRA_RELEASE": "/nonexistent/nv_tegra_release"}
no_real_trt = pytest.mark.skipif(is_available("tensorrt"), reason="TensorRT is installed: the stand-in cannot be injected")


def _recipe(bundle_path: Path) -> dict:
    return open_bundle(bundle_path).device("orin-nx-16gb").recipes["jp6.2-trt10.3"]


def _hand_build(bundle_path: Path, recipe: dict) -> Path:
    """What running the recipe's trtexec command inside the bundle does: parse the recipe's ONNX
    and write the plan to --saveEngine (here the builder drives the TensorRT stand-in)."""
    a = shlex.split(recipe["trtexec"])
    onnx = next(x.split("=", 1)[1] for x in a if x.startswith("--onnx="))
    out = bundle_path / next(x.split("=", 1)[1] for x in a if x.startswith("--saveEngine="))
    result = build_engine(BuildSpec(onnx_path=bundle_path / onnx, precision="int8", input_shapes={"images": SHAPE},
                                    calib_cache=bundle_path / recipe["calib_cache"], dla_core=recipe["dla_core"],
                                    gpu_layers=tuple(recipe["gpu_layers"])), trt=make_standin("10.3"))
    out.write_bytes(result.plan)  # no mkdir: trtexec does not create engines/ either
    return out


def test_every_bundle_has_the_engines_folder_the_recipes_write_into(model_files, tmp_path):
    path = write_bundle(tmp_path / "b.bundle", model_files)
    assert (path / _recipe(path)["engine_file"]).parent.is_dir()
    pack_archive(path, tmp_path / "b.bundle.tar")  # packs files only: the folder must hold one
    extracted = open_bundle(tmp_path / "b.bundle.tar")
    assert (extracted.root / "engines").is_dir()
    assert "--import" in (extracted.root / "engines" / "README.txt").read_text()


@no_real_trt
def test_hand_built_engine_is_imported_keyed_and_selected(run_cli, model_files, tmp_path):
    plan = {"decision": "dla", "dla_core": 0, "gpu_layers": ["/model.23/Reshape"],
            "nodes": [{"name": "/model.1/conv/Conv", "device": "dla"}, {"name": "/model.23/Reshape", "device": "gpu"}]}
    path = write_bundle(tmp_path / "b.bundle", model_files, placement=plan)
    recipe = _recipe(path)
    assert recipe["import_command"].endswith(f"--import {recipe['engine_file']}")
    engine = _hand_build(path, recipe)
    env = dict(NOT_A_JETSON, PYTHONPATH=_standin_path(tmp_path, "10.3"))
    result = run_cli("build", path, "--import", engine, "--json", env=env)
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["key"]["tensorrt"] == "10.3.0.30"  # the running TensorRT's full version, not the recipe's 10.3
    assert record["key"]["dla_core"] == 0 and record["imported"]["checked_with_tensorrt"]
    assert record["placement"]["actual"]["dla"] >= 1 and record["io"][0]["shape"] == list(SHAPE)
    selected = select_engine(open_bundle(path), device=DETECTED, tensorrt_version="10.3.0.30")
    assert selected.path.name == Path(record["path"]).name and selected.path.read_bytes() == engine.read_bytes()


@no_real_trt
@pytest.mark.parametrize("make, expected", [
    (lambda p: p / "engines" / "missing.engine", "does not exist"),
    (lambda p: _touch(p / "engines" / "empty.engine", b""), "is empty"),
    (lambda p: _touch(p / "engines" / "yolo.engine", _ultralytics(b"plan")), "Ultralytics"),
])
def test_import_refuses_bad_files_and_writes_nothing(run_cli, model_files, tmp_path, make, expected):
    path = write_bundle(tmp_path / "b.bundle", model_files)
    engine = make(path)
    before = (path / "manifest.yaml").read_bytes()
    result = run_cli("build", path, "--import", engine, "--device", "orin-nx-16gb", env=NOT_A_JETSON)
    assert result.returncode == 1 and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert (path / "manifest.yaml").read_bytes() == before


@no_real_trt
def test_import_without_tensorrt_needs_the_full_version(run_cli, model_files, tmp_path):
    path = write_bundle(tmp_path / "b.bundle", model_files)
    engine = _touch(path / _recipe(path)["engine_file"], b"plan bytes copied from the device")
    result = run_cli("build", path, "--import", engine, env=NOT_A_JETSON)
    assert result.returncode == 1 and "--tensorrt" in result.stderr
    result = run_cli("build", path, "--import", engine, "--tensorrt", "10.3.0.30", "--json", env=NOT_A_JETSON)
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["key"]["tensorrt"] == "10.3.0.30" and not record["imported"]["checked_with_tensorrt"]
    assert select_engine(open_bundle(path), device=DETECTED, tensorrt_version="10.3.0.30").path.is_file()


@no_real_trt
def test_import_refuses_an_engine_the_runtime_would_never_select(run_cli, model_files, tmp_path):
    path = write_bundle(tmp_path / "b.bundle", model_files)  # the entry is int8
    name = Path(_recipe(path)["engine_file"]).name.replace("_int8_", "_fp16_")
    engine = _touch(path / "engines" / name, b"plan")
    result = run_cli("build", path, "--import", engine, "--tensorrt", "10.3.0.30", env=NOT_A_JETSON)
    assert result.returncode == 1 and "fp16 engine" in result.stderr and "int8" in result.stderr


def _touch(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _ultralytics(plan: bytes) -> bytes:
    meta = json.dumps({"description": "Ultralytics YOLO11n", "imgsz": [320, 320]}).encode()
    return struct.pack("<i", len(meta)) + meta + plan
