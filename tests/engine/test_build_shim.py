"""Version shim: guards raise BuildError outside their range; support rules; cache headers."""
from __future__ import annotations

import pytest

from edgeinfer.engine import trt_shim
from edgeinfer.engine.calibration import prepare_cache
from edgeinfer.errors import BuildError


class Trt:
    def __init__(self, version):
        self.__version__ = version


@pytest.mark.parametrize("version, allowed", [("8.5.2.2", False), ("8.6.2.3", True), ("10.3.0.30", True), ("11.1.0.106", True)])
def test_requires_trt_enforces_min(version, allowed):
    calls = []

    @trt_shim.requires_trt(feature="thing", min="8.6")
    def use(trt):
        calls.append(trt)

    if allowed:
        use(Trt(version))
        assert calls
    else:
        with pytest.raises(BuildError, match="thing is not available in TensorRT 8.5.2.2"):
            use(Trt(version))


def test_precision_flags_guard_refuses_trt11():
    with pytest.raises(BuildError, match="not available in TensorRT 11.1"):
        trt_shim.set_precision_flags(Trt("11.1.0.106"), object(), "fp16")
    with pytest.raises(BuildError):
        trt_shim.make_cache_calibrator(Trt("11.4.0.106"), b"")


def test_jetpack4_refused():
    with pytest.raises(BuildError, match="JetPack 4"):
        trt_shim.check_supported(Trt("8.2.1.8"))
    trt_shim.check_supported(Trt("8.5.2.2"))


def test_dla_support_rules():
    agx = {"profile_name": "agx-orin-64gb", "families": ("orin", "agx-orin")}
    assert trt_shim.dla_support((10, 3, 0), jetpack="6.2", **agx) is None
    assert "no DLA" in trt_shim.dla_support((11, 1, 0), jetpack="7.2.2", **agx)
    assert trt_shim.dla_support((11, 4, 1), jetpack="7.2.2", **agx) is None
    assert "7.2.2" in trt_shim.dla_support((11, 4, 1), jetpack="7.2.1", **agx)
    assert "AGX Orin" in trt_shim.dla_support((11, 4, 1), jetpack="7.2.2", profile_name="orin-nx-16gb", families=("orin",))


def test_version_parsing_and_codes():
    assert trt_shim.parse_version("10.16.1.11") == (10, 16, 1)
    assert trt_shim.trt_version_code((8, 5, 2)) == 8502 and trt_shim.trt_version_code((10, 3, 0)) == 100300
    with pytest.raises(BuildError):
        trt_shim.parse_version("tensorrt")


def test_calibration_cache_header_and_algorithm():
    algo, data = prepare_cache(b"TRT-100300-MinMaxCalibration\nimages: 3c010a14\n", (8, 6, 2))
    assert algo == "minmax" and data == b"TRT-8602-MinMaxCalibration\nimages: 3c010a14\n"
    with pytest.raises(BuildError, match="header"):
        prepare_cache(b"images 0.5\n", (10, 3, 0))
    with pytest.raises(BuildError, match="not supported"):
        prepare_cache(b"TRT-8600-LegacyCalibration\nx: 1\n", (10, 3, 0))
