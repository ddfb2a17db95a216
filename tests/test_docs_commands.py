"""Every command and code block in README.md and docs/ stays true.

1. Every `edgeinfer ...` line of every shell block (bash/sh/console/untagged) is parsed by the real
   CLI: the subcommand and every option must exist and take the kind of value written (files need
   not exist: the device-only commands name files on a Jetson). A renamed or removed option fails
   here. Every ```bash block is valid bash (`bash -n`) and every ```python block compiles.
2. Blocks marked `<!-- docs-test: run -->` on the line before the fence are executed as written:
   shell blocks by `bash -euo pipefail`, Python blocks by this interpreter, with `.venv/bin` first on
   PATH. The marked blocks of one document run in order in one scratch folder (a later block may use
   what an earlier one made), which starts with the committed demo ONNX as
   `shapes-yolo11n-320.onnx`, an FP16 demo bundle `shapes.bundle` and a 30-frame demo video
   `clip.mp4` (made once per session), and each must exit 0.

Mark every block a CPU host can run with nothing but loopback networking. Blocks stay unmarked,
and are only parsed, when running them would need:
- the network or would change the machine: `pip install`, `apt-get`, `scripts/setup.sh`, venvs,
  `docker build`/`docker run`, systemd units, copying files inside the repository;
- a Jetson, a GPU or TensorRT: `edgeinfer build`, `trtexec`, the Jetson quickstart, DLA, `csi://`
  cameras, the gpu and jetson tiers;
- hosts that exist only as examples (`rtsp://cam/1`, `https://ingest.example.com`, MQTT brokers);
- minutes to hours: benchmarks, the soak test, training the demo model, the test suite itself,
  host-side INT8 with an accuracy budget (docs/quantize.md);
- or when the block is not a script: a transcript with its output, a synopsis (`[--opt ...]`), an
  API tour over placeholders (`best.pt`, `frame_bgr`) that only shows signatures.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

import click
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
RUN_MARK = "<!-- docs-test: run -->"


SHELL_LANGS = ("bash", "sh", "shell", "console", "")
PYTHON_LANGS = ("python", "py")


class Block(NamedTuple):
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marked: bool  # `<!-- docs-test: run -->` on the line before the fence

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def _all_blocks() -> List[Block]:
    """Every fenced shell or Python block of README.md and docs/."""
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
            if lang in SHELL_LANGS + PYTHON_LANGS:
                marked = start > 0 and lines[start - 1].strip() == RUN_MARK
                found.append(Block(doc, start + 1, lang, "\n".join(lines[start + 1:j]), marked))
            i = j + 1
    return found


def _blocks() -> List[Tuple[Path, int, str, bool]]:
    """(file, line, text, marked-to-run) of every shell block."""
    return [(b.doc, b.line, b.text, b.marked) for b in _all_blocks() if b.lang in SHELL_LANGS]


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


def _without_redirections(tokens: List[str]) -> List[str]:
    """`edgeinfer run ... --json > stats.json 2>&1` -> the command's own words."""
    out, skip = [], False
    for tok in tokens:
        if skip:
            skip = False
        elif tok in (">", ">>", "<", "2>", "2>>", "&>"):
            skip = True
        elif not re.match(r"^(\d*>>?|&>|<)(&\d+|\S+)$", tok):
            out.append(tok)
    return out


def _edgeinfer_argvs(line: str) -> List[List[str]]:
    """The argv of each `edgeinfer` invocation on a shell line (after &&, ;, |, sudo, a venv path)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return []
    argvs = []
    for command in _split_commands(tokens):
        word, args = _command_word(_without_redirections(command))
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


BLOCKS = _all_blocks()


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in PYTHON_LANGS],
                         ids=[b.where for b in BLOCKS if b.lang in PYTHON_LANGS])
def test_every_python_block_compiles(block):
    compile(block.text, block.where, "exec")


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in ("bash", "sh", "shell")],
                         ids=[b.where for b in BLOCKS if b.lang in ("bash", "sh", "shell")])
def test_every_bash_block_is_valid_bash(block):
    proc = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"{block.where}: {proc.stderr}"


@pytest.fixture(scope="session")
def docs_demo(tmp_path_factory) -> Path:
    """What every document's scratch folder starts with: the demo ONNX, an FP16 demo bundle, a short video."""
    from edgeinfer.demo import demo_model_path, make_video
    from edgeinfer.packager import package_model

    work = tmp_path_factory.mktemp("docs-demo")
    onnx = work / "shapes-yolo11n-320.onnx"
    shutil.copy(demo_model_path("onnx"), onnx)
    make_video(str(work / "clip.mp4"), frames=30, size=(320, 240), seed=1)
    # no parser check here: this bundle is a fixture; docs/packaging.md's own block runs the check
    package_model(str(onnx), devices="orin-nano-8gb", precision="fp16", out=str(work / "shapes.bundle"), verify=False)
    return work


MARKED: Dict[str, List[Block]] = {}
for _b in BLOCKS:
    if _b.marked:
        MARKED.setdefault(str(_b.doc.relative_to(REPO)), []).append(_b)


def _run_block(block: Block, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("DISPLAY", None)
    env["EDGEINFER_SPOOL"] = str(cwd / ".spool")  # the default spool is per user: keep runs (and users) apart
    if block.lang in PYTHON_LANGS:
        argv = [sys.executable, "-"]
    else:
        argv = ["bash", "-euo", "pipefail", "-s"]
    return subprocess.run(argv, input=block.text, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_blocks_are_marked_in_the_documents_that_can_run():
    for doc in ("docs/analytics.md", "docs/fleet.md", "docs/pipeline.md", "docs/uplink.md", "docs/cli.md"):
        assert doc in MARKED, f"{doc} has no block marked {RUN_MARK}"
    for block in (b for blocks in MARKED.values() for b in blocks):  # a transcript ($ prompts, output) is no script
        assert block.lang in ("bash", "sh", "shell") + PYTHON_LANGS, f"{block.where}: mark ```bash or ```python blocks only"


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("doc", list(MARKED), ids=list(MARKED))
def test_marked_blocks_run_as_written(doc, docs_demo, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(docs_demo, work)
    for block in MARKED[doc]:
        proc = _run_block(block, work)
        assert proc.returncode == 0, f"{block.where} failed ({proc.returncode}):\n{block.text}\n--- stdout\n" \
                                     f"{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
