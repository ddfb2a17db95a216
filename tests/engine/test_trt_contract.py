"""The TensorRT API contract: every TensorRT name edgeinfer uses exists in 8.5, 8.6, 10.3, 10.16,
11.1 and 11.4, or sits behind a guard the checker recognises; and the checker really catches
broken names (a checker that reports nothing would pass the first test trivially)."""
from __future__ import annotations

from pathlib import Path

import pytest
from trt_contract import DATA_DIR, PREDICATES, SUPPORTED, ContractChecker, check_package, load_tables

from edgeinfer.engine import trt_shim

REPO = Path(__file__).resolve().parents[2]


def test_table_copy_is_present_and_covers_all_supported_versions():
    assert (DATA_DIR / "README.md").is_file()
    tables = load_tables()
    assert tuple(tables) == SUPPORTED
    assert "FP16" in tables["10.16"].enums["BuilderFlag"] and "FP16" not in tables["11.4"].enums["BuilderFlag"]
    assert "DLAWorkspaceAllocationStrategy" in tables["11.4"].names  # 11.4 really comes from the wheel table


def test_edgeinfer_uses_only_names_that_exist_or_are_guarded():
    violations = check_package(REPO / "edgeinfer")
    assert violations == [], "\n".join(map(str, violations))


def test_the_checker_sees_the_builder_and_shim():
    # Guard against the checker silently skipping our code: it must find TensorRT uses to check.
    source = (REPO / "edgeinfer/engine/trt_shim.py").read_text()
    broken = source.replace("@requires_trt(", "@_not_a_guard(")
    found = {v.name for v in ContractChecker().check_source(broken, "trt_shim.py")}
    assert {"trt.BuilderFlag.FP16", "trt.BuilderFlag.INT8", "config.int8_calibrator",
            "config.builder_optimization_level", "trt.IInt8EntropyCalibrator2",
            "trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH", "engine.device_memory_size"} <= found


@pytest.mark.parametrize("snippet, name, missing", [
    ("def f(trt, config):\n    config.set_flag(trt.BuilderFlag.FP16)\n", "trt.BuilderFlag.FP16", ("11.1", "11.4")),
    ("def f(trt, config):\n    config.max_workspace_size = 1 << 30\n", "config.max_workspace_size",
     ("10.3", "10.16", "11.1", "11.4")),
    ("def f(trt):\n    return trt.NonExistent\n", "trt.NonExistent", SUPPORTED),
    ("def f(trt):\n    b = trt.Builder(None)\n    c = b.create_builder_config()\n    c.int8_calibrator = None\n",
     "c.int8_calibrator", ("11.1", "11.4")),
    ("def f(trt, data):\n    e = trt.Runtime(None).deserialize_cuda_engine(data)\n    return e.num_bindings\n",
     "e.num_bindings", ("10.3", "10.16", "11.1", "11.4")),
    ("def f(trt):\n    return trt.ILogger.Severity.NOPE\n", "trt.ILogger.Severity.NOPE", SUPPORTED),
    ("class B:\n    def __init__(self, trt):\n        self.r = trt.Runtime(None)\n    def go(self):\n"
     "        return self.r.nope\n", "self.r.nope", SUPPORTED),
    ("def f(trt, config):\n    config.builder_optimization_level = 3\n", "config.builder_optimization_level", ("8.5",)),
])
def test_checker_reports_broken_names(snippet, name, missing):
    found = ContractChecker().check_source(snippet)
    assert [(v.name, v.missing_in) for v in found] == [(name, tuple(missing))]


@pytest.mark.parametrize("snippet", [
    "@requires_trt(feature='x', max_major=10)\ndef f(trt, config):\n    config.set_flag(trt.BuilderFlag.FP16)\n",
    "@requires_trt(feature='x', min='8.6')\ndef f(trt, config):\n    config.builder_optimization_level = 3\n",
    "def f(trt, config):\n    if has_precision_flags(trt):\n        config.set_flag(trt.BuilderFlag.INT8)\n",
    "def f(trt, config):\n    if not has_calibrator(trt):\n        return\n    else:\n        config.int8_calibrator = None\n",
    "def f(trt, engine):\n    if hasattr(engine, 'num_bindings'):\n        return engine.num_bindings\n",
    "def f(trt):\n    return getattr(trt.BuilderFlag, 'FP16', None)\n",
])
def test_guarded_uses_pass(snippet):
    assert ContractChecker().check_source(snippet) == []


def test_guard_ranges_are_applied_not_just_recognised():
    # A guard that still admits 11.x must not hide an 11.x-missing name.
    snippet = "@requires_trt(feature='x', min='10.0')\ndef f(trt, config):\n    config.set_flag(trt.BuilderFlag.FP16)\n"
    assert [v.missing_in for v in ContractChecker().check_source(snippet)] == [("11.1", "11.4")]
    snippet = "def f(trt, config):\n    if has_strongly_typed(trt):\n        config.set_flag(trt.BuilderFlag.FP16)\n"
    assert [v.missing_in for v in ContractChecker().check_source(snippet)] == [("11.1", "11.4")]


class _FakeTrt:
    def __init__(self, version: str) -> None:
        self.__version__ = version


@pytest.mark.parametrize("version", SUPPORTED)
def test_checker_predicates_agree_with_the_shim(version):
    tables = load_tables()
    trt = _FakeTrt(version + ".0")
    for name, predicate in PREDICATES.items():
        assert getattr(trt_shim, name)(trt) == predicate(tables[version].key), name
