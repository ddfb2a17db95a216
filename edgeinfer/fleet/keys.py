"""Ed25519 signing keys for bundles: generate, read, fingerprint (``cryptography`` does the maths).

``edgeinfer keygen PREFIX`` writes ``PREFIX.key`` (PKCS#8 PEM, mode 0600: keep it on the build
host) and ``PREFIX.pub`` (SubjectPublicKeyInfo PEM: copy it to every device that should trust
bundles signed with the key). The fingerprint names a key in logs, ``inspect`` and signatures:
the first 16 hex digits of the sha256 of the raw 32-byte public key.

Example:
    >>> import tempfile, pathlib
    >>> prefix = pathlib.Path(tempfile.mkdtemp()) / "fleet"
    >>> key_path, pub_path = generate_keypair(prefix)
    >>> oct(key_path.stat().st_mode & 0o777), len(fingerprint(load_public_key(pub_path)))
    ('0o600', 16)

Device-side code: Python 3.8-clean.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Tuple, Union

from .._deps import require
from ..errors import ConfigError

PathLike = Union[str, "os.PathLike[str]"]
_FEATURE = "Ed25519 bundle signatures"


def _serialization() -> Any:
    return require("cryptography.hazmat.primitives.serialization", feature=_FEATURE)


def _ed25519() -> Any:
    return require("cryptography.hazmat.primitives.asymmetric.ed25519", feature=_FEATURE)


def generate_keypair(prefix: PathLike, *, force: bool = False) -> Tuple[Path, Path]:
    """Write ``PREFIX.key`` (0600) and ``PREFIX.pub``; refuses to overwrite unless ``force``."""
    ser, ed = _serialization(), _ed25519()
    base = Path(prefix)
    key_path, pub_path = Path(f"{base}.key"), Path(f"{base}.pub")
    if not base.parent.is_dir():
        raise ConfigError(f"folder {base.parent} does not exist", hint="create it first")
    for path in (key_path, pub_path):
        if path.exists() and not force:
            raise ConfigError(f"{path} already exists", hint="choose another PREFIX, or pass --force to replace the key pair")
    private = ed.Ed25519PrivateKey.generate()
    key_pem = private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pub_pem = private.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    _write_private(key_path, key_pem)
    _write_atomic(pub_path, pub_pem, 0o644)
    return key_path, pub_path


def _write_private(path: Path, data: bytes) -> None:
    # O_EXCL on a temp name with mode 0600 from the start: the key is never readable by others, not even briefly.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(str(tmp), 0o600)  # the umask cannot widen it, but be explicit
        os.replace(str(tmp), str(path))
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.chmod(str(tmp), mode)
        os.replace(str(tmp), str(path))
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def load_private_key(path: PathLike) -> Any:
    """An Ed25519 private key from a PEM file written by :func:`generate_keypair`."""
    ser, ed = _serialization(), _ed25519()
    data = _read(path, "signing key")
    try:
        key = ser.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key ({exc})",
                          hint="pass the PREFIX.key file written by `edgeinfer keygen PREFIX`") from exc
    if not isinstance(key, ed.Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key", hint="create one with `edgeinfer keygen PREFIX`")
    return key


def load_public_key(path: PathLike) -> Any:
    """An Ed25519 public key from a PEM file (``PREFIX.pub``)."""
    ser, ed = _serialization(), _ed25519()
    data = _read(path, "trusted public key")
    try:
        key = ser.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not a PEM public key ({exc})",
                          hint="pass the PREFIX.pub file written by `edgeinfer keygen PREFIX` (not the .key)") from exc
    if not isinstance(key, ed.Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key", hint="create one with `edgeinfer keygen PREFIX`")
    return key


def fingerprint(public_key: Any) -> str:
    """First 16 hex digits of sha256(raw public key): short, stable, and what `inspect` prints."""
    ser = _serialization()
    raw = public_key.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _read(path: PathLike, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}", hint="check the path") from exc
