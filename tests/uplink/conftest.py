"""Fixtures for the uplink tests: a real HTTP receiver, Mosquitto, a self-signed TLS certificate."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from uplink_receivers import MOSQUITTO, Broker, Receiver


@pytest.fixture()
def receiver():
    rec = Receiver().start()
    yield rec
    rec.stop()


@pytest.fixture()
def broker(tmp_path):
    if not Path(MOSQUITTO).exists():
        pytest.fail(f"mosquitto not found at {MOSQUITTO}: apt-get install mosquitto")
    b = Broker(tmp_path).start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem); it is its own CA."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture()
def small_disk(tmp_path):
    """mount_tmpfs(size) -> a directory on its own tmpfs of that size (a disk that can really fill up)."""
    mounts = []

    def mount_tmpfs(size: str) -> Path:
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs to fill a disk (needs root or CAP_SYS_ADMIN): {res.stderr.strip()}")
        mounts.append(where)
        return where

    yield mount_tmpfs
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)

