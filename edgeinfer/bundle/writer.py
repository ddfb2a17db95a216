"""Write a bundle atomically: build it in a hidden temp dir next to the target, then rename.

Example:
    >>> from edgeinfer.bundle import BundleWriter
    >>> with BundleWriter("out/shapes.bundle", force=True) as w:            # doctest: +SKIP
    ...     onnx_rel = w.add_artifact("work/model.onnx")                     # stored once, by content hash
    ...     w.set_model(info=info.to_dict(), name="shapes.onnx", source_sha256=sha)
    ...     w.add_device("orin-nx-16gb", profile=p.to_dict(), jetpack=jp, precision="int8",
    ...                  artifacts={"onnx": onnx_rel}, placement=plan.to_dict(), recipes=recipes)
    >>> # leaving the block without an exception publishes out/shapes.bundle; an exception leaves nothing

Nothing is visible at the target path until :meth:`BundleWriter.commit` (called on a clean exit
from the ``with`` block). A process killed mid-write leaves only a hidden ``.NAME.partial-PID-*``
directory, which the next writer for the same target removes. Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

from .. import __version__
from ..errors import BundleError
from ._fs import atomic_write_bytes, sha256_file, umask
from .archive import pack_archive
from .manifest import ARTIFACT_KINDS, MANIFEST_NAME, SCHEMA_VERSION, dump_manifest

ARTIFACTS_DIR = "artifacts"
ENGINES_DIR = "engines"
# A file, not an empty folder: .tar packing, git and many copy tools drop empty folders, and
# trtexec (the recipes' --saveEngine=engines/...) does not create missing ones.
ENGINES_README = ("TensorRT engines for this bundle go here.\n"
                  "`edgeinfer build BUNDLE` builds and records one on the device. An engine built by hand with a\n"
                  "recipe's trtexec command (run inside the bundle directory) lands here too; record it with\n"
                  "`edgeinfer build BUNDLE --import engines/FILE.engine` so the runtime selects it.\n")


class BundleWriter:
    """Collects artifacts and device entries in a temp dir; :meth:`commit` publishes them at once."""

    def __init__(self, out: Union[str, Path], *, force: bool = False, archive: bool = False) -> None:
        self.target = Path(out)
        self.force = force
        self.archive = archive
        self._model: Optional[Dict[str, Any]] = None
        self._devices: Dict[str, Dict[str, Any]] = {}
        self._checksums: Dict[str, str] = {}
        self._tmp: Optional[Path] = None
        self._sections: Dict[str, Any] = {}
        self._check_target()

    def __enter__(self) -> "BundleWriter":
        with disk_errors(self.target):
            _make_parent(self.target.parent)
            _sweep_stale_partials(self.target)
            self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial-{os.getpid()}-",
                                              dir=str(self.target.parent)))
            try:
                os.chmod(str(self._tmp), 0o777 & ~umask())  # mkdtemp makes it 0700; a bundle is meant to be shared
                (self._tmp / ARTIFACTS_DIR).mkdir()
                (self._tmp / ENGINES_DIR).mkdir()
                (self._tmp / ENGINES_DIR / "README.txt").write_text(ENGINES_README)
            except BaseException:
                self._discard()
                raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self._discard()

    def add_artifact(self, src: Union[str, Path]) -> str:
        """Store ``src`` under artifacts/ named by its sha256 (once, however often it is added); returns the relpath."""
        tmp = self._require_open()
        source = Path(src)
        if not source.is_file():
            raise BundleError(f"artifact {source} does not exist", hint="this is a packaging step that failed earlier")
        digest = sha256_file(source)
        rel = f"{ARTIFACTS_DIR}/{digest[:16]}{''.join(source.suffixes[-1:])}"
        if rel not in self._checksums:
            with disk_errors(self.target):
                shutil.copyfile(str(source), str(tmp / rel))
            self._checksums[rel] = digest
        return rel

    def set_model(self, *, info: Dict[str, Any], name: str, source_sha256: str,
                  postprocess: Optional[Dict[str, Any]] = None) -> None:
        """Record the model section: ModelInfo dict, source file name + sha256, pre/post spec, class names."""
        self._model = {
            "name": name,
            "source_sha256": source_sha256,
            "class_names": {int(k): str(v) for k, v in (info.get("names") or {}).items()},
            "preprocess": info.get("preprocess", {}),
            "postprocess": dict(postprocess or {"layout": info.get("output_layout"), "task": info.get("task")}),
            "info": info,
        }

    def add_device(self, name: str, *, profile: Dict[str, Any], jetpack: Dict[str, Any], precision: str,
                   artifacts: Dict[str, str], placement: Dict[str, Any], recipes: Dict[str, Any],
                   accuracy: Optional[Dict[str, Any]] = None, calibration: Optional[Dict[str, Any]] = None,
                   dla: Optional[Dict[str, Any]] = None) -> None:
        """Add one device entry; ``artifacts`` maps kind -> relpath returned by :meth:`add_artifact`."""
        unknown = sorted(set(artifacts) - set(ARTIFACT_KINDS))
        missing = sorted(rel for rel in artifacts.values() if rel not in self._checksums)
        if unknown or missing:
            raise BundleError(f"device {name}: unknown artifact kinds {unknown} or paths not added {missing}",
                              hint="add files with BundleWriter.add_artifact first")
        self._devices[name] = {
            "profile": profile, "jetpack": jetpack, "precision": precision, "dla": dict(dla or {}),
            "artifacts": dict(artifacts), "calibration": dict(calibration or {}), "placement": placement,
            "accuracy": dict(accuracy or {}), "recipes": recipes, "engines": [],
        }

    @property
    def staging_dir(self) -> Path:
        """The hidden directory the bundle is assembled in (inside the ``with`` block): checks run on it
        before :meth:`commit` publishes it."""
        return self._require_open()

    def set_section(self, key: str, value: Dict[str, Any]) -> None:
        """Add a top-level manifest section beside the required ones (e.g. ``verification``)."""
        if key in ("schema_version", "edgeinfer_version", "created", "model", "devices", "checksums"):
            raise BundleError(f"manifest section {key!r} is reserved", hint="choose another section name")
        self._sections[key] = value

    def manifest(self) -> Dict[str, Any]:
        """The manifest as it will be written."""
        if self._model is None or not self._devices:
            raise BundleError("bundle has no model or no devices", hint="call set_model and add_device before commit")
        created = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
        return {
            "schema_version": SCHEMA_VERSION, "edgeinfer_version": __version__, "created": created,
            "model": self._model, "devices": self._devices, "checksums": dict(sorted(self._checksums.items())),
            **self._sections,
        }

    def commit(self) -> Path:
        """Write the manifest and move the finished bundle to the target path in one rename."""
        tmp = self._require_open()
        with disk_errors(self.target):
            atomic_write_bytes(tmp / MANIFEST_NAME, dump_manifest(self.manifest()).encode("utf-8"))
            self._check_target()
            if self.archive:
                pack_archive(tmp, self.target)
            else:
                _replace_dir(tmp, self.target)
        self._tmp = None if not self.archive else tmp
        return self.target

    def _check_target(self) -> None:
        if self.target.exists() and not self.force:
            raise BundleError(f"{self.target} already exists", hint="pass --force to replace it, or choose another -o")
        if self.target.exists() and self.archive == self.target.is_dir():
            kind = "directory" if self.target.is_dir() else "file"
            raise BundleError(f"{self.target} is a {kind}; refusing to replace it with a different kind",
                              hint="choose another -o path")

    def _require_open(self) -> Path:
        if self._tmp is None:
            raise BundleError("BundleWriter used outside its `with` block", hint="use `with BundleWriter(out) as w:`")
        return self._tmp

    def _discard(self) -> None:
        if self._tmp is not None and self._tmp.exists():
            shutil.rmtree(str(self._tmp), ignore_errors=True)
        self._tmp = None


@contextlib.contextmanager
def disk_errors(target: Path) -> Iterator[None]:
    """Turn an OSError while writing ``target`` into a one-line BundleError (read-only, no space, ...)."""
    try:
        yield
    except OSError as exc:
        message, hint = describe_os_error(exc, target)
        raise BundleError(message, hint=hint) from exc


def describe_os_error(exc: OSError, target: Path):
    """(message, hint) for an OSError met while writing ``target``: say what, where, and the fix.

    Example:
        >>> describe_os_error(OSError(28, "No space left on device"), Path("/data/m.bundle"))[0]
        'no space left on the disk of /data for the bundle /data/m.bundle'
    """
    where = target.parent
    code = exc.errno
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", -1):
        return (f"no space left on the disk of {where} for the bundle {target}",
                "free some space there, or write the bundle elsewhere with -o")
    if code == errno.EROFS:
        return (f"cannot write the bundle {target}: {where} is on a read-only file system",
                "choose an -o on a writable disk")
    if code in (errno.EACCES, errno.EPERM):
        return (f"cannot write the bundle {target}: permission denied in {exc.filename or where}",
                "choose an -o in a directory you can write, or fix its permissions")
    if code in (errno.ENOTDIR, errno.EEXIST) and _file_on_path(where) is not None:
        return (f"cannot write the bundle {target}: {_file_on_path(where)} is a file, not a directory",
                "choose an -o whose parent is a directory")
    return (f"cannot write the bundle {target}: {exc.strerror or exc}", "check the -o path and the disk")


def _file_on_path(directory: Path) -> Optional[Path]:
    """The first existing non-directory on the way down to ``directory``, if any."""
    for part in reversed([directory, *directory.parents]):
        if part.exists() and not part.is_dir():
            return part
    return None


def _make_parent(parent: Path) -> None:
    blocker = _file_on_path(parent)
    if blocker is not None:  # mkdir would say "File exists" about the wrong thing
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(blocker))
    parent.mkdir(parents=True, exist_ok=True)


def _replace_dir(new: Path, target: Path) -> None:
    """Swap ``new`` into ``target``. Directories cannot be os.replace'd over non-empty ones, so
    the old bundle is first renamed aside (same dir, same file system: both renames are atomic)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=str(target.parent)))
        os.rmdir(str(old))
        os.rename(str(target), str(old))
    try:
        os.rename(str(new), str(target))
    except BaseException:
        if old is not None:
            os.rename(str(old), str(target))
        raise
    if old is not None:
        shutil.rmtree(str(old), ignore_errors=True)


def _sweep_stale_partials(target: Path) -> None:
    """Remove temp dirs of writers for this target that were killed (their pid no longer runs)."""
    for prefix in (f".{target.name}.partial-", f".{target.name}.old-"):
        for path in target.parent.glob(prefix + "*"):
            pid_text = path.name[len(prefix):].split("-", 1)[0]
            if pid_text.isdigit() and not _pid_alive(int(pid_text)):
                shutil.rmtree(str(path), ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
