"""`edgeinfer package` / `inspect` end to end through the real CLI on the demo model."""
from __future__ import annotations

import json

import pytest

from edgeinfer.bundle import open_bundle
from edgeinfer.demo import demo_model_path, make_dataset


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("shapes"), n_train=1, n_val=16, n_test=1, imgsz=320, seed=3)
    return root / "images" / "val"


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory, calib_dir):
    """One INT8 package run for two Orin modules, shared by the tests below (calibration is the slow part)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("pkg") / "shapes.bundle"
    result = subprocess.run(
        [sys.executable, "-m", "edgeinfer", "package", str(demo_model_path("onnx")), "--device", "orin-nx-16gb,orin-nano-8gb",
         "--precision", "int8", "--calib", str(calib_dir), "-o", str(out), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout), result.stderr


@pytest.mark.slow  # shares one INT8 packaging run (minmax calibration + accuracy gate): ~30-60 s
def test_package_int8_two_devices_one_bundle(int8_bundle):
    out, summary, stderr = int8_bundle
    bundle = open_bundle(out)  # verifies every checksum
    assert sorted(bundle.devices) == ["orin-nano-8gb", "orin-nx-16gb"]
    assert set(summary["devices"]) == {"orin-nano-8gb", "orin-nx-16gb"}
    assert "calibrate" in stderr  # progress line on stderr, JSON alone on stdout
    nx, nano = bundle.device("orin-nx-16gb"), bundle.device("orin-nano-8gb")
    assert nx.precision == nano.precision == "int8"
    # identical artifacts are stored once and shared; caches differ by TensorRT version in their header
    assert nx.artifacts["onnx"] == nano.artifacts["onnx"] and nx.artifacts["qdq_onnx"] == nano.artifacts["qdq_onnx"]
    assert nx.jetpack["tensorrt"] != nano.jetpack["tensorrt"]
    assert nx.artifacts["calib_cache"] != nano.artifacts["calib_cache"]
    for entry in (nx, nano):
        header = bundle.artifact_path(entry.name, "calib_cache").read_text().splitlines()[0]
        # the DLA's calibrator reads the cache whatever method made the ranges
        assert header.startswith("TRT-") and header.endswith("-EntropyCalibration2")
        assert entry.calibration["images"] == 16 and len(entry.calibration["data_sha256"]) == 64
        assert all(r["trtexec"].startswith("/usr/src/tensorrt/bin/trtexec --onnx=") for r in entry.recipes.values())
        # a static model: trtexec refuses --shapes for it (issue 11 §2.2)
        assert not any("--shapes=" in r["trtexec"] for r in entry.recipes.values())
        # layers the accuracy gate kept in float are pinned to FP16 by every weakly typed INT8 recipe
        kept = sorted(entry.accuracy.get("excluded_layers") or [])
        for r in entry.recipes.values():
            weak = r["network"] != "strongly-typed" and int(r["tensorrt"].split(".")[0]) <= 10
            assert r["float_layers"] == (kept if weak else [])
            assert ("--precisionConstraints=obey" in r["trtexec"]) == bool(weak and kept)
    assert (bundle.root / "engines" / "README.txt").is_file()  # the recipes' --saveEngine=engines/... folder
    stored = [p for p in (bundle.root / "artifacts").iterdir()]
    versions = {r["tensorrt"] for e in (nx, nano) for r in e.recipes.values() if r.get("calib_cache")}
    assert versions >= {"8.5.2", "8.6.2", "10.3"}  # JetPack 5, 6.0 and 6.1+ recipes each read their own header
    assert len(stored) == 2 + len(versions)  # onnx + qdq shared, one cache per TensorRT version of any recipe
    # one default method for every device, DLA included (entropy clips YOLO's activations)
    assert nx.calibration["method"] == nano.calibration["method"] == "minmax"
    assert nano.placement["decision"] == "gpu" and "no DLA" in nano.placement["reason"]


@pytest.mark.slow  # shares one INT8 packaging run (minmax calibration + accuracy gate): ~30-60 s
def test_inspect_json_shape(run_cli, int8_bundle):
    out, package_summary, _ = int8_bundle
    r = run_cli("inspect", out, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data == package_summary
    assert data["summary_version"] == 1 and data["schema_version"] == 1
    assert data["model"]["class_names"] == {"0": "rect", "1": "circle", "2": "triangle"}
    shared = [a for a in data["artifacts"] if len(a["used_by"]) == 2]
    assert {a["used_by"][0].split(":")[1] for a in shared} == {"onnx", "qdq_onnx"}
    dev = data["devices"]["orin-nx-16gb"]
    assert set(dev) >= {"precision", "jetpack", "placement", "accuracy", "calibration", "recipes", "engines", "artifacts"}
    assert set(dev["placement"]) >= {"decision", "reason", "dla_nodes", "gpu_nodes", "dla_subgraphs", "transitions",
                                     "dla_flops_share", "top_reasons"}
    assert dev["engines"] == []
    target = [r for r in dev["recipes"].values() if r["tensorrt"] == dev["jetpack"]["tensorrt"]]
    assert target and "--int8" in target[0]["trtexec"]


@pytest.mark.slow  # shares one INT8 packaging run (minmax calibration + accuracy gate): ~30-60 s
def test_inspect_text_and_tampered_bundle(run_cli, int8_bundle, tmp_path):
    import shutil

    out, _, _ = int8_bundle
    r = run_cli("inspect", out)
    assert r.returncode == 0 and "device orin-nx-16gb" in r.stdout and "trtexec" in r.stdout
    copy = tmp_path / "copy.bundle"
    shutil.copytree(out, copy)
    victim = next((copy / "artifacts").glob("*.cache"))
    victim.write_text(victim.read_text().replace("TRT-", "TRX-", 1))
    r = run_cli("inspect", copy)
    assert r.returncode == 1 and "sha256 mismatch" in r.stderr and "Traceback" not in r.stderr


def test_build_without_tensorrt_leaves_a_valid_bundle(run_cli, tmp_path):
    out = tmp_path / "b.bundle"
    r = run_cli("package", demo_model_path("onnx"), "--device", "orin-nx", "--precision", "fp16", "--build", "-o", out)
    resolved = [line for line in r.stdout.splitlines() if line.startswith("devices: orin-nx -> ")]
    assert len(resolved) == 1 and set(resolved[0].split("-> ")[1].split(", ")) == {"orin-nx-16gb", "orin-nx-8gb"}
    assert r.returncode == 1 and "tensorrt" in r.stderr.lower() and "Traceback" not in r.stderr
    bundle = open_bundle(out)
    assert sorted(bundle.devices) == ["orin-nx-16gb", "orin-nx-8gb"]
    assert all(bundle.device(d).engines == [] for d in bundle.devices)
    fp16 = {bundle.device(d).artifacts["fp16_onnx"] for d in bundle.devices}
    assert len(fp16) == 1  # one FP16 ONNX shared by both modules


def test_empty_calibration_set(run_cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "b.bundle"
    r = run_cli("package", demo_model_path("onnx"), "--device", "orin-nano-8gb", "--precision", "int8", "--calib", empty,
                "-o", out)
    assert r.returncode == 1 and "no calibration images" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["empty"]


@pytest.mark.slow
def test_package_from_pt(run_cli, tmp_path, calib_dir):
    # An empty Ultralytics config dir: the packager itself must keep the export offline (font included).
    out = tmp_path / "pt.bundle"
    r = run_cli("package", demo_model_path("pt"), "--device", "orin-nano-8gb", "--precision", "int8", "--calib", calib_dir,
                "--imgsz", "320", "-o", out, "--json", env={"YOLO_CONFIG_DIR": str(tmp_path / "ycfg"), "YOLO_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["model"]["output_layout"] == "yolov8" and data["model"]["inputs"][0]["shape"] == [1, 3, 320, 320]
    assert open_bundle(out).device("orin-nano-8gb").artifacts.keys() >= {"onnx", "qdq_onnx", "calib_cache"}
