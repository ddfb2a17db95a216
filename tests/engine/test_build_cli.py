"""`edgeinfer build` without TensorRT: one-line JetPack hint, exit 1, bundle untouched."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from engine_helpers import write_bundle

from edgeinfer._deps import is_available

pytestmark = pytest.mark.skipif(is_available("tensorrt"), reason="TensorRT is installed here; this tests its absence")


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_build_without_tensorrt_on_a_jetson_prints_the_jetpack_hint(run_cli, model_files, tmp_path):
    bundle = write_bundle(tmp_path / "b.bundle", model_files)
    before = _tree_digest(tmp_path)
    release = tmp_path.parent / f"{tmp_path.name}-nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic, EABI: aarch64\n")
    result = run_cli("build", bundle, "--dla-core", "0", env={"EDGEINFER_TEGRA_RELEASE": str(release)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: 'tensorrt' is needed for building TensorRT engines")
    assert "sudo apt install python3-libnvinfer" in lines[0] and "Traceback" not in result.stderr
    assert _tree_digest(tmp_path) == before  # nothing written, not even a lock file


def test_build_without_tensorrt_on_a_host(run_cli, model_files, tmp_path):
    bundle = write_bundle(tmp_path / "b.bundle", model_files)
    before = _tree_digest(tmp_path)
    result = run_cli("build", bundle, env={"EDGEINFER_TEGRA_RELEASE": str(tmp_path / "absent")})
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "JetPack" in result.stderr
    assert _tree_digest(tmp_path) == before


def test_bad_dla_core_is_a_usage_error(run_cli, model_files, tmp_path):
    bundle = write_bundle(tmp_path / "b.bundle", model_files)
    result = run_cli("build", bundle, "--dla-core", "two")
    assert result.returncode == 2 and "--dla-core" in result.stderr


def _standin_path(tmp_path: Path, version: str) -> str:
    """A directory whose `tensorrt` module is the table-generated stand-in (for the CLI subprocess)."""
    shim_dir = tmp_path / "standin_site"
    shim_dir.mkdir()
    (shim_dir / "tensorrt.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from trt_standin import make_standin\n"
        f"sys.modules[__name__] = make_standin({version!r})\n")
    return str(shim_dir)


def test_build_cli_adds_the_engine_and_reports_placement(run_cli, model_files, tmp_path):
    import json

    from edgeinfer.bundle import open_bundle

    bundle = write_bundle(tmp_path / "b.bundle", model_files,
                          placement={"decision": "dla", "dla_core": 0, "nodes": [{"name": "/model.23/Softmax", "device": "DLA"}]})
    env = {"PYTHONPATH": _standin_path(tmp_path, "10.3"), "EDGEINFER_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("build", bundle, "--device", "orin-nx-16gb", env=env)
    assert result.returncode == 0, result.stderr
    assert "built engines/orin-nx-16gb_jp6.2-l4t36.4.3_trt10.3.0.30_sm87_int8_images-1x3x32x32_dla0.engine" in result.stdout
    assert "/model.23/Softmax: planned dla, runs on gpu" in result.stdout
    assert len(open_bundle(bundle).device("orin-nx-16gb").engines) == 1
    # keyed by the full TensorRT version: another patch release never opens it
    assert (tmp_path / "cache" / "timing" / "timing-trt10.3.0.30-sm87.cache").is_file()
    result = run_cli("build", bundle, "--device", "orin-nx-16gb", "--dla-core", "gpu", "--json", env=env)
    (record,) = json.loads(result.stdout)
    assert record["key"]["dla_core"] is None and len(open_bundle(bundle).device("orin-nx-16gb").engines) == 2


def test_build_cli_pins_the_float_layers_the_manifest_records(run_cli, model_files, tmp_path):
    import json

    bundle = write_bundle(tmp_path / "b.bundle", model_files, placement={},
                          accuracy={"precision": "int8", "excluded_layers": ["/model.0/conv/Conv"]})
    env = {"PYTHONPATH": _standin_path(tmp_path, "10.3"), "EDGEINFER_CACHE_DIR": str(tmp_path / "cache")}
    result = run_cli("build", bundle, "--device", "orin-nx-16gb", "--json", env=env)
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert record["settings"]["float_layers"] == ["/model.0/conv/Conv"]
    assert record["settings"]["precision_constraints"] == "obey"
