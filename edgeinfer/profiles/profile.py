"""The frozen, validated description of one Jetson module: what a bundle is packaged for.

Instances come from ``device_profiles/*.yaml`` through :mod:`edgeinfer.profiles.loader`, which
checks every key and value; :meth:`DeviceProfile.__post_init__` re-checks the cross-field rules
(DLA cores vs generation, JetPack order, TensorRT 11 only from JetPack 7.2.2) so a profile built
in code is held to the same contract as one read from a file.

Example:
    >>> from edgeinfer.profiles import get_profile
    >>> p = get_profile("orin-nx-8gb")
    >>> (p.sm, p.dla_cores, p.jetpack("6.2").tensorrt)
    (87, 1, '10.3')
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ..errors import ProfileError

PRECISIONS = ("fp32", "fp16", "bf16", "int8", "fp8", "fp4")
PACKAGING_PRECISIONS = ("int8", "fp16")
DLA_MODES = ("auto", "off")
GPU_ARCHS = ("maxwell", "pascal", "volta", "ampere", "blackwell")
# The oldest Python the edgeinfer runtime supports; JetPack lines below it are packaging-only.
RUNTIME_MIN_PYTHON = (3, 8)


class ProfileFieldError(ProfileError):
    """A profile value breaks the contract; ``key`` names the offending field (dotted path)."""

    def __init__(self, key: str, expected: str, got: Any, *, where: str = "") -> None:
        self.key = key
        self.expected = expected
        self.got = got
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}key '{key}': expected {expected}, got {got!r}",
            hint="fix the value in the profile YAML (see docs/profiles.md for the schema)",
        )


def version_tuple(text: str) -> Tuple[int, ...]:
    """``"6.2.1"`` -> ``(6, 2, 1)``; trailing zeros dropped so "6.2" == "6.2.0"."""
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@dataclass(frozen=True)
class JetPackLine:
    """One JetPack release and the software it ships.

    Example:
        >>> JetPackLine("6.2", "36.4.3", "10.3", "12.6", "9.3", "3.10", "22.04").trt_tuple
        (10, 3)
    """

    jetpack: str
    l4t: str
    tensorrt: str
    cuda: str
    cudnn: str
    python: str
    ubuntu: str

    @property
    def trt_major(self) -> int:
        return int(self.tensorrt.split(".")[0])

    @property
    def trt_tuple(self) -> Tuple[int, int]:
        """(major, minor) of TensorRT: what decides the API era."""
        parts = self.tensorrt.split(".")
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0

    @property
    def python_tuple(self) -> Tuple[int, int]:
        major, minor = self.python.split(".")[:2]
        return int(major), int(minor)

    @property
    def runtime_supported(self) -> bool:
        """Whether the edgeinfer runtime can run on this line (its Python is new enough)."""
        return self.python_tuple >= RUNTIME_MIN_PYTHON

    def to_dict(self) -> Dict[str, str]:
        return {
            "jetpack": self.jetpack, "l4t": self.l4t, "tensorrt": self.tensorrt, "cuda": self.cuda,
            "cudnn": self.cudnn, "python": self.python, "ubuntu": self.ubuntu,
        }


@dataclass(frozen=True)
class TensorRTUpgrade:
    """A TensorRT release installable on top of JetPack ``min_jetpack`` and later (not bundled with it)."""

    tensorrt: str
    min_jetpack: str
    dla: bool

    def to_dict(self) -> Dict[str, Any]:
        return {"tensorrt": self.tensorrt, "min_jetpack": self.min_jetpack, "dla": self.dla}


@dataclass(frozen=True)
class PowerMode:
    """One nvpmodel mode; ``super_mode`` modes exist only on JetPack 6.2+ flashed with the Super config."""

    id: int
    name: str
    default: bool
    super_mode: bool

    def to_dict(self) -> Dict[str, Any]:
        return {"id": self.id, "name": self.name, "default": self.default, "super_mode": self.super_mode}


@dataclass(frozen=True)
class PackagingDefaults:
    """What ``edgeinfer package`` uses when the user does not say."""

    precision: str
    dla: str
    workspace_mb: int

    def to_dict(self) -> Dict[str, Any]:
        return {"precision": self.precision, "dla": self.dla, "workspace_mb": self.workspace_mb}


@dataclass(frozen=True)
class DeviceProfile:
    """A Jetson module: compute, DLA, memory, JetPack lines, power modes and packaging defaults.

    Example:
        >>> from edgeinfer.profiles import get_profile
        >>> get_profile("agx-orin-64gb").latest_jetpack.jetpack
        '7.2.1'
    """

    name: str
    display_name: str
    families: Tuple[str, ...]
    aliases: Tuple[str, ...]
    gpu_arch: str
    compute_capability: str
    cuda_cores: int
    tensor_cores: int
    dla_cores: int
    dla_generation: int
    dla_max_clock_mhz: Optional[float]
    memory_gb: float
    memory_bandwidth_gbs: Optional[float]
    precisions: Tuple[str, ...]
    runtime_supported: bool
    model_patterns: Tuple[str, ...]
    jetpacks: Tuple[JetPackLine, ...]
    tensorrt_upgrades: Tuple[TensorRTUpgrade, ...]
    power_modes: Tuple[PowerMode, ...]
    defaults: PackagingDefaults
    notes: str = ""
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check_invariants(self)

    @property
    def sm(self) -> int:
        """Compute capability as the sm number: "8.7" -> 87, "11.0" -> 110."""
        major, minor = self.compute_capability.split(".")
        return int(major) * 10 + int(minor)

    @property
    def has_dla(self) -> bool:
        return self.dla_cores > 0

    @property
    def latest_jetpack(self) -> JetPackLine:
        return self.jetpacks[-1]

    @property
    def tensorrt_versions(self) -> Tuple[str, ...]:
        """Every TensorRT version this module can run, oldest first, without duplicates."""
        seen = []  # type: list
        for version in [line.tensorrt for line in self.jetpacks] + [u.tensorrt for u in self.tensorrt_upgrades]:
            if version not in seen:
                seen.append(version)
        return tuple(seen)

    def jetpack(self, version: str) -> JetPackLine:
        """The JetPack line ``version`` ("6.2" == "6.2.0"); ProfileError naming the known ones otherwise."""
        try:
            wanted = version_tuple(str(version))
        except ValueError:
            wanted = None
        for line in self.jetpacks:
            if wanted is not None and version_tuple(line.jetpack) == wanted:
                return line
        known = [line.jetpack for line in self.jetpacks]
        close = difflib.get_close_matches(str(version), known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ProfileError(
            f"JetPack {version} is not a known line for {self.name}",
            hint=f"{hint}known: {', '.join(known)}",
        )

    def power_mode(self, name: str, *, super_mode: Optional[bool] = None) -> PowerMode:
        """The power mode called ``name`` (case-insensitive), optionally only Super or non-Super."""
        for mode in self.power_modes:
            if mode.name.lower() == name.lower() and super_mode in (None, mode.super_mode):
                return mode
        raise ProfileError(
            f"{self.name} has no power mode '{name}'",
            hint="known: " + (", ".join(sorted({m.name for m in self.power_modes})) or "none recorded"),
        )

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict with exactly the YAML keys (``profile_from_dict`` reads it back)."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "families": list(self.families),
            "aliases": list(self.aliases),
            "gpu_arch": self.gpu_arch,
            "compute_capability": self.compute_capability,
            "cuda_cores": self.cuda_cores,
            "tensor_cores": self.tensor_cores,
            "dla_cores": self.dla_cores,
            "dla_generation": self.dla_generation,
            "dla_max_clock_mhz": self.dla_max_clock_mhz,
            "memory_gb": self.memory_gb,
            "memory_bandwidth_gbs": self.memory_bandwidth_gbs,
            "precisions": list(self.precisions),
            "runtime_supported": self.runtime_supported,
            "detect": {"model_patterns": list(self.model_patterns)},
            "jetpacks": [line.to_dict() for line in self.jetpacks],
            "tensorrt_upgrades": [u.to_dict() for u in self.tensorrt_upgrades],
            "power_modes": [m.to_dict() for m in self.power_modes],
            "defaults": self.defaults.to_dict(),
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any], *, source: str = "<dict>") -> DeviceProfile:
        """Build and validate a profile from a YAML-shaped dict (see :func:`loader.profile_from_dict`)."""
        from .loader import profile_from_dict

        return profile_from_dict(data, source=source)

    @classmethod
    def from_yaml(cls, path: Any) -> DeviceProfile:
        """Read and validate one profile YAML file."""
        from .loader import load_profile

        return load_profile(path)


def _check_invariants(p: DeviceProfile) -> None:
    """Cross-field rules; each failure names the key and what was expected."""
    where = p.source or f"profile '{p.name}'"
    if p.dla_cores < 0:
        raise ProfileFieldError("dla_cores", "an integer >= 0", p.dla_cores, where=where)
    if p.dla_cores == 0 and p.dla_generation != 0:
        raise ProfileFieldError("dla_generation", "0 when dla_cores is 0", p.dla_generation, where=where)
    if p.dla_cores > 0 and p.dla_generation not in (1, 2):
        raise ProfileFieldError("dla_generation", "1 (Xavier NVDLA v1) or 2 (Orin NVDLA v2) when dla_cores > 0",
                                p.dla_generation, where=where)
    if (p.dla_max_clock_mhz is None) != (p.dla_cores == 0):
        raise ProfileFieldError("dla_max_clock_mhz", "a clock when the module has DLA cores, null otherwise",
                                p.dla_max_clock_mhz, where=where)
    if p.defaults.dla == "auto" and p.dla_cores == 0:
        raise ProfileFieldError("defaults.dla", "'off' on a module without DLA", p.defaults.dla, where=where)
    if p.defaults.precision not in p.precisions:
        raise ProfileFieldError("defaults.precision", f"one of this module's precisions {list(p.precisions)}",
                                p.defaults.precision, where=where)
    if not p.jetpacks:
        raise ProfileFieldError("jetpacks", "at least one JetPack line", [], where=where)
    _check_jetpacks(p, where)
    _check_power_modes(p, where)
    if p.runtime_supported != any(line.runtime_supported for line in p.jetpacks):
        raise ProfileFieldError(
            "runtime_supported", "true exactly when some JetPack line has Python >= 3.8", p.runtime_supported,
            where=where)


def _check_jetpacks(p: DeviceProfile, where: str) -> None:
    previous = None
    for i, line in enumerate(p.jetpacks):
        current = version_tuple(line.jetpack)
        if previous is not None and current <= previous:
            raise ProfileFieldError(f"jetpacks[{i}].jetpack", "versions in increasing order (oldest -> newest)",
                                    line.jetpack, where=where)
        previous = current
        # TensorRT 11 supports JetPack only from 7.2.2 on; JetPack 6.x Orin must stay on TRT 10.x.
        if line.trt_major >= 11 and current < (7, 2, 2):
            raise ProfileFieldError(f"jetpacks[{i}].tensorrt", "TensorRT < 11 before JetPack 7.2.2",
                                    line.tensorrt, where=where)
    for i, upgrade in enumerate(p.tensorrt_upgrades):
        if upgrade.dla and p.dla_cores == 0:
            raise ProfileFieldError(f"tensorrt_upgrades[{i}].dla", "false on a module without DLA", True, where=where)
        if int(upgrade.tensorrt.split(".")[0]) >= 11 and version_tuple(upgrade.min_jetpack) < (7, 2, 2):
            raise ProfileFieldError(f"tensorrt_upgrades[{i}].min_jetpack", "7.2.2 or later for TensorRT 11",
                                    upgrade.min_jetpack, where=where)


def _check_power_modes(p: DeviceProfile, where: str) -> None:
    for super_set in (False, True):
        modes = [m for m in p.power_modes if m.super_mode == super_set]
        ids = [m.id for m in modes]
        kind = "Super" if super_set else "non-Super"
        if len(set(ids)) != len(ids):
            raise ProfileFieldError("power_modes", f"unique ids among the {kind} modes", ids, where=where)
        defaults = [m.name for m in modes if m.default]
        if len(defaults) > 1:
            raise ProfileFieldError("power_modes", f"at most one default among the {kind} modes", defaults,
                                    where=where)
