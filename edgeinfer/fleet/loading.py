"""What ``edgeinfer.load`` asks of the fleet layer: the signature check and the model's identity.

Example:
    >>> check = IdentityCheck("model.onnx", trust=TrustStore(keys={}, sources=[]))
    >>> check.identity is None
    True

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

from .identity import identity_for
from .trust import SignatureError, TrustStore, check_bundle_trust, manifest_sha256


class IdentityCheck:
    """Called by the runtime with the opened bundle (None for a plain ONNX file), before any backend opens."""

    def __init__(self, path: Any, trust: Any) -> None:
        self.path = os.fspath(path)
        self.store = trust if isinstance(trust, TrustStore) else TrustStore.from_config(files=list(trust or []))
        self.identity: Optional[Dict[str, Any]] = None

    def __call__(self, bundle: Any) -> None:
        if bundle is None:
            if self.store.configured:
                raise SignatureError(f"{self.path} is a plain ONNX file, and this device only runs signed bundles",
                                     hint="package and sign it: edgeinfer package MODEL --device NAME --sign KEY")
            self.identity = identity_for(self.path)
            return
        signer = check_bundle_trust(bundle, self.store)
        self.identity = identity_for(self.path, bundle.manifest, manifest_sha256(bundle.root), signer)

    def apply(self, model: Any) -> None:
        ident = self.identity or {}
        model.model_id = ident.get("model_id")
        model.model_version = ident.get("model_version")
        model.signer = ident.get("signer")
        model.path = self.path
