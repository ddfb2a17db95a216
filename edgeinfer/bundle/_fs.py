"""Small file-system helpers for the bundle: content hashes and atomic writes.

Every write goes to a temporary file in the *same directory* and is then moved over the
target with :func:`os.replace`, which is atomic on POSIX: a reader sees the old file or the new
one, never a half-written one. Device-side code: Python 3.8-clean.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_bytes(d / "a.txt", b"hi")
    >>> sha256_file(d / "a.txt")[:8]
    '8f434346'
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]
_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (engines can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory + os.replace."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, str(target))
    except BaseException:
        _unlink_quietly(tmp)
        raise


def atomic_copy(src: PathLike, dst: PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically (temp file next to ``dst``, then os.replace)."""
    target = Path(dst)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    os.close(fd)
    try:
        shutil.copyfile(str(src), tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, str(target))
    except BaseException:
        _unlink_quietly(tmp)
        raise


def umask() -> int:
    """The process umask (read by setting and restoring it)."""
    current = os.umask(0)
    os.umask(current)
    return current


def file_mode() -> int:
    """What a plain open() would create: mkstemp's 0600 would hide a shared bundle from other users."""
    return 0o666 & ~umask()


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
