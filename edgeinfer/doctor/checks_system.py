"""Checks of the machine itself: module, JetPack, CUDA/cuDNN/TensorRT packages, DLA, power, clocks, jtop.

Each function takes the shared :class:`Context` and returns one :class:`Check`; off-Jetson the
Jetson-only ones return SKIP with what the host *can* do instead.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import ProfileError
from ..profiles import DetectedDevice, detect_current_device
from . import probes
from .report import FAIL, OK, SKIP, WARN, Check


@dataclass
class Context:
    """Everything the checks share: the (fake) root, mode flags, detection and probe results."""

    root: Path
    quick: bool
    run_commands: bool
    detected: Optional[DetectedDevice] = None
    detect_error: Optional[str] = None
    is_jetson: bool = False
    packages: Dict[str, str] = field(default_factory=dict)
    modules: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, root: Path, *, quick: bool, run_commands: bool) -> Context:
        ctx = cls(root=root, quick=quick, run_commands=run_commands)
        ctx.is_jetson = (root / "etc" / "nv_tegra_release").exists()
        try:
            ctx.detected = detect_current_device(
                tegra_release=root / "etc" / "nv_tegra_release", dt_model=root / "proc" / "device-tree" / "model",
                meminfo=root / "proc" / "meminfo")
        except ProfileError as exc:
            ctx.detect_error = str(exc)
        ctx.packages = probes.dpkg_packages(root)
        return ctx


def _not_jetson(name: str, what: str) -> Check:
    return Check(name, SKIP, f"not a Jetson: {what}")


def check_device(ctx: Context) -> Check:
    if not ctx.is_jetson:
        system = probes.os_release(ctx.root) or platform.system()
        return Check("device", OK, f"{platform.machine()} host ({system}), not a Jetson: host-side packaging and "
                     "ONNX Runtime inference work here; TensorRT engines for Jetson, DLA and CSI cameras need the device",
                     data={"machine": platform.machine(), "os": system, "jetson": False})
    if ctx.detected is None:
        return Check("device", FAIL, f"Jetson not recognised: {ctx.detect_error}",
                     hint="pass the device explicitly (--device NAME, see `edgeinfer profiles`) and report the "
                          "model string from /proc/device-tree/model")
    d = ctx.detected
    mem = f", MemTotal {d.memory_total_gb:.1f} GiB" if d.memory_total_gb else ""
    return Check("device", OK, f"{d.profile.display_name} ({d.profile.name}): {d.model_string!r}{mem}",
                 data={"profile": d.profile.name, "model_string": d.model_string, "jetson": True})


def check_jetpack(ctx: Context) -> Check:
    if not ctx.is_jetson:
        return _not_jetson("jetpack", "no /etc/nv_tegra_release")
    d = ctx.detected
    if d is None:
        return Check("jetpack", FAIL, "unknown (module not recognised)", hint="see the device line above")
    if d.jetpack is None:
        return Check("jetpack", WARN, f"L4T {d.l4t}: JetPack unknown to edgeinfer",
                     hint="engines still build, but bundles cannot name this JetPack; upgrade edgeinfer or use a "
                          "JetPack listed by `edgeinfer profiles show " + d.profile.name + "`", data={"l4t": d.l4t})
    j = d.jetpack
    status, hint = OK, None
    if not j.runtime_supported:
        status = WARN
        hint = (f"JetPack {j.jetpack} ships Python {j.python}; the edgeinfer runtime needs Python 3.8+ "
                "(JetPack 5 or later). Build engines with the bundle's trtexec recipe instead")
    return Check("jetpack", status, f"L4T {d.l4t} = JetPack {j.jetpack} (TensorRT {j.tensorrt}, CUDA {j.cuda}, "
                 f"cuDNN {j.cudnn}, Python {j.python}, Ubuntu {j.ubuntu})", hint=hint,
                 data={"l4t": d.l4t, **j.to_dict()})


def _expected(ctx: Context, key: str) -> Optional[str]:
    line = ctx.detected.jetpack if ctx.detected else None
    return getattr(line, key) if line else None


def check_cuda(ctx: Context) -> Check:
    version, source = probes.cuda_version(ctx.root, ctx.packages)
    expected = _expected(ctx, "cuda")
    # CUDA patch numbers differ between toolkit, version.json and packages: compare major.minor only.
    expected = ".".join(expected.split(".")[:2]) if expected else None
    if version is None:
        if not ctx.is_jetson:
            return Check("cuda", SKIP, "no CUDA toolkit found (/usr/local/cuda): the CPU paths work without it")
        return Check("cuda", FAIL, "CUDA not found (/usr/local/cuda/version.json, dpkg cuda-cudart-*)",
                     hint="install JetPack's CUDA: sudo apt install nvidia-jetpack (in a container, use an "
                          "l4t-jetpack base image)")
    data = {"version": version, "source": source, "expected": expected}
    if expected and not probes.version_matches(version, expected):
        return Check("cuda", WARN, f"CUDA {version} ({source}); JetPack's is {expected}", data=data,
                     hint="fine if you upgraded CUDA on purpose; engines are keyed by TensorRT, which must match its CUDA")
    return Check("cuda", OK, f"CUDA {version} ({source})", data=data)


def check_cudnn(ctx: Context) -> Check:
    version, source = probes.cudnn_version(ctx.root, ctx.packages)
    expected = _expected(ctx, "cudnn")
    if version is None:
        if not ctx.is_jetson:
            return Check("cudnn", SKIP, "cuDNN not found: only TensorRT tactics use it")
        return Check("cudnn", WARN, "cuDNN not found (dpkg libcudnn*, cudnn_version.h)",
                     hint="sudo apt install nvidia-cudnn (part of nvidia-jetpack); TensorRT loses cuDNN tactics without it")
    data = {"version": version, "source": source, "expected": expected}
    if expected and not probes.version_matches(version, expected):
        return Check("cudnn", WARN, f"cuDNN {version} ({source}); JetPack's is {expected}", data=data,
                     hint="reinstall JetPack's cuDNN (sudo apt install --reinstall nvidia-cudnn)")
    return Check("cudnn", OK, f"cuDNN {version} ({source})", data=data)


def check_dla(ctx: Context) -> Check:
    if not ctx.is_jetson or ctx.detected is None:
        return _not_jetson("dla", "no DLA (DLA exists only on Xavier and Orin NX/AGX modules)")
    p = ctx.detected.profile
    seen = probes.dla_sysfs_count(ctx.root)
    data = {"profile_cores": p.dla_cores, "generation": p.dla_generation, "sysfs_cores": seen}
    if not p.has_dla:
        return Check("dla", OK, f"{p.name} has no DLA: everything runs on the GPU", data=data)
    if seen is not None and seen < p.dla_cores:
        return Check("dla", WARN, f"{p.dla_cores} DLA core(s) expected (NVDLA v{p.dla_generation}), sysfs shows {seen}",
                     data=data, hint="check the module SKU (Orin NX 8GB has one DLA core) or the device tree")
    shown = "" if seen is None else f", {seen} in sysfs"
    return Check("dla", OK, f"{p.dla_cores} DLA core(s), NVDLA v{p.dla_generation}{shown}", data=data)


def check_power_mode(ctx: Context) -> Check:
    if not ctx.is_jetson:
        return _not_jetson("power_mode", "no nvpmodel")
    from ..telemetry.jetson import read_nvpmodel

    mode = read_nvpmodel(str(ctx.root))
    source = "/var/lib/nvpmodel/status"
    if mode is None and ctx.run_commands:
        mode, source = probes.nvpmodel_query(), "nvpmodel -q"
    if mode is None:
        return Check("power_mode", WARN, "power mode unreadable (/var/lib/nvpmodel/status, nvpmodel -q)",
                     hint="run `sudo nvpmodel -q`; in a container mount /var/lib/nvpmodel and /etc/nvpmodel.conf read-only")
    default = probes.nvpmodel_default(ctx.root)
    data = {"id": mode.get("id"), "name": mode.get("name"), "default_id": default, "source": source}
    label = f"{mode.get('id')} = {mode.get('name') or '?'}" + (" (default)" if mode.get("id") == default else "")
    profile = ctx.detected.profile if ctx.detected else None
    names = {m.name.upper() for m in profile.power_modes} if profile else set()
    hint = None
    if profile and names and (mode.get("name") or "").upper() not in names:
        return Check("power_mode", WARN, f"power mode {label} ({source}) is not in the {profile.name} profile",
                     data=data, hint="benchmark figures from this mode cannot be compared with the profile's modes")
    if not (mode.get("name") or "").upper().startswith("MAXN"):
        hint = "for peak throughput: sudo nvpmodel -m <MAXN id> && sudo jetson_clocks (see `edgeinfer profiles show`)"
    return Check("power_mode", OK, f"power mode {label} ({source})", data=data, hint=hint)


def check_clocks(ctx: Context) -> Check:
    if not ctx.is_jetson:
        return _not_jetson("clocks", "no Jetson GPU clocks")
    clocks = probes.gpu_clocks(ctx.root)
    if clocks is None:
        return Check("clocks", WARN, "GPU clock not readable (/sys/class/devfreq)",
                     hint="in a container, keep /sys visible (it is by default) or run doctor on the host")
    state = "pinned (jetson_clocks)" if clocks["pinned"] else "dynamic (DVFS)"
    text = f"GPU {clocks['cur_mhz']:g} MHz (range {clocks['min_mhz']:g}-{clocks['max_mhz']:g}), {state}"
    if clocks["pinned"]:
        return Check("clocks", OK, text, data=clocks)
    return Check("clocks", WARN, text, data=clocks,
                 hint="for stable latency figures run `sudo jetson_clocks` (not persistent across reboot)")


def check_jtop(ctx: Context) -> Check:
    if not ctx.is_jetson:
        return _not_jetson("jtop", "jetson-stats telemetry is Jetson-only (sysfs/tegrastats fallbacks too)")
    from .pymods import distribution_version

    sock = ctx.root / "run" / "jtop.sock"
    client = distribution_version("jetson-stats")
    data = {"socket": str(sock), "socket_present": probes.is_socket(sock), "client_version": client}
    if not data["socket_present"]:
        return Check("jtop", WARN, f"jtop service socket {sock} missing: telemetry falls back to sysfs/tegrastats",
                     data=data, hint="sudo pip3 install -U jetson-stats && sudo systemctl restart jtop.service; "
                                     "in docker add -v /run/jtop.sock:/run/jtop.sock")
    if client is None:
        return Check("jtop", WARN, "jtop service is running but the jetson-stats client is not installed", data=data,
                     hint="pip install 'edgeinfer[jetson]' (same major.minor as the host's jetson-stats)")
    return Check("jtop", OK, f"jtop service socket present, client jetson-stats {client}", data=data)
