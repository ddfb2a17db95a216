"""Open and verify a bundle; read device entries; add engines atomically.

Example:
    >>> from edgeinfer.bundle import open_bundle
    >>> b = open_bundle("out/shapes.bundle")                 # doctest: +SKIP
    >>> b.devices                                            # doctest: +SKIP
    ['orin-nx-16gb', 'orin-nano-8gb']
    >>> b.artifact_path("orin-nx-16gb", "calib_cache")       # doctest: +SKIP
    PosixPath('out/shapes.bundle/artifacts/3c1f...cache')

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Union

from ..errors import BundleError
from ..model.info import ModelInfo
from ._fs import atomic_copy, atomic_write_bytes, sha256_file
from .archive import is_archive, pack_archive, unpack_archive
from .manifest import ARTIFACT_KINDS, MANIFEST_NAME, dump_manifest, load_manifest_text

ENGINES_DIR = "engines"
EXTRACT_PREFIX = "edgeinfer-bundle-"  # + "<pid>-<random>" under $TMPDIR
LOCK_NAME = ".edgeinfer-extract.lock"


@dataclass(frozen=True)
class DeviceEntry:
    """Everything the bundle says about one target device (a read-only view of the manifest)."""

    name: str
    profile: Dict[str, Any]
    jetpack: Dict[str, Any]
    precision: str
    artifacts: Dict[str, str]
    placement: Dict[str, Any]
    accuracy: Dict[str, Any]
    recipes: Dict[str, Any]
    engines: List[Dict[str, Any]]
    calibration: Dict[str, Any] = field(default_factory=dict)
    dla: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, name: str, entry: Dict[str, Any]) -> "DeviceEntry":
        data = copy.deepcopy(entry)  # callers may not mutate the manifest through a view
        return cls(
            name=name, profile=data["profile"], jetpack=data["jetpack"], precision=str(data["precision"]),
            artifacts=dict(data["artifacts"]), placement=data["placement"] or {},
            accuracy=data.get("accuracy") or {}, recipes=data["recipes"] or {}, engines=list(data["engines"]),
            calibration=data.get("calibration") or {}, dla=data.get("dla") or {},
        )


class Bundle:
    """A verified bundle on disk. Create with :func:`open_bundle`, not directly."""

    def __init__(self, root: Path, manifest: Dict[str, Any], *, archive: Optional[Path] = None) -> None:
        self.root = root
        self.manifest = manifest
        self.archive = archive  # set when opened from a .tar; add_engine then repacks it
        self.dropped_engines: List[str] = []  # open_bundle(drop_bad_engines=True): engines left out, and why

    def __repr__(self) -> str:
        return f"Bundle({str(self.archive or self.root)!r}, devices={self.devices})"

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo.from_dict(self.manifest["model"]["info"])

    @property
    def devices(self) -> List[str]:
        return [str(name) for name in self.manifest["devices"]]

    def device(self, name: str) -> DeviceEntry:
        """The entry for device profile ``name``; BundleError listing the bundle's devices otherwise."""
        entry = self.manifest["devices"].get(name)
        if entry is None:
            raise BundleError(f"bundle has no entry for device {name!r} (it has {', '.join(self.devices)})",
                              hint="re-package with `edgeinfer package MODEL --device " + name + "`")
        return DeviceEntry.from_manifest(name, entry)

    def artifact_path(self, device: str, kind: str) -> Path:
        """Absolute path of artifact ``kind`` ("onnx", "qdq_onnx", "fp16_onnx", "calib_cache") for ``device``."""
        if kind not in ARTIFACT_KINDS:
            raise BundleError(f"unknown artifact kind {kind!r}", hint=f"use one of {', '.join(ARTIFACT_KINDS)}")
        rel = self.device(device).artifacts.get(kind)
        if not rel:
            raise BundleError(f"bundle has no {kind} artifact for {device}",
                              hint="re-package with a precision that produces it (e.g. --precision int8)")
        return self.root / rel

    def add_engine(self, device: str, engine_file: Union[str, Path], record: Dict[str, Any]) -> None:
        """Copy ``engine_file`` under engines/ and record it for ``device``, atomically.

        The engine is copied first (temp + rename); only then is the manifest rewritten (temp +
        rename), so a crash leaves either the old bundle or the new one. A record with the same
        file name replaces the earlier one (a rebuild).
        """
        src = Path(engine_file)
        if not src.is_file():
            raise BundleError(f"engine file {src} does not exist", hint="build it first with `edgeinfer build`")
        self.device(device)  # validates the name
        rel = f"{ENGINES_DIR}/{src.name}"
        (self.root / ENGINES_DIR).mkdir(exist_ok=True)
        atomic_copy(src, self.root / rel)
        digest = sha256_file(self.root / rel)
        new = copy.deepcopy(self.manifest)
        entry = dict(record, path=rel, sha256=digest, size_bytes=(self.root / rel).stat().st_size)
        engines = [e for e in new["devices"][device]["engines"] if e.get("path") != rel]
        new["devices"][device]["engines"] = engines + [entry]
        new["checksums"][rel] = digest
        atomic_write_bytes(self.root / MANIFEST_NAME, dump_manifest(new).encode("utf-8"))
        self.manifest = new
        if self.archive is not None:
            pack_archive(self.root, self.archive)


