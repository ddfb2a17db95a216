"""`edgeinfer doctor`: is this machine ready to package, build and run? One line per check.

Every file the doctor reads lives under ``root`` (default ``/``), so tests run it against fixture
trees of a JetPack 5 Xavier, a JetPack 6 Orin or a plain host. Commands (``nvpmodel -q``) run only
when ``root`` is the real ``/``. ``quick=True`` never imports an optional module (a container
HEALTHCHECK); the full run imports TensorRT, ONNX Runtime, the CUDA bindings and OpenCV *inside*
the checks, never when the CLI loads.

Example:
    >>> from pathlib import Path
    >>> report = run_doctor(root=Path("/nonexistent-root"), quick=True)
    >>> report.check("device").status
    'OK'
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Union

from . import checks_python as py
from . import checks_system as sysc
from .report import FAIL, OK, SKIP, WARN, Check, DoctorReport

__all__ = ["FAIL", "OK", "SKIP", "WARN", "Check", "DoctorReport", "default_engine_cache", "default_spool", "run_doctor"]


def default_spool() -> Path:
    """``$EDGEINFER_SPOOL`` or ``~/.cache/edgeinfer/spool`` (the pipeline's default)."""
    return Path(os.environ.get("EDGEINFER_SPOOL") or Path.home() / ".cache" / "edgeinfer" / "spool")


def default_engine_cache() -> Path:
    """``$EDGEINFER_ENGINE_CACHE`` or ``~/.cache/edgeinfer/engines``."""
    return Path(os.environ.get("EDGEINFER_ENGINE_CACHE") or Path.home() / ".cache" / "edgeinfer" / "engines")


def run_doctor(*, root: Union[str, Path] = Path("/"), quick: bool = False, spool_dir: Optional[Path] = None,
               engine_cache_dir: Optional[Path] = None) -> DoctorReport:
    """Run every check and return the report (nothing is printed)."""
    root = Path(root)
    ctx = sysc.Context.build(root, quick=quick, run_commands=root.resolve() == Path("/").resolve())
    checks = [
        sysc.check_device(ctx), sysc.check_jetpack(ctx), py.check_tensorrt(ctx), sysc.check_cuda(ctx),
        sysc.check_cudnn(ctx), sysc.check_dla(ctx), sysc.check_power_mode(ctx), sysc.check_clocks(ctx),
        py.check_opencv(ctx), sysc.check_jtop(ctx), py.check_onnxruntime(ctx), py.check_cuda_bindings(ctx),
        py.check_disk("spool", Path(spool_dir) if spool_dir else default_spool()),
        py.check_disk("engine_cache", Path(engine_cache_dir) if engine_cache_dir else default_engine_cache()),
    ]
    device = ctx.detected.to_dict() if ctx.detected else None
    host = {"root": str(root), "jetson": ctx.is_jetson, "quick": quick}
    host.update(checks[0].data)
    return DoctorReport(checks=checks, host=host, device=device, features=_features(ctx, checks))


def _features(ctx: sysc.Context, checks: list) -> Dict[str, Optional[bool]]:
    """Which edgeinfer features work here (None = not probed in quick mode)."""
    from .._deps import is_available

    by_name = {c.name: c for c in checks}
    ort = ctx.modules["onnxruntime"]["available"]
    trt = ctx.modules["tensorrt"]["available"] and by_name["cuda_bindings"].status == OK
    gst = None  # quick mode does not import cv2, so GStreamer support is unknown
    if not ctx.quick:
        gst = by_name["opencv"].status == OK and bool(by_name["opencv"].data.get("gstreamer"))
    has_dla = bool(ctx.detected and ctx.detected.profile.has_dla)
    return {
        "packaging": is_available("onnx") and ort,
        "onnxruntime inference": ort,
        "tensorrt engines": trt,
        "dla": trt and has_dla,
        "gstreamer sources": gst,
        "csi cameras": (gst and ctx.is_jetson) if gst is not None else None,
        "jetson telemetry (jtop)": by_name["jtop"].status == OK,
        "uplink spool": by_name["spool"].status != FAIL,
    }
