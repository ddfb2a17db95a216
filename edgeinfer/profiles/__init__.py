"""Jetson device profiles: frozen, validated module descriptions, lookup by name/family, detection.

Example:
    >>> from edgeinfer.profiles import get_profile, resolve_devices
    >>> get_profile("orin-nx-16gb").compute_capability
    '8.7'
    >>> [p.name for p in resolve_devices("agx-orin")]
    ['agx-orin-32gb', 'agx-orin-64gb']
"""
from __future__ import annotations

from .detect import L4T_TO_JETPACK, DetectedDevice, detect_current_device, parse_l4t_release
from .loader import load_profile, profile_from_dict
from .profile import (
    DeviceProfile,
    JetPackLine,
    PackagingDefaults,
    PowerMode,
    ProfileFieldError,
    TensorRTUpgrade,
)
from .registry import (
    explain_resolution,
    families,
    get_profile,
    list_profiles,
    load_profiles,
    profiles_dir,
    resolve_devices,
)

__all__ = [
    "L4T_TO_JETPACK", "DetectedDevice", "DeviceProfile", "JetPackLine", "PackagingDefaults", "PowerMode",
    "ProfileFieldError", "TensorRTUpgrade", "detect_current_device", "explain_resolution", "families",
    "get_profile", "list_profiles", "load_profile", "load_profiles", "parse_l4t_release", "profile_from_dict",
    "profiles_dir", "resolve_devices",
]
