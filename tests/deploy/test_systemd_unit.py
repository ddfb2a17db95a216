"""deploy/systemd/edgeinfer.service parses and says what a boot-time service must say."""
from __future__ import annotations

import configparser
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "edgeinfer.service"
ENV_EXAMPLE = REPO / "deploy" / "systemd" / "edgeinfer.env"


def load_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def test_sections_and_boot_target():
    unit = load_unit()
    assert unit.sections() == ["Unit", "Service", "Install"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in unit["Unit"]["After"].split()


def test_runs_edgeinfer_run_and_restarts_on_failure():
    service = load_unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].startswith("/") and argv[0].endswith("/edgeinfer") and argv[1] == "run"
    assert "--uplink-spool" in argv and argv[argv.index("--uplink-spool") + 1].startswith("/var/lib/edgeinfer/")
    assert service["Restart"] == "on-failure" and int(service["RestartSec"]) > 0
    assert service["KillSignal"] == "SIGINT"


def test_persistent_spool_journal_and_non_root():
    service = load_unit()["Service"]
    assert "edgeinfer" in service["StateDirectory"].split()  # /var/lib/edgeinfer, created and owned for User
    env = dict(item.split("=", 1) for item in shlex.split(service["Environment"]))
    assert env["EDGEINFER_SPOOL"].startswith("/var/lib/edgeinfer/")
    assert service["StandardOutput"] == "journal" and service["StandardError"] == "journal"
    assert service["User"] not in ("root", "0")
    assert "video" in service["SupplementaryGroups"].split()


def test_every_variable_in_execstart_is_defined():
    service = load_unit()["Service"]
    defined = {item.split("=", 1)[0] for item in shlex.split(service["Environment"])}
    example = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    used = {word[2:-1] for word in service["ExecStart"].split() if word.startswith("${")}
    assert used and used <= defined | example
    assert "EDGEINFER_BUNDLE" in example


def test_cuda_bin_is_on_the_service_path():
    # systemd's default PATH has no /usr/local/cuda/bin: pycuda could not run nvcc for the GPU
    # pre-processing kernel (edgeinfer would fall back to the CPU), and `edgeinfer doctor` would not
    # find the CUDA tools. The standard directories must stay, or ExecStart's helpers vanish.
    env = dict(item.split("=", 1) for item in shlex.split(load_unit()["Service"]["Environment"]))
    path = env["PATH"].split(":")
    assert path[0] == "/usr/local/cuda/bin"
    assert {"/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin"} <= set(path)
    assert "$" not in env["PATH"]  # systemd does not expand variables in Environment=
