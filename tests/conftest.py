"""Test tiers: unit/integration run everywhere; `gpu` needs CUDA; `jetson` needs a real Jetson.

The gpu and jetson tiers skip themselves with a reason when their hardware is absent, so the
same `pytest` command runs on CI, on the H100 device machine and on a Jetson.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _has_cuda() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _is_jetson_with_trt() -> bool:
    if not os.path.exists("/etc/nv_tegra_release"):
        return False
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None


def pytest_collection_modifyitems(config, items):
    has_cuda = _has_cuda()
    is_jetson = _is_jetson_with_trt()
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU (nvidia-smi found none); run on the device machine")
    skip_jetson = pytest.mark.skip(reason="needs a real Jetson with TensorRT (see README: 'Jetson tier')")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
        if "jetson" in item.keywords and not is_jetson:
            item.add_marker(skip_jetson)


@pytest.fixture(scope="session", autouse=True)
def ultralytics_offline(tmp_path_factory):
    """Every test (and every subprocess it starts) sees an offline Ultralytics: no DNS probe, no
    font download, settings in a temp dir instead of ~/.config."""
    from edgeinfer.model.ultralytics_export import offline_ultralytics_env

    cfg = tmp_path_factory.mktemp("ultralytics-config")
    env = offline_ultralytics_env(cfg, base={})
    os.environ.update(env)
    return Path(env["YOLO_CONFIG_DIR"])


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture()
def run_cli():
    """Run the real `edgeinfer` CLI in a subprocess; returns CompletedProcess (text)."""

    def _run(*args, env=None, cwd=None, timeout=600):
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        return subprocess.run(
            [sys.executable, "-m", "edgeinfer", *map(str, args)],
            capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout,
        )

    return _run
