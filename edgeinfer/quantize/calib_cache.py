"""TensorRT's native INT8 calibration cache (implicit quantization; the only INT8 route to DLA on JetPack 5/6).

Format (checked against NVIDIA's readers/writers: NVIDIA/Model-Optimizer
``modelopt/onnx/quantization/calib_utils.py`` and NVIDIA-AI-IOT/cuDLA-samples' cache and Q/DQ translator):

* line 1: ``TRT-<NV_TENSORRT_VERSION>-<algorithm>``, e.g. ``TRT-8600-EntropyCalibration2``;
* then one line per tensor: ``<tensor name>: <hex>``, where hex is the IEEE-754 float32 *bit
  pattern* of the scale ``amax / 127``, printed as a big-endian uint32 (``images: 3c00f9f4`` ↔
  scale 0.0078721 ↔ amax 1.0 for a 0..1 input). ModelOpt reads it with
  ``struct.unpack("!f", bytes.fromhex(h))``; cuDLA-samples writes it with leading zeros dropped,
  so the reader pads back to 8 digits.

Version number: TensorRT defines ``NV_TENSORRT_VERSION`` as ``major*1000 + minor*100 + patch``
up to 8.x (``NvInfer.h``: ``kNV_TENSORRT_VERSION_IMPL``; 8.6.0 → 8600, 8.5.1 → 8501 as in the
examples -- *not* major*100+minor*10+patch, which would give 851) and as
``major*10000 + minor*100 + patch`` from 10.x on (``NvInferVersion.h``:
``NV_TENSORRT_VERSION_INT``; 10.3.0 → 100300).

Which version to write: TensorRT skips a cache whose header does not match the *running*
TensorRT (NVIDIA/TensorRT#1378: "trt will skip the file if it is incompatible"; the header is the
only version information the file has, so the whole number, patch included, is what can be
compared), and trtexec then calibrates on random data without an error. So a bundle carries one
cache per distinct TensorRT version among its recipes (:func:`exact_trt_version`), each recipe
points at its own, and ``edgeinfer build`` rewrites the header to the running version anyway
(``edgeinfer.engine.calibration.prepare_cache``). Where a profile names only ``major.minor`` and the
JetPack releases of that line do not pin the patch (TensorRT 10.13 / 10.16: 10.16.0 in the x86
containers, 10.16.1 in the Jetson tarball -- trtexec prints ``[TensorRT v101600]`` /
``[TensorRT v101601]``), the header cannot be known on the host: the recipe says so and gives the
one-line rewrite to run on the device (:func:`header_rewrite_command`).

Algorithm names are TensorRT's ``CalibrationAlgoType`` spellings. The header should name the
calibrator that will *read* the cache on the device (TensorRT recalibrates rather than trust a
cache written for another algorithm), so ``algorithm`` can be given explicitly; by default it
follows the method: entropy → ``EntropyCalibration2`` (the DLA calibrator), minmax →
``MinMaxCalibration``, percentile → ``EntropyCalibration2`` (TensorRT has no percentile
calibrator; the entropy one is the one DLA builds use).

Example:
    >>> text = write_trt_calibration_cache({"images": 1.0}, trt_version="8.6", method="entropy")
    >>> text.splitlines()
    ['TRT-8600-EntropyCalibration2', 'images: 3c010204']
    >>> round(parse_trt_calibration_cache(text).amax["images"], 6)
    1.0
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from ..errors import QuantizeError

ALGORITHMS = ("EntropyCalibration2", "MinMaxCalibration", "EntropyCalibration", "LegacyCalibration")
_METHOD_ALGORITHM = {"entropy": "EntropyCalibration2", "minmax": "MinMaxCalibration", "percentile": "EntropyCalibration2"}
# A tensor that was constant 0 on all calibration data still needs a positive scale.
_MIN_AMAX = 1e-6


def trt_version_number(version: str) -> int:
    """``"8.6"`` → 8600, ``"8.5.2"`` → 8502, ``"10.3"`` → 100300, ``"10.3.0.30"`` → 100300.

    Example:
        >>> trt_version_number("8.5.2"), trt_version_number("10.3")
        (8502, 100300)
    """
    m = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.\d+)*\s*", str(version))
    if not m:
        raise QuantizeError(f"bad TensorRT version {version!r}", hint="use a dotted version such as 8.5.2 or 10.3")
    major, minor, patch = (int(g) if g else 0 for g in m.groups())
    if major >= 10:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


# Profiles write these lines as major.minor; every JetPack release of the line ships this patch.
# TensorRT 10.3: 10.3.0.30 on JetPack 6.1, 6.1.1, 6.2, 6.2.1, 6.2.2 (JetPack 6.x release notes).
KNOWN_PATCH = {"10.3": "10.3.0"}


def exact_trt_version(version: str) -> tuple[str, bool]:
    """(version to write into the header, whether it is the device's exact one).

    Example:
        >>> exact_trt_version("8.5.2"), exact_trt_version("10.3"), exact_trt_version("10.16")
        (('8.5.2', True), ('10.3.0', True), ('10.16.0', False))
    """
    parts = str(version).strip().split(".")
    if len(parts) >= 3:
        return ".".join(parts[:3]), True
    key = ".".join(parts[:2])
    if key in KNOWN_PATCH:
        return KNOWN_PATCH[key], True
    return f"{key}.0" if len(parts) == 2 else f"{parts[0]}.0.0", False


def header_rewrite_command(cache: str, out: str = "engines/calib.cache",
                           trtexec: str = "/usr/src/tensorrt/bin/trtexec") -> str:
    """Shell line (run in the bundle directory on the device) that copies ``cache`` to ``out`` with
    the header set to the running TensorRT's number, read from trtexec's own banner
    (``&&&& RUNNING TensorRT.trtexec [TensorRT v101601]``). The bundle's file is not touched: its
    checksum is in the manifest.

    Example:
        >>> cmd = header_rewrite_command("artifacts/c.cache")
        >>> cmd.endswith('sed "1s/^TRT-[0-9]*-/TRT-$v-/" artifacts/c.cache > engines/calib.cache')
        True
    """
    parent = out.rpartition("/")[0] or "."
    banner = r"s/.*\[TensorRT v\([0-9]*\)\].*/\1/p"
    return (f"mkdir -p {parent} && v=$({trtexec} --version 2>&1 | sed -n '{banner}' | head -n 1) && "
            f'sed "1s/^TRT-[0-9]*-/TRT-$v-/" {cache} > {out}')


def implicit_int8_versions(profile: Any) -> set[str]:
    """TensorRT versions of ``profile``'s JetPack lines that read calibration caches (≤ 10.x: TensorRT 11
    removed implicit quantization), one cache each."""
    return {line.tensorrt for line in profile.jetpacks if int(str(line.tensorrt).split(".")[0]) <= 10}


def note_cache_header(recipe: dict) -> dict:
    """Add the cache header the recipe's cache carries and, where it cannot be exact, the device-side rewrite."""
    if not recipe.get("calib_cache"):
        return recipe
    version, exact = exact_trt_version(str(recipe["tensorrt"]))
    recipe["calib_header_version"] = trt_version_number(version)
    recipe["calib_header_exact"] = exact
    if not exact:
        recipe.setdefault("notes", []).append(
            f"the calibration cache header says TensorRT {version} (the profile does not pin the patch of "
            f"TensorRT {recipe['tensorrt']}); TensorRT skips a cache of another version and trtexec then calibrates "
            f"on random data. `edgeinfer build` fixes the header itself; for trtexec first run: "
            f"{header_rewrite_command(recipe['calib_cache'])} and pass --calib=engines/calib.cache")
    return recipe


