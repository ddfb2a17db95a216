"""TensorRT calibration cache encoding: known values from NVIDIA caches, round trips, bad input."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from edgeinfer.errors import QuantizeError
from edgeinfer.profiles import get_profile
from edgeinfer.quantize import parse_trt_calibration_cache, write_trt_calibration_cache
from edgeinfer.quantize.calib_cache import hex_to_scale, scale_to_hex, trt_version_number


def test_nvidia_example_value():
    # cuDLA-samples cache line `images: 3c00f9f4` <-> scale 0.0078721 (amax ~1.0 for a 0..1 input)
    assert hex_to_scale("3c00f9f4") == pytest.approx(0.0078721, abs=5e-8)
    assert scale_to_hex(hex_to_scale("3c00f9f4")) == "3c00f9f4"
    assert scale_to_hex(1.0) == "3f800000"
    assert scale_to_hex(1.0 / 127.0) == "3c010204"


def test_leading_zeros_dropped_are_accepted():
    tiny = struct.unpack(">f", bytes.fromhex("0000f9f4"))[0]
    assert hex_to_scale("f9f4") == tiny
    assert hex_to_scale("0x3c00f9f4") == hex_to_scale("3c00f9f4")


@pytest.mark.parametrize("version, number", [("8.6", 8600), ("8.5.1", 8501), ("8.5.2.2", 8502),
                                             ("10.3", 100300), ("10.3.0", 100300), ("11.1.0", 110100)])
def test_version_numbers(version, number):
    assert trt_version_number(version) == number


def test_header_and_round_trip():
    rng = np.random.default_rng(1)
    ranges = {"images": 1.0, "/model.0/act/Mul_output_0": 7.25, "odd:name": float(rng.random() * 100)}
    text = write_trt_calibration_cache(ranges, trt_version="8.5.2", method="minmax")
    lines = text.splitlines()
    assert lines[0] == "TRT-8502-MinMaxCalibration"
    assert all(len(ln.rsplit(": ", 1)[1]) == 8 for ln in lines[1:])
    cache = parse_trt_calibration_cache(text)
    assert (cache.version, cache.algorithm) == (8502, "MinMaxCalibration")
    for name, amax in ranges.items():
        assert cache.amax[name] == pytest.approx(amax, rel=1e-6)
    assert write_trt_calibration_cache(ranges).splitlines()[0] == "TRT-100300-EntropyCalibration2"
    assert write_trt_calibration_cache(ranges, method="percentile", algorithm="MinMaxCalibration").startswith(
        "TRT-100300-MinMaxCalibration")


def test_zero_range_gets_a_positive_scale():
    cache = parse_trt_calibration_cache(write_trt_calibration_cache({"dead": 0.0}))
    assert cache.scales["dead"] > 0


def test_bad_inputs():
    with pytest.raises(QuantizeError, match="not a TensorRT calibration cache"):
        parse_trt_calibration_cache("/model.0/conv/Conv_output_0 8.05\n")  # ORT's calibration.cache format
    with pytest.raises(QuantizeError, match="malformed|bad calibration scale"):
        parse_trt_calibration_cache("TRT-8600-EntropyCalibration2\nimages 3c00f9f4\n")
    with pytest.raises(QuantizeError):
        write_trt_calibration_cache({}, trt_version="10.3")
    with pytest.raises(QuantizeError):
        write_trt_calibration_cache({"x": float("nan")})
    with pytest.raises(QuantizeError):
        write_trt_calibration_cache({"x": 1.0}, method="kl")
    with pytest.raises(QuantizeError):
        trt_version_number("ten")


def test_exact_header_versions_per_jetpack_line():
    from edgeinfer.quantize.calib_cache import exact_trt_version, implicit_int8_versions

    assert exact_trt_version("8.5.2") == ("8.5.2", True)
    assert exact_trt_version("10.3") == ("10.3.0", True)  # JetPack 6.1-6.2.2 all ship 10.3.0.30
    assert exact_trt_version("10.16") == ("10.16.0", False)  # 10.16.0 (x86) vs 10.16.1 (Jetson tarball)
    nx = get_profile("orin-nx-16gb")
    assert implicit_int8_versions(nx) == {"8.4.1", "8.5.2", "8.6.2", "10.3", "10.16"}
    assert "11.4.1" not in implicit_int8_versions(get_profile("agx-thor"))  # TensorRT 11: no calibration caches


def test_each_recipe_points_at_its_own_cache_and_inexact_headers_say_how_to_fix_them():
    from edgeinfer.packager.package import _recipes
    from edgeinfer.packager.targets import resolve_target

    target = resolve_target(get_profile("orin-nx-16gb"), precision="int8", dla="off", jetpack=None)
    caches = {v: f"artifacts/cache-{v}.cache" for v in ("8.4.1", "8.5.2", "8.6.2", "10.3", "10.16")}
    artifacts = {"onnx": "artifacts/m.onnx", "qdq_onnx": "artifacts/q.onnx", "calib_cache": caches["10.16"]}
    recipes = _recipes(target, artifacts, caches, {"decision": "gpu", "dla_core": None, "nodes": []},
                       {"images": [1, 3, 320, 320]}, float_layers=[])
    jp5, jp6, jp72 = recipes["jp5.1.2-trt8.5.2"], recipes["jp6.2-trt10.3"], recipes["jp7.2-trt10.16"]
    assert jp5["calib_cache"] == caches["8.5.2"] and f"--calib={caches['8.5.2']}" in jp5["trtexec"]
    assert jp5["calib_header_version"] == 8502 and jp5["calib_header_exact"]
    assert jp6["calib_cache"] == caches["10.3"] and jp6["calib_header_version"] == 100300
    assert not any("header" in n for n in jp5["notes"] + jp6["notes"])
    assert jp72["calib_header_exact"] is False
    note = next(n for n in jp72["notes"] if "header" in n)
    assert "trtexec --version" in note and "--calib=engines/calib.cache" in note and caches["10.16"] in note
