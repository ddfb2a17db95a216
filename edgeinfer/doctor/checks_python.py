"""Checks of the Python side: TensorRT, ONNX Runtime, CUDA bindings, OpenCV, and disk for spool/engines."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from .._deps import _DEPS, install_hint
from . import probes
from .checks_system import Context
from .pymods import onnxruntime_providers, opencv_build, probe_module
from .report import FAIL, OK, SKIP, WARN, Check

MIN_FREE_FAIL = 100 * 1024 ** 2  # below this the spool/engine writes will fail soon
MIN_FREE_WARN = 1024 ** 3


def _hint(ctx: Context, name: str) -> str:
    """The install route for the machine being checked (``root`` may be a Jetson even when we are not)."""
    dep = _DEPS.get(name)
    if ctx.is_jetson and dep is not None and dep.jetson:
        return dep.jetson
    return install_hint(name)


def module(ctx: Context, name: str) -> Dict[str, Any]:
    """Probe ``name`` once per doctor run."""
    if name not in ctx.modules:
        ctx.modules[name] = probe_module(name, quick=ctx.quick)
    return ctx.modules[name]


def check_tensorrt(ctx: Context) -> Check:
    py = module(ctx, "tensorrt")
    lib = probes.tensorrt_package(ctx.packages)
    expected = ctx.detected.jetpack.tensorrt if ctx.detected and ctx.detected.jetpack else None
    data = {"python": py["version"], "available": py["available"], "libnvinfer": lib[1] if lib else None,
            "expected": expected}
    if not py["available"]:
        if not ctx.is_jetson:
            return Check("tensorrt", SKIP, "TensorRT not installed: use the ONNX Runtime backend here; build "
                         "engines on the Jetson", data=data)
        where = f" (libnvinfer {lib[1]} is installed)" if lib else ""
        return Check("tensorrt", FAIL, f"TensorRT Python bindings do not import{where}: {py['error']}", data=data,
                     hint=_hint(ctx, "tensorrt") + "; in a venv create it with --system-site-packages")
    version = py["version"] or (lib[1] if lib else "?")
    if expected and not probes.version_matches(version, expected):
        return Check("tensorrt", WARN, f"TensorRT {version}; JetPack {ctx.detected.jetpack.jetpack} ships {expected}",
                     data=data, hint="engines are keyed by the TensorRT that builds them: build on this machine "
                                     "(`edgeinfer build`) rather than copying engines from a stock JetPack device")
    return Check("tensorrt", OK, f"TensorRT {version} imports" + (f" (libnvinfer {lib[1]})" if lib else ""), data=data)


def check_onnxruntime(ctx: Context) -> Check:
    ort = module(ctx, "onnxruntime")
    if not ort["available"]:
        trt_ok = module(ctx, "tensorrt")["available"]
        status = WARN if (ctx.is_jetson or trt_ok) else FAIL
        return Check("onnxruntime", status, f"ONNX Runtime not importable: {ort['error']}",
                     hint=_hint(ctx, "onnxruntime") + ("" if status == WARN else " (no inference backend at all)"))
    providers = onnxruntime_providers(ort["module"]) if ort["module"] is not None else []
    shown = ", ".join(providers) if providers else "providers not probed (--quick)"
    return Check("onnxruntime", OK, f"ONNX Runtime {ort['version']}: {shown}",
                 data={"version": ort["version"], "providers": providers})


def check_cuda_bindings(ctx: Context) -> Check:
    found = {name: module(ctx, name) for name in ("pycuda", "cuda.bindings")}
    ok = {name: r["version"] or "?" for name, r in found.items() if r["available"]}
    data = {name: {"available": r["available"], "version": r["version"], "error": r["error"]} for name, r in found.items()}
    if ok:
        return Check("cuda_bindings", OK, ", ".join(f"{n} {v}" for n, v in ok.items()) + " import", data=data)
    if not ctx.is_jetson and not module(ctx, "tensorrt")["available"]:
        return Check("cuda_bindings", SKIP, "no pycuda / cuda-python: only the TensorRT backend needs them", data=data)
    return Check("cuda_bindings", FAIL, "neither pycuda nor cuda-python imports: the TensorRT backend cannot move "
                 "buffers", data=data, hint=f"{_hint(ctx, 'pycuda')}; or pip install 'edgeinfer[cuda]'")


def check_opencv(ctx: Context) -> Check:
    cv = module(ctx, "cv2")
    if not cv["available"]:
        return Check("opencv", WARN, f"OpenCV not importable: {cv['error']}", hint=_hint(ctx, "cv2"))
    if cv["module"] is None:
        return Check("opencv", OK, f"OpenCV {cv['version'] or ''} present (build not probed: --quick)".replace("  ", " "),
                     data={"gstreamer": None})
    build = opencv_build(cv["module"])
    text = f"OpenCV {build['version']}, GStreamer {'on' if build['gstreamer'] else 'off'} ({build['file']})"
    if build["gstreamer"] or not ctx.is_jetson:
        note = None if build["gstreamer"] else "GStreamer pipelines are unavailable; files, RTSP and USB cameras use FFmpeg"
        return Check("opencv", OK, text, data=build, hint=note)
    return Check("opencv", WARN, text, data=build,
                 hint="a pip OpenCV wheel shadows JetPack's: pip uninstall opencv-python opencv-python-headless "
                      "&& sudo apt install python3-opencv (CSI cameras and hardware decode need GStreamer)")


def check_disk(name: str, path: Path) -> Check:
    info = probes.free_space(path)
    free_gb = info["free_bytes"] / 1024 ** 3
    text = f"{path}: {free_gb:.1f} GiB free" + ("" if info["exists"] else f" (not created yet; measured at {info['measured_at']})")
    if not info["writable"]:
        return Check(name, FAIL, text + ", not writable", data=info,
                     hint=f"create it and give the service user write access (sudo install -d -o $USER {path})")
    if info["free_bytes"] < MIN_FREE_FAIL:
        return Check(name, FAIL, text, data=info, hint="free space or move it to another volume")
    if info["free_bytes"] < MIN_FREE_WARN:
        return Check(name, WARN, text, data=info, hint="less than 1 GiB free: the spool/engine cache may fill up")
    return Check(name, OK, text, data=info)
