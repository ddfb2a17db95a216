"""`edgeinfer build` without TensorRT: one-line JetPack hint, exit 1, bundle untouched."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import write_bundle

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
