"""Fleet operations on the device: signed bundles, watched-directory hot swap with rollback, graceful stop.

OTA tools (Mender, balena, AWS IoT Greengrass, Kubernetes volumes) deliver bundle directories into a
folder; :class:`~edgeinfer.fleet.watch.BundleWatcher` takes it from there: verify (checksums,
signature, device entry), load and warm on the side, switch between two frames, health-check,
roll back on failure, keep the last K bundles. See docs/fleet.md.

Example:
    >>> from edgeinfer.fleet import make_model_id
    >>> make_model_id("shapes.bundle", "0123456789abcdef" * 4)
    'shapes@0123456789ab'

Device-side code: Python 3.8-clean. Nothing here imports ``cryptography`` until a key is used.
"""
from __future__ import annotations

from .health import HealthPolicy
from .identity import bundle_name, identity_for, make_model_id
from .trust import SIGNATURE_NAME, SignatureError, TrustStore, check_bundle_trust, sign_bundle, signed_digest

__all__ = ["HealthPolicy", "SIGNATURE_NAME", "SignatureError", "TrustStore", "bundle_name", "check_bundle_trust", "identity_for",
           "make_model_id", "sign_bundle", "signed_digest"]
