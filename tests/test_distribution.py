"""The package as users get it: `python -m build` makes an sdist and a wheel, `twine check` accepts
both, and the wheel installs into a fresh venv (host + runtime extras, no torch) where `edgeinfer demo`
runs end to end. This is what `pip install` from a clone or a published wheel gives a new user."""
from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict:
    pytest.importorskip("build", reason="needs 'build' (dev extra)")
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend (setuptools) is already in this venv; an isolated build would
    # fetch it from the index again on every run.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO], timeout=600)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_twine_check_accepts_sdist_and_wheel(dists):
    pytest.importorskip("twine", reason="needs 'twine' (dev extra)")
    proc = _run([sys.executable, "-m", "twine", "check", "--strict", dists["wheel"], dists["sdist"]], timeout=120)
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_wheel_carries_data_and_no_tests(dists):
    import zipfile

    names = zipfile.ZipFile(dists["wheel"]).namelist()
    assert "edgeinfer/_data/demo/shapes-yolo11n-320.onnx" in names
    assert any(n.startswith("edgeinfer/_data/device_profiles/") and n.endswith(".yaml") for n in names)
    assert not any(n.startswith("tests/") for n in names)


def test_wheel_installs_in_fresh_venv_and_runs_demo(dists, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    _run([py, "-m", "pip", "install", "-q", f"{dists['wheel']}[host,runtime]"], timeout=900)
    # The host extras must not drag torch in: .pt export is its own extra.
    probe = subprocess.run([py, "-c", "import torch"], capture_output=True, text=True)
    assert probe.returncode != 0, "torch was installed by edgeinfer[host,runtime]"
    work = tmp_path / "demo"
    proc = _run([env_dir / "bin" / "edgeinfer", "demo", "--workdir", work, "--frames", "30"],
                timeout=1200, cwd=tmp_path)
    assert (work / "shapes.bundle" / "manifest.json").is_file() or any(work.glob("shapes.bundle*")), proc.stdout
    mp4s = list(work.glob("*.mp4"))
    assert mp4s and all(p.stat().st_size > 0 for p in mp4s), proc.stdout[-2000:]
