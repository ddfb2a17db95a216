"""Which model made a record: ``model_id`` (bundle name + short manifest hash) and ``model_version``.

Example:
    >>> make_model_id("/ota/shapes-v2.bundle", "b5f058c682bbcbd450931707328ac8262b89ecfe069267cf87783430042da12f")
    'shapes-v2@b5f058c682bb'

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from ..bundle._fs import sha256_file

_SUFFIXES = (".bundle.tar", ".tar", ".bundle", ".onnx")


def bundle_name(path: Any) -> str:
    """The bundle's file name without ``.bundle`` / ``.tar`` / ``.onnx``."""
    name = Path(str(path)).name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def make_model_id(path: Any, digest: str) -> str:
    """``NAME@HASH12``: readable in dashboards, unique per manifest (a re-package changes the hash)."""
    return f"{bundle_name(path)}@{digest[:12]}"


def identity_for(path: Any, manifest: Optional[Dict[str, Any]] = None, digest: Optional[str] = None,
                 signer: Optional[str] = None) -> Dict[str, Any]:
    """model_id / model_version / signer for a bundle (manifest given) or a plain ONNX file."""
    if manifest is None:  # a plain ONNX file: its content hash stands in for the manifest hash
        digest = digest or sha256_file(str(path))
        return {"model_id": make_model_id(path, digest), "model_version": digest[:12], "signer": None}
    model = manifest.get("model") or {}
    version = model.get("version") or manifest.get("created")
    return {"model_id": make_model_id(path, str(digest)), "model_version": str(version), "signer": signer}
