"""Bundle signatures: sign the manifest digest on the host, check it against trusted keys on the device.

The signature lives in ``manifest.sig`` beside ``manifest.yaml`` (JSON), so signing never changes
the manifest or its hash. What is signed is the manifest's own sha256 (its header line) as the
packager wrote it; engines that ``edgeinfer build`` adds on the device later rewrite the manifest,
so the digest is taken over the manifest with device-built engine records left out (for a bundle
without engines that is byte for byte the manifest hash). Engines are covered by their checksums
and were built by the device itself. Checksums (integrity) + signature (origin): a manifest edited
with its hash recomputed no longer matches the signature and is refused.

Trust on the device: public keys from ``--trust FILE`` (repeatable), the ``EDGEINFER_TRUST``
variable (files or folders of ``*.pub``, separated by ``:``) and the folder
``/etc/edgeinfer/trusted-keys`` (``EDGEINFER_TRUST_DIR`` moves it). With no key configured,
bundles load as before; with any key, unsigned or wrongly signed bundles are refused.

Example:
    >>> TrustStore.from_config(files=[], env={}).configured
    False

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import base64
import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ..bundle._fs import atomic_write_bytes, sha256_bytes
from ..bundle.manifest import MANIFEST_NAME, dump_manifest
from ..errors import BundleError, ConfigError
from .keys import fingerprint, load_private_key, load_public_key

SIGNATURE_NAME = "manifest.sig"
SIGNATURE_FORMAT = "edgeinfer-signature/1"
DEFAULT_TRUST_DIR = "/etc/edgeinfer/trusted-keys"
_CONTEXT = b"edgeinfer-bundle-manifest-sha256:"  # domain separation: this key signs bundle digests only


class SignatureError(BundleError):
    """A bundle is unsigned, signed by an untrusted key, or its signature does not match."""


def signed_digest(manifest: Dict[str, Any], *, root: Optional[Path] = None) -> str:
    """The sha256 a signature covers: the manifest as packaged (device-built engine records left out).

    Without engine records that is the manifest's own header hash (read from ``root`` when given, which
    saves re-serialising a large manifest); with engines, the hash of the manifest re-dumped without them.
    """
    if root is not None and not any(e.get("engines") for e in manifest.get("devices", {}).values()):
        return manifest_sha256(root)
    m = copy.deepcopy(manifest)
    engine_paths = set()
    for entry in m.get("devices", {}).values():
        engine_paths.update(str(e.get("path")) for e in entry.get("engines", []) if isinstance(e, dict))
        entry["engines"] = []
    m["checksums"] = {k: v for k, v in m.get("checksums", {}).items() if k not in engine_paths}
    header = dump_manifest(m).partition("\n")[0]
    return header.rpartition("=")[2].strip()


def _bundle_digest(bundle: Any) -> str:
    # The header shortcut holds only while the in-memory manifest is the one on disk (open_bundle may drop engines).
    root = None if getattr(bundle, "dropped_engines", None) else bundle.root
    return signed_digest(bundle.manifest, root=root)


def sign_bundle(bundle_path: Union[str, Path], key_path: Union[str, Path]) -> Dict[str, Any]:
    """Verify ``bundle_path`` (checksums), sign its digest with ``key_path`` and write ``manifest.sig``.

    A ``.tar`` bundle is repacked with the signature inside. Returns the signature record.
    """
    from ..bundle import open_bundle
    from ..bundle.archive import pack_archive

    key = load_private_key(key_path)
    bundle = open_bundle(bundle_path)
    digest = _bundle_digest(bundle)
    record = {
        "format": SIGNATURE_FORMAT, "algorithm": "ed25519", "key_id": fingerprint(key.public_key()),
        "signed_sha256": digest, "signature": base64.b64encode(key.sign(_CONTEXT + digest.encode())).decode("ascii"),
    }
    atomic_write_bytes(bundle.root / SIGNATURE_NAME, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    if bundle.archive is not None:
        pack_archive(bundle.root, bundle.archive)
    return record


def read_signature(root: Path) -> Optional[Dict[str, Any]]:
    """The parsed ``manifest.sig`` of an opened bundle root, or None when the bundle is unsigned."""
    path = Path(root) / SIGNATURE_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SignatureError(f"{path} is unreadable ({exc})", hint="sign the bundle again: edgeinfer sign BUNDLE KEY") from exc
    if not isinstance(data, dict) or data.get("format") != SIGNATURE_FORMAT or data.get("algorithm") != "ed25519":
        raise SignatureError(f"{path} is not an edgeinfer Ed25519 signature", hint="sign the bundle again: edgeinfer sign BUNDLE KEY")
    return data


@dataclass
class TrustStore:
    """The public keys this device trusts, by fingerprint."""

    keys: Dict[str, Any]
    sources: List[str]

    @property
    def configured(self) -> bool:
        return bool(self.keys)

    @classmethod
    def from_config(cls, *, files: Sequence[Union[str, Path]] = (), env: Optional[Mapping[str, str]] = None) -> "TrustStore":
        """Keys from ``files`` + ``EDGEINFER_TRUST`` + the trust folder (``EDGEINFER_TRUST_DIR``)."""
        env = os.environ if env is None else env
        paths: List[Path] = [Path(f) for f in files]
        for item in filter(None, env.get("EDGEINFER_TRUST", "").split(os.pathsep)):
            paths.extend(_pub_files(Path(item), explicit=True))
        paths.extend(_pub_files(Path(env.get("EDGEINFER_TRUST_DIR", DEFAULT_TRUST_DIR)), explicit=False))
        keys = {}
        for path in paths:
            key = load_public_key(path)
            keys[fingerprint(key)] = key
        return cls(keys=keys, sources=[str(p) for p in paths])

    def verify(self, bundle: Any) -> Optional[str]:
        """Check an opened bundle's signature; returns the signer's fingerprint (None when no trust is configured).

        Raises SignatureError with one line naming the problem and the fix.
        """
        sig = read_signature(bundle.root)
        where = str(bundle.archive or bundle.root)
        if not self.configured:
            return None
        if sig is None:
            raise SignatureError(f"bundle {where} is not signed, and this device only runs signed bundles",
                                 hint="sign it on the build host: edgeinfer sign BUNDLE KEY")
        key = self.keys.get(str(sig.get("key_id")))
        if key is None:
            raise SignatureError(f"bundle {where} is signed by key {sig.get('key_id')}, which this device does not trust "
                                 f"(trusted: {', '.join(sorted(self.keys))})",
                                 hint="sign with a trusted key, or add its .pub with --trust / EDGEINFER_TRUST")
        digest = _bundle_digest(bundle)
        if not _signature_ok(key, sig.get("signature"), digest) or sig.get("signed_sha256") != digest:
            raise SignatureError(f"bundle {where} has a signature that does not match its manifest "
                                 "(the manifest changed after signing)",
                                 hint="re-package and sign it on the build host; never edit a signed manifest")
        return str(sig["key_id"])


def check_bundle_trust(bundle: Any, trust: Any) -> Optional[str]:
    """``trust``: None (environment and trust folder), a TrustStore, or a list of .pub paths."""
    store = trust if isinstance(trust, TrustStore) else TrustStore.from_config(files=list(trust or []))
    return store.verify(bundle)


def _signature_ok(key: Any, signature: Any, digest: str) -> bool:
    from .._deps import require

    exceptions = require("cryptography.exceptions", feature="Ed25519 bundle signatures")
    try:
        key.verify(base64.b64decode(str(signature), validate=True), _CONTEXT + digest.encode())
        return True
    except (exceptions.InvalidSignature, ValueError):
        return False


def _pub_files(path: Path, *, explicit: bool) -> List[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".pub" and p.is_file())
    if path.is_file():
        return [path]
    if explicit:
        raise ConfigError(f"trusted key {path} (from EDGEINFER_TRUST) does not exist",
                          hint="point EDGEINFER_TRUST at .pub files or folders of them")
    return []


def manifest_sha256(root: Path) -> str:
    """The hash in the manifest's header line (what model ids are made of)."""
    header = (Path(root) / MANIFEST_NAME).read_text(encoding="utf-8").partition("\n")[0]
    return header.rpartition("=")[2].strip() or sha256_bytes(b"")


def signature_summary(bundle: Any, trust: Any = None) -> Dict[str, Any]:
    """What ``inspect`` shows: signed or not, the signer's fingerprint, and whether this machine trusts it."""
    try:
        sig = read_signature(bundle.root)
    except SignatureError as exc:
        return {"signed": False, "error": exc.message}
    if sig is None:
        return {"signed": False}
    digest = _bundle_digest(bundle)
    out: Dict[str, Any] = {"signed": True, "algorithm": "ed25519", "key_id": sig.get("key_id"),
                           "matches_manifest": sig.get("signed_sha256") == digest, "trusted": None}
    store = trust if isinstance(trust, TrustStore) else TrustStore.from_config(files=list(trust or []))
    key = store.keys.get(str(sig.get("key_id")))
    if key is not None:
        out["trusted"] = bool(out["matches_manifest"] and _signature_ok(key, sig.get("signature"), digest))
    return out
