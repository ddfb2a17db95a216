"""Atomic file output: write a hidden temporary name in the target folder, then ``os.replace``.

Unlike ``tempfile.mkstemp`` (mode 0600) the temporary file is created by the writer itself, so
the final file gets the usual permissions from the umask.

Example:
    >>> temp_path_for("/data/out.mp4").startswith("/data/.out.mp4.")
    True
"""
from __future__ import annotations

import json
import os
import uuid
from typing import Any


def temp_path_for(final: str) -> str:
    """A unique hidden sibling of ``final`` that keeps its extension (encoders pick the container from it)."""
    folder, name = os.path.split(os.path.abspath(final))
    ext = os.path.splitext(name)[1]
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp{ext}")


def write_json_atomic(path: str, data: Any) -> None:
    """JSON to ``path``; never half-written."""
    tmp = temp_path_for(path)
    try:
        with open(tmp, "x") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
