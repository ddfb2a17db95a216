"""Fleet fixtures: one Ed25519 key pair and one demo bundle packaged (fp16) and signed by `edgeinfer package --sign`."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fleet_helpers import DEMO_ONNX, DEVICE, cli  # noqa: E402


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    cli("keygen", d / "fleet")
    cli("keygen", d / "other")
    return {"key": d / "fleet.key", "pub": d / "fleet.pub", "other_key": d / "other.key", "other_pub": d / "other.pub"}


@pytest.fixture(scope="session")
def signed_bundle(tmp_path_factory, keys) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "shapes.bundle"
    cli("package", DEMO_ONNX, "--device", DEVICE, "--precision", "fp16", "-o", out, "--sign", keys["key"])
    return out


@pytest.fixture(scope="session")
def loop_video(tmp_path_factory) -> Path:
    from edgeinfer.demo.video import make_video

    path = tmp_path_factory.mktemp("video") / "loop.mp4"
    make_video(path, frames=45, size=(320, 240), fps=30)
    return path
