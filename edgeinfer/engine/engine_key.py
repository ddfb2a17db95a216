"""Engine cache key and engine selection: one engine per (module, L4T/JetPack, TensorRT, SM,
precision, input shapes, DLA core), and a refusal naming the mismatch when none fits.

A TensorRT plan only runs on the TensorRT build and GPU that made it (TensorRT developer guide,
"Engine Compatibility"; NVIDIA/TensorRT#2949), so the key holds everything that makes two engines
incompatible. The file name is derived from the key alone, so the same build always lands in the
same file.

Example:
    >>> key = EngineKey(module="orin-nx-16gb", l4t="36.4.3", jetpack="6.2", tensorrt="10.3.0.30",
    ...                 compute_capability="8.7", precision="int8",
    ...                 shapes=(("images", (1, 3, 320, 320)),), dla_core=0)
    >>> key.filename()
    'orin-nx-16gb_jp6.2-l4t36.4.3_trt10.3.0.30_sm87_int8_images-1x3x320x320_dla0.engine'
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from ..errors import BuildError

Shapes = Tuple[Tuple[str, Tuple[int, ...]], ...]
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")
_MAX_SHAPES_TEXT = 64


def normalize_shapes(shapes: Mapping[str, Sequence[int]]) -> Shapes:
    """``{"images": [1,3,320,320]}`` -> ``(("images", (1, 3, 320, 320)),)`` sorted by name."""
    result = []
    for name, dims in sorted(shapes.items()):
        dims_t = tuple(int(d) for d in dims)
        if any(d <= 0 for d in dims_t):
            raise BuildError(f"input {name!r} has a non-static shape {list(dims_t)}; engines are keyed by fixed shapes",
                             hint="re-package with a fixed --imgsz and --batch")
        result.append((str(name), dims_t))
    return tuple(result)


@dataclass(frozen=True)
class EngineKey:
    """What makes an engine usable on a device. ``dla_core`` None means GPU only."""

    module: str
    l4t: str
    jetpack: str
    tensorrt: str
    compute_capability: str
    precision: str
    shapes: Shapes
    dla_core: Optional[int] = None

    def filename(self) -> str:
        """Deterministic, file-system-safe engine file name."""
        shapes = "+".join(f"{_safe(name)}-{'x'.join(map(str, dims))}" for name, dims in self.shapes)
        if len(shapes) > _MAX_SHAPES_TEXT:
            shapes = "shapes-" + hashlib.sha256(shapes.encode("utf-8")).hexdigest()[:12]
        target = "gpu" if self.dla_core is None else f"dla{self.dla_core}"
        parts = [_safe(self.module), f"jp{_safe(self.jetpack)}-l4t{_safe(self.l4t)}", f"trt{_safe(self.tensorrt)}",
                 f"sm{self.compute_capability.replace('.', '')}", _safe(self.precision), shapes, target]
        return "_".join(parts) + ".engine"

    def to_dict(self) -> Dict[str, Any]:
        """JSON/YAML-ready record for the bundle manifest."""
        return {
            "module": self.module, "l4t": self.l4t, "jetpack": self.jetpack, "tensorrt": self.tensorrt,
            "compute_capability": self.compute_capability, "precision": self.precision,
            "shapes": {name: list(dims) for name, dims in self.shapes}, "dla_core": self.dla_core,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EngineKey":
        dla = data.get("dla_core")
        return cls(module=str(data["module"]), l4t=str(data["l4t"]), jetpack=str(data["jetpack"]),
                   tensorrt=str(data["tensorrt"]), compute_capability=str(data["compute_capability"]),
                   precision=str(data["precision"]), shapes=normalize_shapes(data["shapes"]),
                   dla_core=None if dla is None else int(dla))


def _safe(text: str) -> str:
    return _UNSAFE.sub("-", str(text)).strip("-") or "x"


_FILENAME = re.compile(r"^(?P<module>[^_]+)_jp(?P<jetpack>[^_]+?)-l4t(?P<l4t>[^_]+)_trt(?P<tensorrt>[^_]+)_sm(?P<sm>\d+)_"
                       r"(?P<precision>fp32|fp16|int8)_(?P<shapes>.+)_(?P<target>gpu|dla\d+)\.(?:engine|plan)$")


def parse_engine_filename(name: str, *, input_names: Sequence[str] = ()) -> Dict[str, Any]:
    """What an engine file name written by :meth:`EngineKey.filename` (the name every recipe's
    ``--saveEngine`` uses) says about the engine; {} for any other name. ``shapes`` is left out when
    the name holds only a hash of them; shape names are mapped back to ``input_names``.

    Example:
        >>> info = parse_engine_filename("orin-nx-16gb_jp6.2-l4t36.4.3_trt10.3_sm87_int8_images-1x3x320x320_dla0.engine",
        ...                              input_names=["images"])
        >>> info["shapes"], info["dla_core"], info["tensorrt"]
        ({'images': [1, 3, 320, 320]}, 0, '10.3')
    """
    match = _FILENAME.match(name)
    if match is None:
        return {}
    sm, target = match.group("sm"), match.group("target")
    found: Dict[str, Any] = {
        "module": match.group("module"), "jetpack": match.group("jetpack"), "l4t": match.group("l4t"),
        "tensorrt": match.group("tensorrt"), "compute_capability": f"{sm[:-1]}.{sm[-1]}",
        "precision": match.group("precision"), "dla_core": None if target == "gpu" else int(target[3:]),
    }
    by_safe = {_safe(n): str(n) for n in input_names}
    shapes = {}
    for part in match.group("shapes").split("+"):
        tensor, _, dims = part.rpartition("-")
        if not tensor or not re.fullmatch(r"\d+(x\d+)*", dims):
            return found  # a hashed shape list: the name does not say
        shapes[by_safe.get(tensor, tensor)] = [int(d) for d in dims.split("x")]
    found["shapes"] = shapes
    return found


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read ``name`` from a dataclass-like object or a dict snapshot (profiles are stored as dicts)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def engine_key_for(*, profile: Any, jetpack: Any, tensorrt: str, precision: str,
                   shapes: Mapping[str, Sequence[int]], dla_core: Optional[int]) -> EngineKey:
    """Build the key from a DeviceProfile (or its dict) and a JetPackLine (or its dict).

    Example:
        >>> engine_key_for(profile={"name": "orin-nano-8gb", "compute_capability": "8.7"},
        ...                jetpack={"jetpack": "6.2", "l4t": "36.4.3"}, tensorrt="10.3",
        ...                precision="fp16", shapes={"images": [1, 3, 640, 640]}, dla_core=None).filename()
        'orin-nano-8gb_jp6.2-l4t36.4.3_trt10.3_sm87_fp16_images-1x3x640x640_gpu.engine'
    """
    return EngineKey(module=str(field(profile, "name")), l4t=str(field(jetpack, "l4t")),
                     jetpack=str(field(jetpack, "jetpack")), tensorrt=str(tensorrt),
                     compute_capability=str(field(profile, "compute_capability")), precision=str(precision),
                     shapes=normalize_shapes(shapes), dla_core=dla_core)


@dataclass(frozen=True)
class EngineRecord:
    """An engine in a bundle that matches the running device. ``bundle`` keeps an extracted
    .tar bundle (and so ``path``) alive as long as the record is used."""

    path: Path
    key: EngineKey
    record: Dict[str, Any]
    bundle: Any = dc_field(default=None, repr=False, compare=False)
