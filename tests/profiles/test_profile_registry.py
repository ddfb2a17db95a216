"""Names, aliases, families, comma lists and did-you-mean."""
from __future__ import annotations

import pytest

from edgeinfer.errors import ProfileError
from edgeinfer.profiles import explain_resolution, get_profile, load_profiles, resolve_devices

ORIN = ["orin-nano-4gb", "orin-nano-8gb", "orin-nx-8gb", "orin-nx-16gb", "agx-orin-32gb", "agx-orin-64gb"]


def names(spec):
    return [p.name for p in resolve_devices(spec)]


@pytest.mark.parametrize("spec,expected", [
    ("orin", ORIN),
    ("orin-nano", ["orin-nano-4gb", "orin-nano-8gb"]),
    ("orin-nx", ["orin-nx-8gb", "orin-nx-16gb"]),
    ("agx-orin", ["agx-orin-32gb", "agx-orin-64gb"]),
    ("xavier", ["xavier-nx", "agx-xavier"]),
    ("nano", ["jetson-nano"]),
    ("thor", ["agx-thor"]),
    ("orin-nx-16gb", ["orin-nx-16gb"]),
    (" Orin-NX-16GB , xavier-nx ", ["xavier-nx", "orin-nx-16gb"]),
    ("orin,orin-nx-8gb,agx-orin", ORIN),  # deduplicated
    (["orin-nx", "thor"], ["orin-nx-8gb", "orin-nx-16gb", "agx-thor"]),
])
def test_resolution(spec, expected):
    assert names(spec) == expected


def test_all_selects_every_profile():
    assert len(names("all")) == 10


def test_explain_keeps_each_term():
    assert explain_resolution("xavier,thor") == [("xavier", ["xavier-nx", "agx-xavier"]), ("thor", ["agx-thor"])]


@pytest.mark.parametrize("typo,suggestion", [
    ("orin-nx-16", "orin-nx-16gb"), ("xavier-nx2", "xavier-nx"), ("agx-thro", "agx-thor"), ("orni", "orin"),
])
def test_near_miss_suggests_never_guesses(typo, suggestion):
    with pytest.raises(ProfileError, match=f"did you mean '{suggestion}'"):
        resolve_devices(typo)
    with pytest.raises(ProfileError, match=f"unknown device '{typo}'"):
        get_profile(typo)


def test_far_miss_lists_known_names():
    with pytest.raises(ProfileError, match="known names: .*orin-nx-16gb"):
        get_profile("raspberry-pi")


def test_family_is_not_a_single_profile():
    with pytest.raises(ProfileError, match="names several devices"):
        get_profile("orin-nx")


def test_empty_spec():
    with pytest.raises(ProfileError, match="no device given"):
        resolve_devices(" , ")


def test_unknown_jetpack_line_suggests():
    with pytest.raises(ProfileError, match="JetPack 6.3 is not a known line for orin-nx-16gb"):
        get_profile("orin-nx-16gb").jetpack("6.3")
    assert get_profile("orin-nx-16gb").jetpack("6.2.0").jetpack == "6.2"


def test_alias_clash_is_rejected(tmp_path, repo_root):
    src = (repo_root / "device_profiles" / "agx-thor.yaml").read_text()
    (tmp_path / "agx-thor.yaml").write_text(src)
    (tmp_path / "thor.yaml").write_text(src.replace("name: agx-thor", "name: thor").replace("aliases: [thor]", "aliases: []"))
    with pytest.raises(ProfileError, match="'thor' is already used"):
        load_profiles(tmp_path)


def test_profiles_dir_override(tmp_path, repo_root, monkeypatch):
    from edgeinfer.profiles import list_profiles

    (tmp_path / "xavier-nx.yaml").write_text((repo_root / "device_profiles" / "xavier-nx.yaml").read_text())
    monkeypatch.setenv("EDGEINFER_PROFILES_DIR", str(tmp_path))
    assert [p.name for p in list_profiles()] == ["xavier-nx"]
    monkeypatch.setenv("EDGEINFER_PROFILES_DIR", str(tmp_path / "empty"))
    with pytest.raises(ProfileError, match="no device profiles"):
        list_profiles()


def test_first_suggestion_is_a_module_the_runtime_supports():
    # 'jetson-nan' is closest to the packaging-only Jetson Nano; a user who mistypes is better served by
    # a module edgeinfer runs on first, with the packaging-only one still listed and labelled.
    with pytest.raises(ProfileError) as info:
        resolve_devices("jetson-nan")
    assert info.value.hint.startswith("did you mean 'orin-nano'?")
    assert "'jetson-nano' (packaging only)" in info.value.hint
