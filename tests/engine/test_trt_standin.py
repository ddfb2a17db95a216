"""The stand-in is generated from the API table: it must lack what the real version lacks."""
from __future__ import annotations

import pytest
from trt_contract import load_tables
from trt_standin import StandinGap, make_standin


@pytest.mark.parametrize("version", ["8.5", "10.3", "11.1", "11.4"])
def test_standin_has_exactly_the_tables_enum_values(version):
    trt = make_standin(version)
    table = load_tables()[version]
    assert [v.name for v in trt.BuilderFlag.__members__.values()] == list(table.enums["BuilderFlag"])
    assert hasattr(trt.BuilderFlag, "FP16") == (version != "11.1" and version != "11.4")


def test_unknown_names_raise_attribute_error_like_the_real_module():
    trt = make_standin("10.3")
    with pytest.raises(AttributeError):
        trt.NonExistent  # noqa: B018
    with pytest.raises(AttributeError):
        trt.BuilderFlag.STRICT_TYPES  # noqa: B018 - removed in 10.x
    config = trt.Builder(trt.Logger()).create_builder_config()
    with pytest.raises(AttributeError):
        config.max_workspace_size = 1 << 30  # gone in 10.x
    assert not hasattr(make_standin("11.1"), "IInt8EntropyCalibrator2")


def test_constructors_only_where_the_table_lists_init():
    trt = make_standin("10.3")
    with pytest.raises(TypeError, match="No constructor"):
        trt.IBuilderConfig()
    trt.Builder(trt.Logger())  # listed with __init__


def test_listed_member_without_behaviour_fails_loudly():
    trt = make_standin("10.3")
    builder = trt.Builder(trt.Logger())
    with pytest.raises(StandinGap):
        builder.is_network_supported(None, None)


def test_calls_are_recorded():
    trt = make_standin("8.6")
    config = trt.Builder(trt.Logger()).create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    config.builder_optimization_level = 4
    assert ("IBuilderConfig.set_flag", (trt.BuilderFlag.FP16,)) in trt.calls
    assert ("IBuilderConfig.builder_optimization_level=", (4,)) in trt.calls
