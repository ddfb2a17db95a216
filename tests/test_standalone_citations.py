"""The repository stands alone: no file cites notes that are not in it (issue 17, item 1).

Docs, comments, data files and messages once cited internal reference notes ("facts §4.2",
"offline-toolchain §1", "runtime-anchors §3", ...). A reader of the repository cannot open those,
so every tracked file must cite public sources instead (NVIDIA docs, headers, GitHub repos).
Short source tags are allowed only where the same file spells them out.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()

# Names of internal notes and the ways they were cited (case-insensitive substrings).
MARKERS = (
    "facts §", "facts section", "reference facts", "jetson-tensorrt-facts", "offline-toolchain",
    "runtime-anchors", "performance-anchors", "style-anchors", "/work/shared", "reference/jetson",
    "DLA-TUT",
)
# Short tags for public sources: a file that uses one must also name the source it stands for.
TAGS = {
    "DLA-SW": "Deep-Learning-Accelerator-SW",
    "JC": "jetson-containers",
    "UL-JET": "nvidia-jetson",
    "LOS-NVP": "android_device_nvidia_concord",
    "TRT11-MIG": "docs.nvidia.com",
    "cuDLA-S": "cuDLA-samples",
}
_MARKER_RE = re.compile("|".join(re.escape(m) for m in MARKERS), re.IGNORECASE)
_TAG_RE = {tag: re.compile(r"(?<![\w-])" + re.escape(tag) + r"(?![\w-])") for tag in TAGS}


def tracked_files(root: Path) -> list[str]:
    """Paths git tracks under ``root`` (the repository's own content, nothing generated)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"git ls-files failed in {root}: {exc}")
    return [p for p in out.stdout.decode().split("\0") if p]


def _text(root: Path, rel: str) -> str | None:
    try:
        data = (root / rel).read_bytes()
    except OSError:  # listed but absent (e.g. deleted in the work tree)
        return None
    if b"\0" in data[:8192]:
        return None  # binary (weights, images, videos)
    return data.decode("utf-8", errors="replace")


def internal_citations(root: Path) -> list[str]:
    """``path:line: text`` for every line that cites an internal note."""
    hits = []
    for rel in tracked_files(root):
        text = None if rel == THIS else _text(root, rel)
        for no, line in enumerate((text or "").splitlines(), 1):
            if _MARKER_RE.search(line):
                hits.append(f"{rel}:{no}: {line.strip()[:160]}")
    return hits


def unexplained_tags(root: Path) -> list[str]:
    """``path: TAG`` for every short source tag used in a file that never spells it out."""
    missing = []
    for rel in tracked_files(root):
        text = None if rel == THIS else _text(root, rel)
        for tag, expansion in TAGS.items():
            if text and _TAG_RE[tag].search(text) and expansion.lower() not in text.lower():
                missing.append(f"{rel}: {tag} (name {expansion} in the file)")
    return missing


def test_no_tracked_file_cites_internal_notes():
    hits = internal_citations(REPO)
    assert not hits, "cite public sources instead of internal notes:\n" + "\n".join(hits)


def test_short_source_tags_are_spelled_out_in_the_same_file():
    missing = unexplained_tags(REPO)
    assert not missing, "\n".join(missing)


def test_the_checks_catch_a_planted_citation(tmp_path):
    """The scanners see what they should: a real git repo with one bad file and one good one."""
    (tmp_path / "bad.md").write_text("DLA needs static shapes (facts §4.2); see DLA-SW.\n")
    (tmp_path / "ok.py").write_text("# DLA-SW = github.com/NVIDIA/Deep-Learning-Accelerator-SW\n")
    (tmp_path / "untracked.md").write_text("offline-toolchain §1\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "bad.md", "ok.py"], cwd=tmp_path, check=True)
    assert internal_citations(tmp_path) == ["bad.md:1: DLA needs static shapes (facts §4.2); see DLA-SW."]
    assert unexplained_tags(tmp_path) == ["bad.md: DLA-SW (name Deep-Learning-Accelerator-SW in the file)"]
