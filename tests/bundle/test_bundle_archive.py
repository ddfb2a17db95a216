"""`.tar` bundles: the extracted copy never outlives a failed check or a killed process; safe modes."""
from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from edgeinfer.bundle import BundleWriter, open_bundle
from edgeinfer.errors import BundleError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def tmpdir_env(tmp_path, monkeypatch):
    """A private $TMPDIR for this test and the processes it starts."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def _bundle_tar(tmp_path: Path) -> Path:
    src = tmp_path / "model.onnx"
    src.write_bytes(b"onnx-bytes" * 100)
    out = tmp_path / "m.bundle.tar"
    with BundleWriter(out, archive=True) as w:
        w.set_model(info={"task": "detect", "names": {0: "a"}}, name="model.onnx", source_sha256="ab" * 32)
        w.add_device("orin-nano-8gb", profile={"name": "orin-nano-8gb"}, jetpack={"jetpack": "6.2"}, precision="fp16",
                     artifacts={"onnx": w.add_artifact(src)}, placement={}, recipes={})
    return out


def _rewrite(tar_path: Path, edit) -> None:
    """Rebuild the archive with ``edit(member, data) -> (member, data)`` applied to every member."""
    with tarfile.open(tar_path) as tar:
        items = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    with tarfile.open(tar_path, "w") as tar:
        for member, data in items:
            member, data = edit(member, data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)


def _leftovers(tmpdir: Path):
    return sorted(p.name for p in tmpdir.iterdir() if p.name.startswith("edgeinfer-bundle-"))


def test_failed_checks_leave_no_extracted_copy(tmp_path, tmpdir_env):
    tar_path = _bundle_tar(tmp_path)

    def tamper(member, data):
        if "/artifacts/" in member.name:
            data = b"X" + data[1:]  # same size, different content: the sha256 check fails
        return member, data

    _rewrite(tar_path, tamper)
    for _ in range(3):  # e.g. three systemd restarts in a row
        with pytest.raises(BundleError, match="sha256 mismatch"):
            open_bundle(tar_path)
    assert _leftovers(tmpdir_env) == []


def test_unreadable_archive_leaves_no_extracted_copy(tmp_path, tmpdir_env):
    tar_path = _bundle_tar(tmp_path)
    with tarfile.open(tar_path, "a") as tar:  # a second top-level bundle dir: "no single bundle"
        info = tarfile.TarInfo("other/manifest.yaml")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"x: 1"))
    with pytest.raises(BundleError, match="no single bundle"):
        open_bundle(tar_path)
    assert _leftovers(tmpdir_env) == []


def test_a_good_bundle_cleans_up_when_released(tmp_path, tmpdir_env):
    bundle = open_bundle(_bundle_tar(tmp_path))
    assert len(_leftovers(tmpdir_env)) == 1 and bundle.root.is_dir()
    del bundle
    assert _leftovers(tmpdir_env) == []


def test_copy_of_a_killed_process_is_removed_by_the_next_open(tmp_path, tmpdir_env):
    tar_path = _bundle_tar(tmp_path)
    code = ("import sys, time; from edgeinfer.bundle import open_bundle; b = open_bundle(sys.argv[1]); "
            "print('open', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(tar_path)], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert child.stdout.readline().strip() == "open"
    held = _leftovers(tmpdir_env)
    assert len(held) == 1
    mine = open_bundle(tar_path)  # the child still runs: its copy is left alone
    assert set(held) < set(_leftovers(tmpdir_env))
    os.kill(child.pid, signal.SIGTERM)  # no handler: Python's finalizers do not run
    child.wait(10)
    assert held[0] in _leftovers(tmpdir_env)
    open_bundle(tar_path)
    assert held[0] not in _leftovers(tmpdir_env)
    assert mine.root.is_dir()  # a live Bundle's copy survives every sweep


@pytest.mark.parametrize("python", ["with data filter", "without data filter (Python 3.8)"])
def test_extracted_members_get_safe_modes(tmp_path, tmpdir_env, monkeypatch, python):
    tar_path = _bundle_tar(tmp_path)

    def evil(member, data):
        member.mode = 0o6777 if member.isfile() else 0o7777
        member.uid, member.gid, member.uname, member.gname = 4242, 4242, "", ""
        return member, data

    _rewrite(tar_path, evil)
    if python.startswith("without"):
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    bundle = open_bundle(tar_path)
    paths = [bundle.root, *bundle.root.rglob("*")]
    assert len(paths) >= 3
    for path in paths:
        st = path.stat()
        assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX), (path, oct(st.st_mode))
        assert not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH), (path, oct(st.st_mode))
        assert st.st_uid == os.getuid()  # not the archive's 4242, even when extracted by root
