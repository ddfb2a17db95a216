"""Device detection from real-format fixture files (nv_tegra_release, device-tree model, meminfo)."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgeinfer.errors import ProfileError
from edgeinfer.profiles import detect_current_device, parse_l4t_release

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def detect(name, **overrides):
    d = FIXTURES / name
    paths = dict(tegra_release=d / "nv_tegra_release", dt_model=d / "model", meminfo=d / "meminfo")
    paths.update(overrides)
    return detect_current_device(**paths)


@pytest.mark.parametrize("fixture,profile,l4t,jetpack,trt", [
    ("jp5-xavier-nx", "xavier-nx", "35.3.1", "5.1.1", "8.5.2"),
    ("jp6-orin-nx-16gb", "orin-nx-16gb", "36.3.0", "6.0", "8.6.2"),
    ("jp62-orin-nano-8gb-super", "orin-nano-8gb", "36.4.3", "6.2", "10.3"),
    ("jp61-agx-orin-64gb", "agx-orin-64gb", "36.4.0", "6.1", "10.3"),
    ("jp4-agx-xavier", "agx-xavier", "32.7.1", "4.6.1", "8.2.1"),
])
def test_detect_from_fixtures(fixture, profile, l4t, jetpack, trt):
    found = detect(fixture)
    assert found is not None
    assert (found.profile.name, found.l4t) == (profile, l4t)
    assert found.jetpack is not None and found.jetpack.jetpack == jetpack and found.jetpack.tensorrt == trt
    assert "\x00" not in found.model_string


def test_non_jetson_is_none():
    d = FIXTURES / "x86-host"
    assert detect_current_device(tegra_release=d / "nv_tegra_release", dt_model=d / "model",
                                 meminfo=d / "meminfo") is None


def test_memory_variant_from_meminfo(tmp_path):
    small = tmp_path / "meminfo"
    small.write_text("MemTotal:       30536404 kB\n")
    assert detect("jp61-agx-orin-64gb", meminfo=small).profile.name == "agx-orin-32gb"
    small.write_text("MemTotal:        7454640 kB\n")
    assert detect("jp6-orin-nx-16gb", meminfo=small).profile.name == "orin-nx-8gb"


def test_ambiguous_without_meminfo_is_an_error(tmp_path):
    with pytest.raises(ProfileError, match="could be any of orin-nx-8gb, orin-nx-16gb"):
        detect("jp6-orin-nx-16gb", meminfo=tmp_path / "missing")


def test_unknown_module_and_unknown_l4t(tmp_path):
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson TX2 Developer Kit\x00")
    with pytest.raises(ProfileError, match="unsupported Jetson module 'NVIDIA Jetson TX2"):
        detect("jp5-xavier-nx", dt_model=model)
    release = tmp_path / "rel"
    release.write_text("# R35 (release), REVISION: 9.9, GCID: 1\n")
    found = detect("jp5-xavier-nx", tegra_release=release)
    assert found.l4t == "35.9.9" and found.jetpack is None


def test_parse_release_variants():
    assert parse_l4t_release("# R36 (release), REVISION: 4.3, GCID: 38968081") == "36.4.3"
    assert parse_l4t_release("# R38 (release), REVISION: 2, GCID: 1") == "38.2.0"
    with pytest.raises(ProfileError, match="cannot parse the L4T release line"):
        parse_l4t_release("Ubuntu 22.04")
