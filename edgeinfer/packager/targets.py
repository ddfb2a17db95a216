"""Per-device packaging settings: precision, DLA request, target JetPack line, calibration method.

Resolved up front, before any slow step, so a bad combination fails in a second with a clear
message instead of after calibration.

Example:
    >>> from edgeinfer.profiles import get_profile
    >>> t = resolve_target(get_profile("orin-nx-16gb"), precision=None, dla=None, jetpack=None)
    >>> t.precision, t.dla, t.jetpack.jetpack
    ('int8', 'auto', '6.2.2')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, PlacementError, ProfileError
from ..placement import trt_supports_dla

PRECISIONS = ("fp32", "fp16", "int8", "best")
DLA_CHOICES = ("auto", "off", "0", "1")
CALIB_METHODS = ("entropy", "minmax", "percentile")


@dataclass(frozen=True)
class Target:
    """What will be packaged for one device."""

    profile: Any  # DeviceProfile
    precision: str  # fp32 | fp16 | int8
    dla: str  # auto | off | 0 | 1
    jetpack: Any  # JetPackLine the placement and INT8 cache are made for
    jetpack_reason: str
    best: bool = False  # --precision best: an INT8 budget miss falls back to FP16

    @property
    def name(self) -> str:
        return self.profile.name


def resolve_target(profile: Any, *, precision: str | None, dla: str | int | None, jetpack: str | None) -> Target:
    """Settle precision (profile default or 'best'), DLA request and JetPack line for ``profile``."""
    prec = _precision(profile, precision)
    request = str(profile.defaults.dla if dla is None else dla).lower()
    if request not in DLA_CHOICES:
        raise ConfigError(f"unknown --dla value {dla!r}", hint="use auto, off, 0 or 1")
    if request in ("0", "1") and int(request) >= profile.dla_cores:  # fail before the slow steps
        cores = "no DLA" if profile.dla_cores == 0 else f"{profile.dla_cores} DLA core(s) (0..{profile.dla_cores - 1})"
        raise PlacementError(f"--dla {request} requested but {profile.name} has {cores}",
                             hint="use --dla auto or off for this device, or drop it from --device")
    line, why = _jetpack_line(profile, jetpack, wants_dla=request != "off" and profile.dla_cores > 0)
    return Target(profile=profile, precision=prec, dla=request, jetpack=line, jetpack_reason=why, best=precision == "best")


def default_calib_method(plans: dict[str, Any]) -> str:
    """minmax for every target, DLA included (edgeinfer.quantize.ranges says why).

    The DLA reads the cache with TensorRT's EntropyCalibration2 calibrator; the cache header names it
    whatever method made the ranges (edgeinfer.packager.int8), so DLA needs no entropy *ranges*.
    """
    del plans  # one method for all devices: the ranges are shared by every INT8 artifact
    from ..quantize.ranges import DEFAULT_METHOD

    return DEFAULT_METHOD


def _precision(profile: Any, precision: str | None) -> str:
    if precision is None:
        return profile.defaults.precision
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}", hint="use fp16, int8 or best")
    if precision == "best":
        return "int8" if "int8" in profile.precisions else "fp16"
    if precision not in profile.precisions:
        raise ConfigError(f"{profile.name} does not support {precision} (it has {', '.join(profile.precisions)})",
                          hint="use --precision best, or drop this device")
    return precision


def _jetpack_line(profile: Any, version: str | None, *, wants_dla: bool) -> tuple[Any, str]:
    if version is not None:
        try:
            return profile.jetpack(version), f"--jetpack {version}"
        except ProfileError as exc:
            raise ProfileError(f"{profile.name}: {exc.message}", hint=exc.hint) from exc
    latest = profile.latest_jetpack
    if wants_dla and not trt_supports_dla(latest.tensorrt, profile):
        with_dla = [j for j in profile.jetpacks if trt_supports_dla(j.tensorrt, profile)]
        if with_dla:
            return with_dla[-1], (f"newest JetPack whose TensorRT runs the DLA (latest {latest.jetpack} has "
                                  f"TensorRT {latest.tensorrt}, no DLA)")
    return latest, "newest JetPack for this module"
