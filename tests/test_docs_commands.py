"""Every command in README.md and docs/ stays true.

1. Every `edgeinfer ...` line of every ```bash block is parsed by the real CLI: the subcommand
   and every option must exist and take the kind of value written (files need not exist: the
   device-only commands name files on a Jetson). A renamed or removed option fails here.
2. Blocks marked `<!-- docs-test: run -->` on the line before the fence are executed as written by
   bash in a scratch folder (with `.venv/bin` first on PATH and the committed demo ONNX copied in as
   `shapes-yolo11n-320.onnx`), and must exit 0. Mark every block a CPU host can run.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import click
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
RUN_MARK = "<!-- docs-test: run -->"


def _blocks() -> List[Tuple[Path, int, str, bool]]:
    """(file, line, text, marked-to-run) of every bash/sh/console or untagged block."""
    found = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            lang, start = m.group(1), i
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if lang in ("bash", "sh", "shell", "console", ""):
                marked = start > 0 and lines[start - 1].strip() == RUN_MARK
                found.append((doc, start + 1, "\n".join(lines[start + 1:j]), marked))
            i = j + 1
    return found


def _commands(text: str) -> List[str]:
    """Logical lines (backslash continuations joined), without prompts and trailing comments."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        out.append(line)
    return out


def _split_commands(tokens: List[str]) -> List[List[str]]:
    commands, current = [], []
    for tok in tokens:
        if tok in ("&&", "||", ";", "|", "&"):
            commands.append(current)
            current = []
        else:
            current.append(tok)
    commands.append(current)
    return [c for c in commands if c]


def _command_word(tokens: List[str]) -> Tuple[str, List[str]]:
    """Skip what runs a command (sudo -u USER, VAR=value, timeout N, nice -n N, exec) to its name and args."""
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tok) or tok == "exec":
            i += 1
        elif tok == "sudo":
            i += 1
            while i < len(tokens) and tokens[i].startswith("-"):
                i += 2 if tokens[i] in ("-u", "-g") else 1
        elif tok == "timeout":
            i += 2
        elif tok == "nice":
            i += 3 if i + 1 < len(tokens) and tokens[i + 1] == "-n" else 1
        else:
            return tok, tokens[i + 1:]
    return "", []


def _edgeinfer_argvs(line: str) -> List[List[str]]:
    """The argv of each `edgeinfer` invocation on a shell line (after &&, ;, |, sudo, a venv path)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return []
    argvs = []
    for command in _split_commands(tokens):
        word, args = _command_word(command)
        if word == "edgeinfer" or word.endswith("/edgeinfer"):
            synopsis = any(a.startswith("[") for a in args)  # `run BUNDLE [--sink URI ...]` describes, not runs
            if args and not synopsis and not any(ch in " ".join(args) for ch in "<>$"):
                argvs.append(args)
    return argvs


ALL_BLOCKS = _blocks()
ALL_ARGVS = [(f"{doc.relative_to(REPO)}:{line}", argv)
             for doc, line, text, _ in ALL_BLOCKS for cmd in _commands(text) for argv in _edgeinfer_argvs(cmd)]


def test_docs_have_commands_to_check():
    assert len(ALL_ARGVS) >= 20, "the extractor found almost no edgeinfer commands: is it broken?"
    assert any(marked for *_, marked in ALL_BLOCKS), "no block is marked to run"


@pytest.mark.parametrize("where,argv", ALL_ARGVS, ids=[f"{w} {' '.join(a)[:60]}" for w, a in ALL_ARGVS])
def test_every_documented_edgeinfer_command_parses(where, argv):
    from edgeinfer.cli._main import cli

    ctx = click.Context(cli, info_name="edgeinfer")
    args = list(argv)
    group = cli
    if args and args[0] in ("--version", "-h", "--help"):
        return
    while args and isinstance(group, click.Group):
        name = args.pop(0)
        sub = group.get_command(ctx, name)
        assert sub is not None, f"{where}: no command {name!r} in `edgeinfer {' '.join(argv)}`"
        group = sub
        if "--help" in args or "-h" in args:
            return
        if isinstance(group, click.Group) and (not args or args[0].startswith("-")):
            break
    # Parse options/arguments for real, but without path checks (exists=True): device-only commands
    # name files that exist on a Jetson. A copy, so the real command keeps its checks.
    import copy

    group = copy.deepcopy(group)
    for param in group.params:
        if isinstance(param.type, click.Path):
            param.type = click.STRING
    try:
        group.make_context(group.name, args, parent=ctx, resilient_parsing=False)
    except click.UsageError as exc:
        pytest.fail(f"{where}: `edgeinfer {' '.join(argv)}` does not parse: {exc.format_message()}")
    except click.exceptions.Exit:
        pass


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    from edgeinfer.demo import demo_model_path

    work = tmp_path_factory.mktemp("docs")
    shutil.copy(demo_model_path("onnx"), work / "shapes-yolo11n-320.onnx")
    return work


RUN_BLOCKS = [(f"{doc.relative_to(REPO)}:{line}", text) for doc, line, text, marked in ALL_BLOCKS if marked]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("where,text", RUN_BLOCKS, ids=[w for w, _ in RUN_BLOCKS])
def test_marked_blocks_run_as_written(where, text, scratch):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=scratch, env=env, capture_output=True,
                          text=True, timeout=880)
    assert proc.returncode == 0, f"{where} failed ({proc.returncode}):\n{text}\n--- stdout\n{proc.stdout[-3000:]}" \
                                 f"\n--- stderr\n{proc.stderr[-3000:]}"
