"""Static checks that keep device-side code honest: Python 3.8 syntax/APIs (vermin) and lint (ruff).

Devices run their JetPack's Python (3.8 on JetPack 5); no 3.8 interpreter can be installed on
CI, so vermin checks the minimum version statically. Host-only packaging modules may need 3.10+.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "edgeinfer"
# Host-side only: model ingestion/export, INT8, placement, the packager (and its CLI command).
HOST_ONLY = {"quantize", "placement", "packager"}
HOST_ONLY_FILES = {"cli/package_cmd.py"}
# info.py and layout.py are read on the device (bundles, plain-ONNX loading); the rest of model/ is host-only.
HOST_ONLY_MODEL_FILES_ALLOWED_38 = {"info.py", "layout.py", "__init__.py"}


def _device_side_files():
    files = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG)
        if rel.parts[0] in HOST_ONLY or str(rel) in HOST_ONLY_FILES:
            continue
        if rel.parts[0] == "model" and rel.name not in HOST_ONLY_MODEL_FILES_ALLOWED_38:
            continue
        files.append(path)
    return files


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: pip install 'edgeinfer[dev]'")
    return found


def test_device_side_code_runs_on_python_38():
    files = _device_side_files()
    assert len(files) > 5
    proc = subprocess.run(
        [_tool("vermin"), "-t=3.8-", "--no-tips", "--violations", "--no-parse-comments", *map(str, files)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"code that needs Python > 3.8 on the device side:\n{proc.stdout}\n{proc.stderr}"


def test_device_side_modules_defer_annotation_evaluation():
    # `list[int]` in an annotation is fine on 3.8 only when annotations are not evaluated.
    missing = [str(p.relative_to(REPO)) for p in _device_side_files()
               if p.read_text().strip() and "from __future__ import annotations" not in p.read_text()
               and p.name != "__main__.py"]
    assert missing == []


def test_ruff_is_clean():
    proc = subprocess.run([_tool("ruff"), "check", "edgeinfer", "tests", "scripts"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
