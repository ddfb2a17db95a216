"""Host-side packager: a model file -> ONE bundle for a fleet of Jetson device profiles.

Example:
    >>> from edgeinfer.packager import package_model
    >>> package_model("yolo11n.pt", devices="orin", precision="int8", calib="calib/", out="y.bundle")  # doctest: +SKIP
    PosixPath('y.bundle')
"""
from __future__ import annotations

from .package import package_model
from .targets import Target, resolve_target

__all__ = ["Target", "package_model", "resolve_target"]