def scale_to_hex(scale: float) -> str:
    """float32 bits of ``scale`` as 8 big-endian hex digits (``0.0078721`` → ``3c00f9f4``)."""
    return struct.pack(">f", scale).hex()


def hex_to_scale(text: str) -> float:
    """Inverse of :func:`scale_to_hex`; accepts writers that drop leading zeros."""
    digits = text.strip().lower()
    if digits.startswith("0x"):
        digits = digits[2:]
    if not re.fullmatch(r"[0-9a-f]{1,8}", digits):
        raise QuantizeError(f"bad calibration scale {text!r}", hint="each line must be '<tensor>: <8 hex digits>'")
    return struct.unpack(">f", bytes.fromhex(digits.zfill(8)))[0]


def write_trt_calibration_cache(ranges: dict[str, float], *, trt_version: str = "10.3", method: str = "entropy",
                                algorithm: str | None = None) -> str:
    """The cache text for per-tensor ``amax`` values (from :func:`edgeinfer.quantize.compute_ranges`).

    Tensor names must be the ones TensorRT's ONNX parser gives (ONNX value names; see ``ranges``).

    Example:
        >>> write_trt_calibration_cache({"x": 127.0}, trt_version="10.3", method="minmax").splitlines()
        ['TRT-100300-MinMaxCalibration', 'x: 3f800000']
    """
    algo = algorithm or _METHOD_ALGORITHM.get(method)
    if algo not in ALGORITHMS:
        raise QuantizeError(f"unknown calibration method/algorithm {algorithm or method!r}",
                            hint=f"use method entropy, minmax or percentile, or algorithm one of {', '.join(ALGORITHMS)}")
    if not ranges:
        raise QuantizeError("no tensor ranges to write", hint="run calibration first (compute_ranges)")
    lines = [f"TRT-{trt_version_number(trt_version)}-{algo}"]
    for name, amax in ranges.items():
        if not math.isfinite(amax):
            raise QuantizeError(f"tensor {name!r} has a non-finite range ({amax})",
                                hint="check the calibration images (NaN/inf inputs) or the model")
        lines.append(f"{name}: {scale_to_hex(max(abs(float(amax)), _MIN_AMAX) / 127.0)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TrtCalibrationCache:
    """A parsed cache: version number, algorithm, per-tensor scales (``amax = scale × 127``)."""

    version: int
    algorithm: str
    scales: dict[str, float] = field(default_factory=dict)

    @property
    def amax(self) -> dict[str, float]:
        return {k: v * 127.0 for k, v in self.scales.items()}


def parse_trt_calibration_cache(text: str) -> TrtCalibrationCache:
    """Read a TensorRT calibration cache (ours or NVIDIA's) back.

    Example:
        >>> c = parse_trt_calibration_cache("TRT-8501-EntropyCalibration2\\nimages: 3c00f9f4\\n")
        >>> c.version, round(c.scales["images"], 7)
        (8501, 0.0078721)
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    header = re.fullmatch(r"TRT-(\d+)-(\w+)", lines[0]) if lines else None
    if not header:
        raise QuantizeError("not a TensorRT calibration cache (first line must be 'TRT-<version>-<algorithm>')",
                            hint="ONNX Runtime's calibration.cache is a different format; write one with "
                                 "write_trt_calibration_cache")
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        name, sep, value = line.rpartition(":")  # tensor names may contain ':'; the hex never does
        if not sep or not name.strip():
            raise QuantizeError(f"calibration cache line {number} is malformed: {line!r}",
                                hint="each line must be '<tensor>: <hex scale>'")
        scales[name.strip()] = hex_to_scale(value)
    return TrtCalibrationCache(int(header.group(1)), header.group(2), scales)
