"""Read ``device_profiles/*.yaml`` into :class:`DeviceProfile`, rejecting anything off-contract.

Every error names the file and the key, and says what was expected and what was found:
``orin-nx-8gb.yaml: key 'jetpacks[2].tensorrt': expected a version like '10.3', got 10.3``.
Unknown keys are errors too (a typo must not silently fall back to a default).

Example:
    >>> from edgeinfer.profiles.loader import load_profile
    >>> from edgeinfer.profiles.registry import profiles_dir
    >>> load_profile(profiles_dir() / "xavier-nx.yaml").dla_generation
    1
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from ..errors import ProfileError
from .profile import (
    DLA_MODES,
    GPU_ARCHS,
    PACKAGING_PRECISIONS,
    PRECISIONS,
    DeviceProfile,
    JetPackLine,
    PackagingDefaults,
    PowerMode,
    ProfileFieldError,
    TensorRTUpgrade,
)

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_CC = re.compile(r"^\d{1,2}\.\d$")
_VERSION = {
    "jetpack": (re.compile(r"^\d+\.\d+(\.\d+)?$"), "a version like '6.2' or '6.2.1'"),
    "l4t": (re.compile(r"^\d+\.\d+\.\d+$"), "an L4T release like '36.4.3'"),
    "tensorrt": (re.compile(r"^\d+\.\d+(\.\d+){0,2}$"), "a version like '10.3' or '8.5.2'"),
    "cuda": (re.compile(r"^\d+\.\d+(\.\d+)?$"), "a version like '12.6'"),
    "cudnn": (re.compile(r"^\d+(\.\d+){0,2}$"), "a version like '9.3' (major alone when the minor is unknown)"),
    "python": (re.compile(r"^3\.\d+$"), "a Python version like '3.10'"),
    "ubuntu": (re.compile(r"^\d\d\.\d\d$"), "an Ubuntu release like '22.04'"),
}


class _Reader:
    """Takes keys out of one mapping, type-checking each; ``done()`` rejects whatever is left."""

    def __init__(self, data: Any, *, where: str, prefix: str = "") -> None:
        self.where = where
        self.prefix = prefix
        if not isinstance(data, dict):
            raise ProfileFieldError(prefix.rstrip(".") or "<top level>", "a mapping", data, where=where)
        self.data = dict(data)

    def fail(self, key: str, expected: str, got: Any) -> ProfileFieldError:
        return ProfileFieldError(self.prefix + key, expected, got, where=self.where)

    def take(self, key: str, expected: str, check: Callable[[Any], bool], *, optional: bool = False) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise ProfileError(
                f"{self.where}: missing required key '{self.prefix}{key}' ({expected})",
                hint="add it to the profile YAML (see docs/profiles.md for the schema)",
            )
        value = self.data.pop(key)
        if value is None and optional:
            return None
        if not check(value):
            raise self.fail(key, expected, value)
        return value

    def string(self, key: str, *, pattern: Optional["re.Pattern[str]"] = None, expected: str = "a string",
               choices: Optional[tuple] = None) -> str:
        if choices is not None:
            expected = f"one of {list(choices)}"
        return self.take(key, expected, lambda v: isinstance(v, str) and v != "" and (
            (pattern is None or pattern.match(v) is not None) and (choices is None or v in choices)))

    def integer(self, key: str, *, minimum: int = 0) -> int:
        return self.take(key, f"an integer >= {minimum}",
                         lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum)

    def number(self, key: str, *, optional: bool = False) -> Optional[float]:
        expected = "a positive number" + (" or null" if optional else "")
        value = self.take(key, expected, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
                          optional=optional)
        return None if value is None else float(value)

    def boolean(self, key: str) -> bool:
        return self.take(key, "true or false", lambda v: isinstance(v, bool))

    def items(self, key: str, *, allow_empty: bool = True) -> List[Any]:
        expected = "a list" if allow_empty else "a non-empty list"
        return self.take(key, expected, lambda v: isinstance(v, list) and (allow_empty or len(v) > 0))

    def names(self, key: str, *, choices: Optional[tuple] = None, allow_empty: bool = True) -> tuple:
        values = self.items(key, allow_empty=allow_empty)
        for i, value in enumerate(values):
            ok = isinstance(value, str) and (choices is None and _NAME.match(value) or value in (choices or ()))
            if not ok:
                expected = f"one of {list(choices)}" if choices else "a lower-case-dashed name"
                raise self.fail(f"{key}[{i}]", expected, value)
        if len(set(values)) != len(values):
            raise self.fail(key, "no duplicates", values)
        return tuple(values)

    def sub(self, key: str) -> _Reader:
        return _Reader(self.take(key, "a mapping", lambda v: isinstance(v, dict)), where=self.where,
                       prefix=f"{self.prefix}{key}.")

    def done(self) -> None:
        if self.data:
            key = sorted(self.data, key=str)[0]
            raise ProfileError(
                f"{self.where}: unknown key '{self.prefix}{key}'",
                hint="remove it or fix its spelling (see docs/profiles.md for the schema)",
            )


def _jetpack_line(item: Any, *, where: str, prefix: str) -> JetPackLine:
    r = _Reader(item, where=where, prefix=prefix)
    values = {key: r.string(key, pattern=pat, expected=expected) for key, (pat, expected) in _VERSION.items()}
    r.done()
    return JetPackLine(**values)


def _power_mode(item: Any, *, where: str, prefix: str) -> PowerMode:
    r = _Reader(item, where=where, prefix=prefix)
    mode = PowerMode(id=r.integer("id"), name=r.string("name"), default=r.boolean("default"),
                     super_mode=r.boolean("super_mode"))
    r.done()
    return mode


def _upgrade(item: Any, *, where: str, prefix: str) -> TensorRTUpgrade:
    r = _Reader(item, where=where, prefix=prefix)
    upgrade = TensorRTUpgrade(
        tensorrt=r.string("tensorrt", pattern=_VERSION["tensorrt"][0], expected=_VERSION["tensorrt"][1]),
        min_jetpack=r.string("min_jetpack", pattern=_VERSION["jetpack"][0], expected=_VERSION["jetpack"][1]),
        dla=r.boolean("dla"),
    )
    r.done()
    return upgrade


def profile_from_dict(data: Any, *, source: str = "<dict>") -> DeviceProfile:
    """Validate a YAML-shaped mapping and build the profile; ProfileError names ``source`` and the key."""
    r = _Reader(data, where=source)
    fields: Dict[str, Any] = {
        "name": r.string("name", pattern=_NAME, expected="a lower-case-dashed name like 'orin-nx-16gb'"),
        "display_name": r.string("display_name"),
        "families": r.names("families"),
        "aliases": r.names("aliases"),
        "gpu_arch": r.string("gpu_arch", choices=GPU_ARCHS),
        "compute_capability": r.string("compute_capability", pattern=_CC,
                                       expected="a quoted compute capability like '8.7'"),
        "cuda_cores": r.integer("cuda_cores", minimum=1),
        "tensor_cores": r.integer("tensor_cores"),
        "dla_cores": r.integer("dla_cores"),
        "dla_generation": r.integer("dla_generation"),
        "dla_max_clock_mhz": r.number("dla_max_clock_mhz", optional=True),
        "memory_gb": r.number("memory_gb"),
        "memory_bandwidth_gbs": r.number("memory_bandwidth_gbs", optional=True),
        "precisions": r.names("precisions", choices=PRECISIONS, allow_empty=False),
        "runtime_supported": r.boolean("runtime_supported"),
        "notes": r.take("notes", "a string", lambda v: isinstance(v, str), optional=True) or "",
    }
    detect = r.sub("detect")
    patterns = detect.items("model_patterns", allow_empty=False)
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str) or not pattern or pattern != pattern.lower():
            raise detect.fail(f"model_patterns[{i}]", "a non-empty lower-case string", pattern)
    detect.done()
    fields["model_patterns"] = tuple(patterns)
    fields["jetpacks"] = tuple(_jetpack_line(item, where=source, prefix=f"jetpacks[{i}].")
                               for i, item in enumerate(r.items("jetpacks", allow_empty=False)))
    fields["tensorrt_upgrades"] = tuple(_upgrade(item, where=source, prefix=f"tensorrt_upgrades[{i}].")
                                        for i, item in enumerate(r.items("tensorrt_upgrades")))
    fields["power_modes"] = tuple(_power_mode(item, where=source, prefix=f"power_modes[{i}].")
                                  for i, item in enumerate(r.items("power_modes")))
    d = r.sub("defaults")
    fields["defaults"] = PackagingDefaults(
        precision=d.string("precision", choices=PACKAGING_PRECISIONS),
        dla=d.string("dla", choices=DLA_MODES),
        workspace_mb=d.integer("workspace_mb", minimum=1),
    )
    d.done()
    r.done()
    return DeviceProfile(source=source, **fields)


def load_profile(path: Union[str, Path]) -> DeviceProfile:
    """Read one profile YAML; the file's stem must equal its ``name``."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read device profile {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML ({exc})", hint="check indentation and quoting") from exc
    profile = profile_from_dict(data, source=str(path))
    if profile.name != path.stem:
        raise ProfileFieldError("name", f"'{path.stem}' (the file name)", profile.name, where=str(path))
    return profile
