"""Bad profile YAMLs: each is rejected with the file and the offending key in the message."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from edgeinfer.errors import ProfileError
from edgeinfer.profiles import load_profile

BASE_FILE = Path(__file__).resolve().parents[2] / "device_profiles" / "orin-nx-16gb.yaml"
BASE = yaml.safe_load(BASE_FILE.read_text())


def _set(path, value):
    def mutate(d):
        keys = path.split(".")
        target = d
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        last = keys[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


def _drop(path):
    def mutate(d):
        *parents, last = path.split(".")
        target = d
        for k in parents:
            target = target[int(k)] if isinstance(target, list) else target[k]
        del target[last]
    return mutate


CASES = [
    ("unknown-key", _set("dla_corez", 2), "dla_corez"),
    ("unknown-nested-key", _set("jetpacks.3.trt", "10.3"), "jetpacks[3].trt"),
    ("wrong-type-int", _set("cuda_cores", "1024"), "cuda_cores"),
    ("bool-is-not-int", _set("dla_cores", True), "dla_cores"),
    ("bad-cc-float", _set("compute_capability", 8.7), "compute_capability"),
    ("bad-cc-text", _set("compute_capability", "sm87"), "compute_capability"),
    ("negative-dla", _set("dla_cores", -1), "dla_cores"),
    ("dla-without-generation", _set("dla_generation", 0), "dla_generation"),
    ("generation-3", _set("dla_generation", 3), "dla_generation"),
    ("unknown-precision", _set("precisions", ["fp32", "int3"]), "precisions[1]"),
    ("missing-required", _drop("gpu_arch"), "gpu_arch"),
    ("missing-jetpack-field", _drop("jetpacks.0.cudnn"), "jetpacks[0].cudnn"),
    ("unknown-arch", _set("gpu_arch", "hopper"), "gpu_arch"),
    ("unquoted-trt-version", _set("jetpacks.9.tensorrt", 10.3), "jetpacks[9].tensorrt"),
    ("jetpacks-out-of-order", _set("jetpacks.0.jetpack", "9.0"), "jetpacks[1].jetpack"),
    ("trt11-on-jp6", _set("jetpacks.13.tensorrt", "11.4.1"), "jetpacks[13].tensorrt"),
    ("bare-off-is-false", _set("defaults.dla", False), "defaults.dla"),
    ("bad-packaging-precision", _set("defaults.precision", "fp32"), "defaults.precision"),
    ("two-defaults", _set("power_modes.0.default", True), "power_modes"),
    ("duplicate-mode-id", _set("power_modes.1.id", 0), "power_modes"),
    ("bad-name", _set("name", "Orin NX"), "name"),
    ("name-not-file-stem", _set("name", "orin-nx-32gb"), "name"),
    ("clock-without-dla", _set("dla_max_clock_mhz", None), "dla_max_clock_mhz"),
    ("upper-case-pattern", _set("detect.model_patterns", ["Orin NX"]), "detect.model_patterns[0]"),
    ("runtime-flag-lies", _set("runtime_supported", False), "runtime_supported"),
    ("jetpacks-not-list", _set("jetpacks", {"jetpack": "6.2"}), "jetpacks"),
]


@pytest.mark.parametrize("mutate,key", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_yaml_names_file_and_key(tmp_path, mutate, key):
    data = copy.deepcopy(BASE)
    mutate(data)
    path = tmp_path / "orin-nx-16gb.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert "orin-nx-16gb.yaml" in message
    assert f"'{key}'" in message, message


def test_the_base_itself_is_valid(tmp_path):
    path = tmp_path / "orin-nx-16gb.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False))
    assert load_profile(path).dla_cores == 2


def test_expected_and_got_are_in_the_message(tmp_path):
    data = copy.deepcopy(BASE)
    data["dla_cores"] = -3
    path = tmp_path / "orin-nx-16gb.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=r"expected an integer >= 0, got -3"):
        load_profile(path)


def test_not_yaml_and_not_a_mapping(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ProfileError, match="broken.yaml: not valid YAML"):
        load_profile(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ProfileError, match="scalar.yaml"):
        load_profile(scalar)
