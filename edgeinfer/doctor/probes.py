"""Read-only probes of a (possibly fake) root file system: versions, DLA, clocks, sockets, disk.

Every function takes ``root`` so the doctor can be pointed at a fixture tree; nothing here imports
an optional module or runs a command unless asked to (``nvpmodel -q`` only on the real root).

Example:
    >>> parse_dpkg_status("Package: libnvinfer10\\nStatus: install ok installed\\nVersion: 10.3.0.30-1+cuda12.5\\n")
    {'libnvinfer10': '10.3.0.30-1+cuda12.5'}
"""
from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

# devfreq node names of the integrated GPU: Xavier gv11b, Orin ga10b, Thor gb10b, or "gpu" (JP6 bus@0 names).
_GPU_DEVFREQ = ("gpu", "gv11b", "ga10b", "gb10b", "gp10b", "gm20b")


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def parse_dpkg_status(text: str) -> Dict[str, str]:
    """Installed package -> version from a dpkg ``status`` file."""
    installed: Dict[str, str] = {}
    for para in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", para, re.MULTILINE))
        # "install ok installed" counts; "deinstall ok config-files" and "purge ok not-installed" do not.
        if fields.get("Package") and fields.get("Version") and fields.get("Status", "").split()[-1:] == ["installed"]:
            installed[fields["Package"]] = fields["Version"]
    return installed


def dpkg_packages(root: Path) -> Dict[str, str]:
    text = _read(root / "var" / "lib" / "dpkg" / "status")
    return parse_dpkg_status(text) if text else {}


def upstream_version(deb_version: str) -> str:
    """``10.3.0.30-1+cuda12.5`` -> ``10.3.0.30``; ``1:4.5.4-8`` -> ``4.5.4``."""
    version = deb_version.split(":", 1)[-1]
    return re.split(r"[-+~]", version, maxsplit=1)[0]


def find_package(packages: Dict[str, str], pattern: str) -> Optional[Tuple[str, str]]:
    """The first (name, upstream version) whose name matches ``pattern`` (regex, full match)."""
    for name in sorted(packages):
        if re.fullmatch(pattern, name):
            return name, upstream_version(packages[name])
    return None


def cuda_version(root: Path, packages: Dict[str, str]) -> Tuple[Optional[str], str]:
    """(version, where it came from): version.json (JP5+), version.txt (JP4), else the cudart package."""
    cuda = root / "usr" / "local" / "cuda"
    text = _read(cuda / "version.json")
    if text:
        try:
            return str(json.loads(text)["cuda"]["version"]), str(cuda / "version.json")
        except (ValueError, KeyError, TypeError):
            pass
    text = _read(cuda / "version.txt")
    match = re.search(r"CUDA Version\s+([\d.]+)", text or "")
    if match:
        return match.group(1), str(cuda / "version.txt")
    found = find_package(packages, r"cuda-cudart-\d+-\d+")
    if found:
        return found[1], f"dpkg {found[0]}"
    return None, ""


def cudnn_version(root: Path, packages: Dict[str, str]) -> Tuple[Optional[str], str]:
    """(version, source) from the libcudnn package, else cudnn_version*.h."""
    found = find_package(packages, r"libcudnn\d+(-cuda-\d+)?")
    if found:
        return found[1], f"dpkg {found[0]}"
    include = root / "usr" / "include"
    # JetPack puts it in /usr/include or /usr/include/<triplet>/ (cudnn_version_v8.h); no deeper walk.
    for header in sorted(list(include.glob("cudnn_version*.h")) + list(include.glob("*/cudnn_version*.h"))):
        text = _read(header) or ""
        parts = [re.search(rf"#define CUDNN_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR", "PATCHLEVEL")]
        if all(parts):
            return ".".join(m.group(1) for m in parts), str(header)
    return None, ""


def tensorrt_package(packages: Dict[str, str]) -> Optional[Tuple[str, str]]:
    """The installed libnvinfer runtime package (libnvinfer8 / libnvinfer10 / ...)."""
    return find_package(packages, r"libnvinfer\d+")


def version_matches(installed: str, expected: str) -> bool:
    """Whether ``installed`` (e.g. 10.3.0.30) is the ``expected`` release (e.g. 10.3)."""
    have = installed.split(".")
    want = expected.split(".")
    return have[: len(want)] == want


def dla_sysfs_count(root: Path) -> Optional[int]:
    """DLA engines the kernel exposes (``*.nvdla0``, ``*.nvdla1``), or None without that sysfs dir."""
    devices = root / "sys" / "bus" / "platform" / "devices"
    if not devices.is_dir():
        return None
    return sum(1 for p in devices.iterdir() if re.search(r"\.nvdla\d+$", p.name))


def gpu_clocks(root: Path) -> Optional[Dict[str, Any]]:
    """Current/min/max GPU clock in MHz from devfreq; ``pinned`` when min == max (jetson_clocks)."""
    base = root / "sys" / "class" / "devfreq"
    if not base.is_dir():
        return None
    for node in sorted(base.iterdir()):
        if not any(tag in node.name.lower() for tag in _GPU_DEVFREQ):
            continue
        values = {k: _read(node / f"{k}_freq") for k in ("cur", "min", "max")}
        if all(v and v.isdigit() for v in values.values()):
            mhz = {k: round(int(v) / 1e6, 1) for k, v in values.items()}
            return {"node": node.name, "cur_mhz": mhz["cur"], "min_mhz": mhz["min"], "max_mhz": mhz["max"],
                    "pinned": mhz["min"] == mhz["max"]}
    return None


def nvpmodel_query(*, timeout: float = 5.0) -> Optional[Dict[str, Any]]:
    """``nvpmodel -q`` on the real machine: {"id", "name"}; None when the tool is absent or fails."""
    exe = shutil.which("nvpmodel")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-q"], capture_output=True, text=True, timeout=timeout).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    name = re.search(r"NV Power Mode:\s*(\S+)", out)
    ident = re.search(r"^\s*(\d+)\s*$", out, re.MULTILINE)
    if not name:
        return None
    return {"id": int(ident.group(1)) if ident else None, "name": name.group(1)}


def nvpmodel_default(root: Path) -> Optional[int]:
    """The default mode id from ``/etc/nvpmodel.conf`` (``< PM_CONFIG DEFAULT=2 >``)."""
    match = re.search(r"<\s*PM_CONFIG\s+DEFAULT=(\d+)", _read(root / "etc" / "nvpmodel.conf") or "")
    return int(match.group(1)) if match else None


def is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def os_release(root: Path) -> str:
    """PRETTY_NAME from /etc/os-release, or an empty string."""
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', _read(root / "etc" / "os-release") or "", re.MULTILINE)
    return match.group(1) if match else ""


def free_space(path: Path) -> Dict[str, Any]:
    """Free bytes and writability for ``path`` (or its nearest existing parent: it may not exist yet)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(str(probe))
    return {"path": str(path), "exists": path.exists(), "measured_at": str(probe), "free_bytes": usage.free,
            "writable": os.access(str(probe), os.W_OK)}
