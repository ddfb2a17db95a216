"""The shipped YAMLs: all load, the packaged copy equals the canonical one, facts hold."""
from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest

from edgeinfer.profiles import L4T_TO_JETPACK, get_profile, list_profiles, load_profile, profile_from_dict

REPO = Path(__file__).resolve().parents[2]
CANONICAL = REPO / "device_profiles"
PACKAGED = REPO / "edgeinfer" / "_data" / "device_profiles"
EXPECTED = {
    "jetson-nano", "xavier-nx", "agx-xavier", "orin-nano-4gb", "orin-nano-8gb", "orin-nx-8gb",
    "orin-nx-16gb", "agx-orin-32gb", "agx-orin-64gb", "agx-thor",
}


def test_packaged_copy_is_identical_to_canonical():
    canonical = sorted(p.name for p in CANONICAL.glob("*.yaml"))
    packaged = sorted(p.name for p in PACKAGED.glob("*.yaml"))
    assert canonical == packaged, "run: cp device_profiles/*.yaml edgeinfer/_data/device_profiles/"
    _, mismatch, errors = filecmp.cmpfiles(CANONICAL, PACKAGED, canonical, shallow=False)
    assert not mismatch and not errors, f"drifted: {mismatch + errors}; run: cp device_profiles/*.yaml edgeinfer/_data/device_profiles/"


@pytest.mark.parametrize("path", sorted(CANONICAL.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_yaml_loads_and_round_trips(path):
    profile = load_profile(path)
    assert profile.name == path.stem
    again = profile_from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again == profile


def test_the_catalogue_has_every_module():
    assert {p.name for p in list_profiles()} == EXPECTED


def test_dla_facts():
    cores = {p.name: (p.dla_cores, p.dla_generation) for p in list_profiles()}
    assert cores["jetson-nano"] == (0, 0)
    assert cores["orin-nano-4gb"] == cores["orin-nano-8gb"] == (0, 0)
    assert cores["agx-thor"] == (0, 0)
    assert cores["orin-nx-8gb"] == (1, 2)
    assert cores["orin-nx-16gb"] == cores["agx-orin-32gb"] == cores["agx-orin-64gb"] == (2, 2)
    assert cores["xavier-nx"] == cores["agx-xavier"] == (2, 1)


def test_jetpack_software_facts():
    nx = get_profile("orin-nx-16gb")
    assert nx.jetpack("6.2").tensorrt == "10.3" and nx.jetpack("6.2").l4t == "36.4.3"
    assert nx.jetpack("6.0").tensorrt == "8.6.2"
    assert nx.jetpack("5.1.1").l4t == "35.3.1" and nx.jetpack("5.1.1").python == "3.8"
    assert nx.jetpack("7.2").tensorrt == "10.16"
    # JetPack 6.x Orin must stay on TensorRT 10.x or older.
    for p in list_profiles():
        for line in p.jetpacks:
            if line.jetpack.startswith("6."):
                assert line.trt_major <= 10, (p.name, line)
    thor = get_profile("thor")
    assert [j.jetpack.split(".")[0] for j in thor.jetpacks] == ["7"] * len(thor.jetpacks)
    assert "11.4.1" in thor.tensorrt_versions and thor.tensorrt_upgrades[0].min_jetpack == "7.2.2"
    assert "11.4.1" not in get_profile("orin-nx-16gb").tensorrt_versions


def test_nano_is_packaging_only_jetpack4():
    nano = get_profile("nano")
    assert nano.runtime_supported is False
    assert {j.python for j in nano.jetpacks} == {"3.6"}
    assert {j.tensorrt for j in nano.jetpacks} == {"8.0.1", "8.2.1"}
    assert "packaging only" in nano.notes.lower()


def test_super_modes_only_on_orin_nano_and_nx():
    for p in list_profiles():
        has_super = any(m.super_mode for m in p.power_modes)
        assert has_super == (p.name.startswith("orin-nano") or p.name.startswith("orin-nx")), p.name
    assert get_profile("orin-nano-8gb").power_mode("MAXN_SUPER").id == 2


def test_every_profile_line_agrees_with_the_l4t_table():
    for p in list_profiles():
        for line in p.jetpacks:
            assert L4T_TO_JETPACK.get(line.l4t) == line.jetpack, (p.name, line.l4t)


def test_unconfirmed_values_are_commented():
    text = (CANONICAL / "orin-nx-8gb.yaml").read_text()
    bandwidth = next(line for line in text.splitlines() if line.startswith("memory_bandwidth_gbs"))
    assert "null" in bandwidth and "NOT FOUND" in bandwidth
    thor = (CANONICAL / "agx-thor.yaml").read_text()
    assert "[S]" in next(line for line in thor.splitlines() if line.startswith("memory_bandwidth_gbs"))
