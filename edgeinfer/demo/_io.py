"""Atomic file writes for the demo generators: a temp file in the same folder, then os.replace."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union


def default_file_mode() -> int:
    """0o666 minus the process umask: what open() would give (mkstemp alone gives 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Union[str, Path], data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Union[str, Path], text: str) -> Path:
    """Text flavour of :func:`atomic_write_bytes` (UTF-8, ``\\n`` line ends on every OS)."""
    return atomic_write_bytes(path, text.encode("utf-8"))
