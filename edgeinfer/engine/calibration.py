"""TensorRT INT8 calibration caches as the builder consumes them (implicit quantization, TRT <= 10.x).

A cache is ASCII: a header ``TRT-<NV_TENSORRT_VERSION>-<Algorithm>`` and one ``tensor: hexscale``
line per tensor (the format NVIDIA/Model-Optimizer's ``calib_utils.py`` reads and
NVIDIA-AI-IOT/cuDLA-samples writes). The scales do not depend on the TensorRT version; the
header does. The bundle's cache is written on the host for one JetPack line, so before handing it
to TensorRT the header's version is set to the running TensorRT's (the algorithm is kept and
picks the calibrator class, which TensorRT requires to match).

Example:
    >>> cache = b"TRT-8502-EntropyCalibration2\\nimages: 3c010a14\\n"
    >>> algo, data = prepare_cache(cache, (10, 3, 0))
    >>> algo, data.splitlines()[0]
    ('entropy2', b'TRT-100300-EntropyCalibration2')
"""
from __future__ import annotations

import re
from typing import Tuple

from ..errors import BuildError
from .trt_shim import trt_version_code

_HEADER = re.compile(rb"^TRT-(\d+)-(\w+)\s*$")
_ALGORITHMS = {b"EntropyCalibration2": "entropy2", b"MinMaxCalibration": "minmax"}


def prepare_cache(data: bytes, trt_version: Tuple[int, int, int]) -> Tuple[str, bytes]:
    """(calibrator algorithm, cache bytes with the header set to ``trt_version``); BuildError if malformed."""
    lines = data.splitlines()
    match = _HEADER.match(lines[0]) if lines else None
    if match is None or len(lines) < 2:
        raise BuildError("the bundle's INT8 calibration cache has no 'TRT-<version>-<Algorithm>' header or no scales",
                         hint="re-package with --precision int8 to regenerate it")
    algorithm = _ALGORITHMS.get(match.group(2))
    if algorithm is None:
        raise BuildError(f"calibration cache algorithm {match.group(2).decode()!r} is not supported",
                         hint="re-package with --calib-method entropy or minmax")
    header = b"TRT-%d-%s" % (trt_version_code(trt_version), match.group(2))
    return algorithm, b"\n".join([header] + lines[1:]) + b"\n"
