"""Which TensorRT releases can put layers on a module's DLA: one rule for the whole SDK.

Placement (host), build recipes and the engine builder (device) all ask this one function,
so a plan can never promise a DLA that the build then refuses.

TensorRT 8.x and 10.0-10.7 support DLA ("10.7 was the last 10.x
release that supported DLA"; JetPack 6.1/6.2 ship 10.3); 10.8 through 11.4.0 have no DLA on
Jetson; 11.4.1 supports it on Jetson AGX Orin only, with JetPack 7.2.2 or newer. Whether the
10.16 that JetPack 7.2 bundles keeps DLA is not stated anywhere we read, so it is treated as
having none (a plan then says so, and `--jetpack` selects an older line). Sources: TensorRT 11.4.1
"Working with DLA" (docs.nvidia.com/deeplearning/tensorrt/11.4.1/inference-library/work-with-dla.html),
the TensorRT 11.4.1 release notes and NVIDIA/Deep-Learning-Accelerator-SW operators/README.md (8.x).

Example:
    >>> dla_unsupported_reason("10.3", profile_name="orin-nx-16gb", families=("orin", "orin-nx"), dla_cores=2)
    >>> dla_unsupported_reason("10.16", profile_name="orin-nx-16gb", families=("orin",), dla_cores=2)[:29]
    'TensorRT 10.16 has no DLA on '
"""
from __future__ import annotations

import re
from typing import Iterable, Optional, Tuple, Union

Version = Union[str, Tuple[int, ...]]


def _tuple(version: Version) -> Tuple[int, int, int]:
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]] if isinstance(version, str) else [int(p) for p in version[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


def _text(version: Tuple[int, int, int]) -> str:
    return ".".join(str(p) for p in (version if version[2] else version[:2]))


def dla_unsupported_reason(trt_version: Version, *, profile_name: str, families: Iterable[str] = (),
                           dla_cores: int = 1, jetpack: Optional[str] = None) -> Optional[str]:
    """None when TensorRT ``trt_version`` can use this module's DLA, else the reason it cannot.

    Args:
        trt_version: "10.3", "11.4.1" or a version tuple.
        profile_name / families / dla_cores: from the DeviceProfile.
        jetpack: the JetPack line ("7.2.2"); only TensorRT 11.4.1+ depends on it.
    """
    if int(dla_cores) <= 0:
        return f"{profile_name} has no DLA"
    trt = _tuple(trt_version)
    if trt[0] < 10 or trt[:2] <= (10, 7):
        return None
    if trt < (11, 4, 1):
        return (f"TensorRT {_text(trt)} has no DLA on Jetson (10.7 was the last 10.x release with DLA; "
                "11.0-11.4.0 have none)")
    if "agx-orin" not in set(families) and not profile_name.startswith("agx-orin"):
        return f"TensorRT {_text(trt)} supports DLA only on Jetson AGX Orin, not on {profile_name}"
    if jetpack is not None and _tuple(jetpack) < (7, 2, 2):
        return f"TensorRT {_text(trt)} supports DLA on AGX Orin only with JetPack >= 7.2.2 (this is {jetpack})"
    return None
