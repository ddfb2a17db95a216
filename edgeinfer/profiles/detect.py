"""Which Jetson is this? L4T from /etc/nv_tegra_release, module from the device-tree model.

The L4T release maps to a JetPack through :data:`L4T_TO_JETPACK` (the jetson-containers
approach); the module comes from the profiles' ``detect.model_patterns`` (longest match wins, so
"orin nano" beats "nano"), and memory variants (Orin NX 8/16GB, ...) are told apart by
``MemTotal`` in /proc/meminfo. Off-Jetson (no release file) the answer is ``None``. Every path is
a parameter so tests can point it at fixture files.

Example:
    >>> from edgeinfer.profiles import detect_current_device
    >>> detect_current_device(tegra_release="/nonexistent") is None
    True
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

from ..errors import ProfileError
from .profile import DeviceProfile, JetPackLine
from .registry import list_profiles

log = logging.getLogger(__name__)
PathLike = Union[str, Path]

# L4T release -> JetPack (dusty-nv/jetson-containers jetson_containers/l4t_version.py `get_jetpack_version`;
# NVIDIA's JetPack release pages).
L4T_TO_JETPACK = {
    "32.6.1": "4.6",
    "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4", "32.7.5": "4.6.5",
    "32.7.6": "4.6.6",
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4", "35.6.1": "5.1.5", "35.6.2": "5.1.5", "35.6.4": "5.1.6",
    "36.2.0": "6.0",  # 6.0 Developer Preview: same CUDA 12.2 / TRT 8.6.2 as 6.0 GA
    "36.3.0": "6.0", "36.4.0": "6.1", "36.4.2": "6.1.1", "36.4.3": "6.2",
    "36.4.4": "6.2.1", "36.4.7": "6.2.1",  # jetson-containers maps both to 6.2.1
    "36.5.0": "6.2.2",  # sources conflict: Seeed Studio says 6.2.2, jetson-containers 6.2.1
    "38.2.0": "7.0", "38.2.1": "7.0", "38.4.0": "7.1",
    "39.1.0": "7.2", "39.2.0": "7.2", "39.2.1": "7.2.1",
}

_RELEASE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class DetectedDevice:
    """What :func:`detect_current_device` found; ``jetpack`` is None for an L4T not in the table."""

    profile: DeviceProfile
    l4t: str
    jetpack: Optional[JetPackLine]
    model_string: str
    memory_total_gb: Optional[float] = None

    def to_dict(self) -> dict:
        return {
            "profile": self.profile.name, "l4t": self.l4t, "model_string": self.model_string,
            "jetpack": self.jetpack.to_dict() if self.jetpack else None, "memory_total_gb": self.memory_total_gb,
        }


def parse_l4t_release(text: str) -> str:
    """``# R35 (release), REVISION: 3.1, ...`` -> ``"35.3.1"``; ProfileError when unparseable."""
    match = _RELEASE.search(text)
    if match is None:
        first = text.splitlines()[0] if text else ""
        raise ProfileError(f"cannot parse the L4T release line {first!r}",
                           hint="expected '# R<major> (release), REVISION: <minor>.<patch>, ...'")
    major, minor, patch = match.group(1), match.group(2), match.group(3) or "0"
    return f"{int(major)}.{int(minor)}.{int(patch)}"


def read_model_string(path: PathLike) -> str:
    """The device-tree model, NUL terminator and whitespace removed."""
    raw = Path(path).read_bytes()
    return raw.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()


def read_memtotal_gb(path: PathLike) -> Optional[float]:
    """MemTotal from /proc/meminfo in GiB, or None when absent."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) / (1024 * 1024) if match else None


def match_module(model_string: str, memtotal_gb: Optional[float],
                 profiles: Optional[List[DeviceProfile]] = None) -> DeviceProfile:
    """The profile a device-tree model string (plus MemTotal) names; ProfileError if none or ambiguous."""
    profiles = list_profiles() if profiles is None else profiles
    model = model_string.lower()
    scored = [(max(len(pat) for pat in p.model_patterns if pat in model), p)
              for p in profiles if any(pat in model for pat in p.model_patterns)]
    if not scored:
        raise ProfileError(f"unsupported Jetson module {model_string!r}",
                           hint="pass the device explicitly (see `edgeinfer profiles`)")
    best = max(score for score, _ in scored)
    candidates = [p for score, p in scored if score == best]
    if len(candidates) == 1:
        return candidates[0]
    if memtotal_gb is None:
        raise ProfileError(
            f"{model_string!r} could be any of {', '.join(p.name for p in candidates)} and MemTotal is unreadable",
            hint="pass the device explicitly (see `edgeinfer profiles`)")
    # MemTotal sits a little under the nominal size (carve-outs): the nearest nominal size is the module.
    return min(candidates, key=lambda p: abs(p.memory_gb - memtotal_gb))


def detect_current_device(*, tegra_release: PathLike = "/etc/nv_tegra_release",
                          dt_model: PathLike = "/proc/device-tree/model",
                          meminfo: PathLike = "/proc/meminfo") -> Optional[DetectedDevice]:
    """Detect the Jetson this runs on; ``None`` off-Jetson (no L4T release file).

    Raises ProfileError when the files exist but name an unknown or ambiguous module.

    Example:
        >>> detect_current_device(tegra_release="/no/such/file") is None
        True
    """
    try:
        release_text = Path(tegra_release).read_text(errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProfileError(f"cannot read {tegra_release}: {exc.strerror or exc}") from exc
    l4t = parse_l4t_release(release_text)
    try:
        model_string = read_model_string(dt_model)
    except OSError as exc:
        raise ProfileError(
            f"L4T {l4t} found but the device-tree model {dt_model} is unreadable ({exc.strerror or exc})",
            hint="in a container, keep /proc/device-tree visible, or pass the device explicitly") from exc
    memtotal = read_memtotal_gb(meminfo)
    profile = match_module(model_string, memtotal)
    return DetectedDevice(profile=profile, l4t=l4t, jetpack=_jetpack_for(profile, l4t),
                          model_string=model_string, memory_total_gb=memtotal)


def _jetpack_for(profile: DeviceProfile, l4t: str) -> Optional[JetPackLine]:
    version = L4T_TO_JETPACK.get(l4t)
    if version is None:
        log.warning("L4T %s is not in the L4T->JetPack table; JetPack unknown", l4t)
        return None
    try:
        return profile.jetpack(version)
    except ProfileError:
        log.warning("JetPack %s (L4T %s) is not a known line for %s", version, l4t, profile.name)
        return None
