"""Helpers for fleet tests (imported by name): bundle variants made the way a build host would make them.

A variant is a copy of a real packaged bundle whose manifest is changed and written again with
``dump_manifest`` (so its own hash is right), optionally with a transformed ONNX artifact, then
optionally signed: exactly what a re-package + sign produces, in milliseconds instead of seconds.
"""
from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import yaml

from edgeinfer.bundle._fs import sha256_file
from edgeinfer.bundle.manifest import MANIFEST_NAME, dump_manifest, load_manifest_text

REPO = Path(__file__).resolve().parents[2]
# Shared constants live here, not in conftest.py: every test folder has a conftest, and
# `from conftest import ...` gets whichever was imported last.
DEMO_ONNX = REPO / "edgeinfer" / "_data" / "demo" / "shapes-yolo11n-320.onnx"
DEVICE = "orin-nano-8gb"
EDGEINFER = [sys.executable, "-m", "edgeinfer"]


def cli(*args, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([*EDGEINFER, *map(str, args)], capture_output=True, text=True, cwd=kw.pop("cwd", None), **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"edgeinfer {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def read_manifest(bundle: Path) -> dict:
    return load_manifest_text((bundle / MANIFEST_NAME).read_text(), source="test")


def make_variant(src: Path, dst: Path, *, minutes: int = 1, key: Optional[Path] = None, rename_device: Optional[str] = None,
                 onnx_transform: Optional[Callable[[Path], None]] = None, staging: Optional[Path] = None,
                 before_publish: Optional[Callable[[Path], None]] = None) -> Path:
    """Copy ``src`` to ``dst`` as a newer package (created + ``minutes``), signed with ``key`` if given.

    With ``staging`` the bundle is built there and moved into ``dst`` by one rename (how OTA tools deliver).
    """
    work = (staging or dst.parent) / f".{dst.name}.staging"
    shutil.copytree(src, work)
    (work / "manifest.sig").unlink(missing_ok=True)
    manifest = read_manifest(work)
    created = datetime.datetime.fromisoformat(manifest["created"]) + datetime.timedelta(minutes=minutes)
    manifest["created"] = created.isoformat()
    if onnx_transform is not None:
        for entry in manifest["devices"].values():
            rel = entry["artifacts"]["onnx"]
            onnx_transform(work / rel)
            manifest["checksums"][rel] = sha256_file(work / rel)
    if rename_device is not None:
        manifest["devices"] = {rename_device: next(iter(manifest["devices"].values()))}
    (work / MANIFEST_NAME).write_text(dump_manifest(manifest))
    if key is not None:  # in-process (the `edgeinfer sign` CLI is exercised in test_fleet_trust)
        from edgeinfer.fleet import sign_bundle

        sign_bundle(work, key)
    if before_publish is not None:
        before_publish(work)
    work.rename(dst)
    return dst


def zero_scores(onnx_path: Path) -> None:
    """Multiply the detector's output by 0: a model that loads and runs but never detects anything."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(onnx_path))
    out = model.graph.output[0].name
    model.graph.node.append(helper.make_node("Mul", [out + "_raw", "zero"], [out]))
    for node in model.graph.node[:-1]:
        node.output[:] = [o + "_raw" if o == out else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((1,), np.float32), "zero"))
    onnx.save(model, str(onnx_path))


def edit_manifest_keep_hash_valid(bundle: Path, change: Callable[[dict], None]) -> None:
    """What an attacker with write access does: change the manifest and recompute its self-hash."""
    manifest = read_manifest(bundle)
    change(manifest)
    (bundle / MANIFEST_NAME).write_text(dump_manifest(manifest))


def manifest_created(bundle: Path) -> str:
    return yaml.safe_load((bundle / MANIFEST_NAME).read_text().partition("\n")[2])["created"]


def corrupt_onnx(bundle: Path) -> None:
    """Flip bytes inside the bundle's ONNX artifact (a disk or transfer fault after packaging)."""
    onnx = next((bundle / "artifacts").glob("*.onnx"))
    with open(onnx, "r+b") as fh:
        fh.seek(200)
        fh.write(b"\xff\xfe\xfd\xfc")
