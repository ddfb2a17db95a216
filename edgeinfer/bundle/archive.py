"""Single-file ``.tar`` form of a bundle: pack atomically, unpack safely.

The archive holds one top-level directory (the bundle's name) so ``tar -xf`` never spills
files into the current directory. Unpacking rejects absolute paths, ``..``, links and device
files before extracting anything, and extracts with safe modes and no ownership: tarfile's
``filter="data"`` (PEP 706) where the Python has it (3.12, and 3.8.17+/3.9.17+/3.10.12+/3.11.4+),
else the same rules applied by hand (no setuid/setgid/sticky bits, no group/other write, owner
read+write on files, private directories, files owned by the extracting user), so an archive
cannot plant a setuid or world-writable file. Device-side code: Python 3.8-clean.

Example:
    >>> # pack_archive(Path("out/yolo.bundle"), Path("out/yolo.bundle.tar"))
    >>> # root = unpack_archive(Path("out/yolo.bundle.tar"), Path("/tmp/x"))
"""
from __future__ import annotations

import copy
import os
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import List

from ..errors import BundleError
from ._fs import file_mode
from .manifest import MANIFEST_NAME


def is_archive(path: Path) -> bool:
    """True for a regular file that looks like a tar archive."""
    return path.is_file() and tarfile.is_tarfile(str(path))


def pack_archive(bundle_dir: Path, archive: Path) -> None:
    """Write ``bundle_dir`` into ``archive`` (temp file next to it, then os.replace)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{archive.name}.", suffix=".partial", dir=str(archive.parent))
    os.close(fd)
    try:
        with tarfile.open(tmp, "w") as tar:
            # Sorted, explicit members: the archive content does not depend on directory order.
            for path in sorted(p for p in bundle_dir.rglob("*") if p.is_file()):
                rel = path.relative_to(bundle_dir).as_posix()
                tar.add(str(path), arcname=f"{_top_name(archive)}/{rel}", recursive=False)
        os.chmod(tmp, file_mode())
        os.replace(tmp, str(archive))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def unpack_archive(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` under ``dest`` after checking every member; returns the bundle root."""
    try:
        with tarfile.open(str(archive), "r") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            _extract_safely(tar, members, dest)  # members were checked above
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"cannot read bundle archive {archive}: {exc}", hint="copy the .tar again") from exc
    if (dest / MANIFEST_NAME).is_file():
        return dest
    tops = [p for p in dest.iterdir() if p.is_dir() and (p / MANIFEST_NAME).is_file()]
    if len(tops) != 1:
        raise BundleError(f"{archive} holds no single bundle ({MANIFEST_NAME} not found)",
                          hint="pack bundles with `edgeinfer package ... --archive`")
    return tops[0]


def _extract_safely(tar: tarfile.TarFile, members: List[tarfile.TarInfo], dest: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        tar.extractall(str(dest), members=members, filter="data")
    else:  # an older Python without PEP 706: the "data" filter's mode and owner rules by hand
        tar.extractall(str(dest), members=[_data_member(m) for m in members])


def _data_member(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A copy of ``member`` with tarfile's "data" filter rules applied (only files and dirs get here)."""
    safe = copy.copy(member)
    if member.isdir():
        safe.mode = 0o700  # as the filter leaves it: mkdir(0o700), no chmod
    else:
        mode = member.mode & 0o755
        if not mode & 0o100:
            mode &= ~0o111
        safe.mode = mode | 0o600
    # Owned by whoever extracts: as root, tarfile would otherwise chown to the archive's uid/gid.
    safe.uid, safe.gid, safe.uname, safe.gname = os.getuid(), os.getgid(), "", ""
    return safe


def _top_name(archive: Path) -> str:
    name = archive.name
    return name[: -len(".tar")] if name.endswith(".tar") else name


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    parts = PurePosixPath(member.name).parts
    bad_path = member.name.startswith("/") or ".." in parts
    if bad_path or not (member.isfile() or member.isdir()):
        raise BundleError(f"{archive} has an unsafe member {member.name!r} (links, devices, absolute or '..' paths are refused)",
                          hint="only open archives made by `edgeinfer package --archive`")
