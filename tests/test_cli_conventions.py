"""The CLI's conventions hold for every command, walked from click's own command tree.

- Help is complete: every visible option has help text, and no command's one-line help is cut
  off with "..." where a group lists it (click cuts a docstring's first sentence at 45
  characters, and at the first "." — "e.g." included — unless the command sets ``short_help``).
- ``--json`` means one thing everywhere: a flag that prints machine-readable JSON on stdout
  (files are written with their own options, e.g. ``run --stats FILE``), and that stdout parses.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Iterator, List, Tuple

import click
import pytest

from edgeinfer.cli._main import COMMANDS, cli


def _walk(cmd: click.Command, path: Tuple[str, ...], ctx: click.Context) -> Iterator[Tuple[Tuple[str, ...], click.Command]]:
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, f"{' '.join(path)} lists {name!r} but cannot load it"
            yield from _walk(sub, path + (name,), ctx)


def _tree() -> List[Tuple[Tuple[str, ...], click.Command]]:
    return list(_walk(cli, ("edgeinfer",), click.Context(cli, info_name="edgeinfer")))


def test_every_command_and_option_has_complete_help():
    tree = _tree()
    assert len(tree) >= len(COMMANDS) + 3, "the walk missed commands"
    problems = []
    for path, cmd in tree:
        where = " ".join(path)
        if len(path) > 1:  # the root is never listed by a parent
            short = cmd.get_short_help_str(limit=45)
            if not short or short.endswith("..."):
                problems.append(f"{where}: one-line help {short!r} is missing or cut off (set short_help=)")
        first = (cmd.help or "").strip().split("\n\n")[0]
        if not first.endswith((".", ")")):
            problems.append(f"{where}: the help's first paragraph {first[-40:]!r} is not a complete sentence")
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden and not (param.help or "").strip():
                problems.append(f"{where} {'/'.join(param.opts)}: option without help")
    for name, (_, _, line) in COMMANDS.items():  # what `edgeinfer --help` lists
        if not line.endswith(".") or line.endswith("..."):
            problems.append(f"COMMANDS[{name!r}]: {line!r} is not one complete sentence")
    assert not problems, "\n".join(problems)


def test_group_help_lists_subcommands_uncut(run_cli):
    for group in ("profiles", "uplink"):
        out = run_cli(group, "--help", env={"COLUMNS": "80"}).stdout
        listed = out.split("Commands:")[1].strip().splitlines()
        assert listed and not any(line.rstrip().endswith("...") for line in listed), out


def _json_options() -> List[Tuple[str, click.Option]]:
    return [(" ".join(path), p) for path, cmd in _tree() for p in cmd.params
            if isinstance(p, click.Option) and "--json" in p.opts]


@pytest.mark.parametrize("where,option", _json_options(), ids=[w for w, _ in _json_options()])
def test_json_is_a_flag_everywhere(where, option):
    assert option.is_flag, f"{where} --json takes a value; --json is a flag (stdout JSON) everywhere"
    text = (option.help or "").lower()
    assert "json" in text and "stdout" in text, f"{where} --json: its help must say it prints JSON on stdout"


def test_json_options_cover_the_commands_that_report():
    have = {w for w, _ in _json_options()}
    for cmd in ("edgeinfer run", "edgeinfer bench", "edgeinfer inspect", "edgeinfer doctor", "edgeinfer package", "edgeinfer build",
                "edgeinfer profiles", "edgeinfer profiles show", "edgeinfer profiles resolve", "edgeinfer uplink status"):
        assert cmd in have, f"{cmd} has no --json"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeinfer", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv", [["profiles", "--json"], ["profiles", "show", "orin-nx-16gb", "--json"],
                                  ["profiles", "resolve", "orin,thor", "--json"], ["doctor", "--quick", "--json"]],
                         ids=lambda a: " ".join(a))
def test_json_stdout_parses(argv):
    proc = _cli(*argv)
    assert proc.returncode in (0, 1), proc.stderr  # doctor exits 1 when a check fails; its JSON still parses
    json.loads(proc.stdout)


def test_uplink_status_json_parses(tmp_path):
    from edgeinfer.uplink import Uplink

    with Uplink(f"file://{tmp_path / 'out.jsonl'}", spool_dir=str(tmp_path / "spool")) as up:
        up.put({"n": 1})
    proc = _cli("uplink", "status", str(tmp_path / "spool"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sent"] >= 0
