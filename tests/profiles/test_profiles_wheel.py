"""A non-editable install (a built wheel, outside the repo) still finds the shipped profiles."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_ships_profiles_and_they_load(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(REPO / "pyproject.toml", src)
    readme = REPO / "README.md"
    (src / "README.md").write_text(readme.read_text() if readme.exists() else "edgeinfer\n")
    shutil.copytree(REPO / "edgeinfer", src / "edgeinfer", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("edgeinfer-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(site)
    shipped = sorted(Path(n).name for n in names if n.startswith("edgeinfer/_data/device_profiles/"))
    assert shipped == sorted(p.name for p in (REPO / "device_profiles").glob("*.yaml"))
    # -I: isolated, so neither the repo nor the editable install can be picked up.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import edgeinfer.profiles as p; "
            "assert p.__file__.startswith(sys.argv[1]), p.__file__; print(len(p.list_profiles()))")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(site)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(shipped))
