"""`edgeinfer profiles` through the real CLI in a subprocess."""
from __future__ import annotations

import json


def test_list_json_shape(run_cli):
    result = run_cli("profiles", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) == 10
    by_name = {item["name"]: item for item in data}
    nx = by_name["orin-nx-16gb"]
    assert nx["compute_capability"] == "8.7" and nx["sm"] == 87 and nx["dla_cores"] == 2
    assert {"jetpack": "6.2", "tensorrt": "10.3"}.items() <= next(
        j for j in nx["jetpacks"] if j["jetpack"] == "6.2").items()
    assert all("tensorrt" in j for item in data for j in item["jetpacks"])


def test_list_table(run_cli):
    result = run_cli("profiles")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "MODULE", "SM", "DLA"]
    row = next(line for line in lines if line.startswith("orin-nx-8gb "))
    assert " 87 " in row and "1 (v2)" in row and "10.3" in row


def test_show_and_resolve(run_cli):
    shown = run_cli("profiles", "show", "thor")
    assert shown.returncode == 0 and "agx-thor" in shown.stdout and "DLA:          none" in shown.stdout
    as_json = json.loads(run_cli("profiles", "show", "xavier-nx", "--json").stdout)
    assert as_json["dla_generation"] == 1
    resolved = run_cli("profiles", "resolve", "orin-nx,thor")
    assert resolved.returncode == 0
    assert "orin-nx -> orin-nx-8gb, orin-nx-16gb" in resolved.stdout
    assert "= 3 profile(s)" in resolved.stdout


def test_user_error_is_one_line_exit_1(run_cli):
    result = run_cli("profiles", "show", "orin-nx-16")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: unknown device 'orin-nx-16'. Hint: did you mean 'orin-nx-16gb'?")
    assert "Traceback" not in result.stderr


def test_usage_error_exit_2(run_cli):
    result = run_cli("profiles", "show")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr
