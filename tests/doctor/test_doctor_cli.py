"""`edgeinfer doctor` through the real CLI."""
from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_json_on_plain_host(run_cli, tmp_path):
    result = run_cli("doctor", "--json", "--root", FIXTURES / "x86-host", "--spool", tmp_path / "s",
                     "--engine-cache", tmp_path / "e")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] in ("ok", "warn") and data["device"] is None
    names = [c["name"] for c in data["checks"]]
    assert names[:3] == ["device", "jetpack", "tensorrt"] and "engine_cache" in names
    assert all(c["status"] in ("OK", "WARN", "FAIL", "SKIP") for c in data["checks"])


def test_text_on_jetson_tree_fails_with_what_to_do(run_cli, tmp_path):
    result = run_cli("doctor", "--root", FIXTURES / "jp5-xavier-nx", "--spool", tmp_path / "s",
                     "--engine-cache", tmp_path / "e")
    lines = result.stdout.splitlines()
    assert any(line.startswith("[OK  ] device") and "xavier-nx" in line for line in lines)
    assert any(line.startswith("[WARN] clocks") for line in lines)
    assert any("-> " in line and "jetson_clocks" in line for line in lines)
    if "[FAIL]" in result.stdout:
        assert result.returncode == 1 and lines[-1] == "overall: FAIL"
    assert "Traceback" not in result.stderr


def test_quick_json_is_a_healthcheck(run_cli, tmp_path):
    result = run_cli("doctor", "--quick", "--json", "--root", FIXTURES / "jp6-orin-nx-16gb",
                     "--spool", tmp_path / "s", "--engine-cache", tmp_path / "e")
    data = json.loads(result.stdout)
    assert data["host"]["quick"] is True and data["device"]["profile"] == "orin-nx-16gb"
    assert result.returncode == (1 if data["status"] == "fail" else 0)


def test_bad_root_is_usage_error(run_cli, tmp_path):
    result = run_cli("doctor", "--root", tmp_path / "missing")
    assert result.returncode == 2 and "does not exist" in result.stderr