def open_bundle(path: Union[str, Path], *, drop_bad_engines: bool = False) -> Bundle:
    """Open a bundle directory or ``.tar`` archive and verify its schema and every sha256.

    Raises BundleError with a one-line reason for a missing bundle, a malformed or unknown-schema
    manifest, a missing file, or a file whose content no longer matches its recorded hash.
    ``drop_bad_engines``: a missing or corrupt engine (built on the device, rebuildable) is left out of
    the returned manifest instead (reasons in ``bundle.dropped_engines``); the ONNX and the rest must verify.
    """
    target = Path(path)
    if is_archive(target):
        return _open_archive(target, drop_bad_engines=drop_bad_engines)
    if not target.is_dir():
        raise BundleError(f"no bundle at {target}", hint="create one with `edgeinfer package MODEL --device NAME -o DIR`")
    return _open_root(target, target, drop_bad_engines=drop_bad_engines)


def _open_archive(archive: Path, *, drop_bad_engines: bool = False) -> Bundle:
    """Extract into a private temp dir that lives as long as the Bundle; removed on any failure.

    The dir holds a ``.lock`` file flock'ed by this process for as long as the Bundle lives; the
    kernel drops the lock when the process dies however it dies (SIGKILL, or SIGTERM without a
    handler, when no finalizer runs), so the next ``open_bundle`` of any archive removes dirs whose
    lock is free. The pid in the name is the fallback where ``fcntl`` is missing.
    """
    _sweep_stale_extractions()
    workdir = Path(tempfile.mkdtemp(prefix=f"{EXTRACT_PREFIX}{os.getpid()}-"))
    lock_fd = None
    try:
        lock_fd = _hold_lock(workdir / LOCK_NAME)
        bundle = _open_root(unpack_archive(archive, workdir), archive, archive=archive, drop_bad_engines=drop_bad_engines)
    except BaseException:
        _remove(str(workdir), lock_fd)
        raise
    weakref.finalize(bundle, _remove, str(workdir), lock_fd)  # the extracted copy lives as long as the Bundle
    return bundle


def _hold_lock(path: Path) -> Optional[int]:
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _remove(workdir: str, lock_fd: Optional[int]) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    if lock_fd is not None:
        os.close(lock_fd)


def _sweep_stale_extractions() -> None:
    for path in Path(tempfile.gettempdir()).glob(EXTRACT_PREFIX + "*"):
        if _owner_gone(path):
            shutil.rmtree(str(path), ignore_errors=True)


def _owner_gone(path: Path) -> bool:
    try:
        import fcntl

        fd = os.open(str(path / LOCK_NAME), os.O_RDWR)
    except (ImportError, OSError):
        pid_text = path.name[len(EXTRACT_PREFIX):].split("-", 1)[0]
        return pid_text.isdigit() and not _pid_alive(int(pid_text))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True  # nobody holds it: its process is gone
    except OSError:
        return False
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's live process (or unknowable): leave it alone
    return True


def _open_root(root: Path, target: Path, *, archive: Optional[Path] = None, drop_bad_engines: bool = False) -> Bundle:
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(f"{target} is not a bundle ({MANIFEST_NAME} missing)", hint="pass the directory `edgeinfer package` wrote")
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read {manifest_path}: {exc}", hint="re-package the model") from exc
    manifest = load_manifest_text(text, source=str(manifest_path))
    dropped = _drop_bad_engines(root, manifest) if drop_bad_engines else []
    verify_checksums(root, manifest)
    bundle = Bundle(root, manifest, archive=archive)
    bundle.dropped_engines = dropped
    return bundle


def _drop_bad_engines(root: Path, manifest: Dict[str, Any]) -> List[str]:
    """Remove engine records whose file is missing or fails its sha256; returns one reason per engine."""
    reasons = []
    for entry in manifest["devices"].values():
        kept = []
        for rec in entry["engines"]:
            rel = str(rec.get("path")) if isinstance(rec, dict) else ""
            full = root / PurePosixPath(rel) if rel else None
            expected = manifest["checksums"].get(rel)
            if full is not None and full.is_file() and expected and sha256_file(full) == expected:
                kept.append(rec)
                continue
            reasons.append(f"engine {rel} is {'missing' if full is None or not full.is_file() else 'corrupt (sha256 mismatch)'}")
            manifest["checksums"].pop(rel, None)
        entry["engines"] = kept
    return reasons


def verify_checksums(root: Path, manifest: Dict[str, Any]) -> None:
    """Check every file listed in ``checksums`` and that every referenced file is listed."""
    checksums = manifest["checksums"]
    for rel in _referenced_paths(manifest):
        if rel not in checksums:
            raise BundleError(f"bundle file {rel} has no recorded sha256", hint="re-package the model")
    for rel, expected in checksums.items():
        rel_path = PurePosixPath(str(rel))
        if rel_path.is_absolute() or ".." in rel_path.parts:
            raise BundleError(f"bundle manifest lists an unsafe path {rel!r}", hint="re-package the model")
        full = root / rel_path
        if not full.is_file():
            raise BundleError(f"bundle file {rel} is missing", hint="copy the whole bundle directory again")
        if sha256_file(full) != expected:
            raise BundleError(f"bundle file {rel} is corrupt or was modified (sha256 mismatch)",
                              hint="copy the bundle again or re-package it")


def _referenced_paths(manifest: Dict[str, Any]) -> List[str]:
    paths = []
    for entry in manifest["devices"].values():
        paths.extend(str(p) for p in entry["artifacts"].values() if p)
        paths.extend(str(e["path"]) for e in entry["engines"] if isinstance(e, dict) and e.get("path"))
    return paths
