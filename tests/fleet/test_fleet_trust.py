"""Signed bundles: keygen, sign, package --sign, trust on load/run, tampering refused, inspect shows the signer."""
from __future__ import annotations

import os
import shutil
import stat

import pytest
from fleet_helpers import cli, edit_manifest_keep_hash_valid, make_variant, read_manifest

import edgeinfer
from edgeinfer.bundle import open_bundle
from edgeinfer.errors import BundleError
from edgeinfer.fleet import SignatureError, TrustStore, signed_digest
from edgeinfer.fleet.keys import fingerprint, load_public_key


def test_keygen_writes_private_key_0600_and_refuses_to_overwrite(keys, tmp_path):
    assert stat.S_IMODE(keys["key"].stat().st_mode) == 0o600
    assert keys["pub"].read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = cli("keygen", keys["key"].with_suffix(""), check=False)
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_signed_bundle_loads_with_trust_and_carries_identity(signed_bundle, keys):
    model = edgeinfer.load(signed_bundle, trust=[keys["pub"]], device="cpu", warmup=0)
    try:
        digest = (signed_bundle / "manifest.yaml").read_text().split("sha256=")[1][:12]
        assert model.model_id == f"shapes@{digest}"
        assert model.signer == fingerprint(load_public_key(keys["pub"]))
        assert model.model_version == read_manifest(signed_bundle)["created"]
    finally:
        model.close()


def test_signing_keeps_the_manifest_hash(signed_bundle):
    sig = (signed_bundle / "manifest.sig").read_text()
    header_hash = (signed_bundle / "manifest.yaml").read_text().partition("\n")[0].rpartition("=")[2]
    assert header_hash in sig  # the signature covers exactly the manifest's own hash


@pytest.mark.parametrize("case", ["unsigned", "other_key", "tampered"])
def test_run_refuses_bad_bundles_with_one_line(case, signed_bundle, keys, tmp_path, loop_video):
    bad = tmp_path / "bad.bundle"
    if case == "unsigned":
        make_variant(signed_bundle, bad)
    elif case == "other_key":
        make_variant(signed_bundle, bad, key=keys["other_key"])
    else:  # a manifest edited with its hash recomputed: checksums pass, the signature does not
        shutil.copytree(signed_bundle, bad)
        edit_manifest_keep_hash_valid(bad, lambda m: m["model"]["class_names"].update({0: "person"}))
    expected = {"unsigned": "is not signed", "other_key": "does not trust", "tampered": "does not match its manifest"}[case]
    with pytest.raises(SignatureError, match=expected):
        edgeinfer.load(bad, trust=[keys["pub"]], device="cpu", warmup=0)
    if case != "tampered":
        return
    # The CLI: one line, exit 1, no traceback (one subprocess; the message is the same for every case).
    proc = cli("run", bad, "--trust", keys["pub"], "--source", loop_video, "--max-frames", "2", "--status-interval", "0",
               check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expected in lines[0]


def test_without_trust_configured_unsigned_bundles_still_load(signed_bundle, tmp_path, monkeypatch):
    monkeypatch.delenv("EDGEINFER_TRUST", raising=False)
    monkeypatch.setenv("EDGEINFER_TRUST_DIR", str(tmp_path / "none"))
    unsigned = make_variant(signed_bundle, tmp_path / "u.bundle")
    edgeinfer.load(unsigned, device="cpu", warmup=0).close()


def test_trust_from_environment_and_trust_folder(signed_bundle, keys, tmp_path, monkeypatch):
    unsigned = make_variant(signed_bundle, tmp_path / "u.bundle")
    monkeypatch.setenv("EDGEINFER_TRUST", str(keys["pub"]))
    with pytest.raises(SignatureError, match="not signed"):
        edgeinfer.load(unsigned, device="cpu", warmup=0)
    monkeypatch.delenv("EDGEINFER_TRUST")
    folder = tmp_path / "trusted-keys"
    folder.mkdir()
    shutil.copy(keys["pub"], folder / "fleet.pub")
    monkeypatch.setenv("EDGEINFER_TRUST_DIR", str(folder))
    assert TrustStore.from_config().configured
    with pytest.raises(SignatureError, match="not signed"):
        edgeinfer.load(unsigned, device="cpu", warmup=0)
    edgeinfer.load(signed_bundle, device="cpu", warmup=0).close()


def test_plain_onnx_refused_when_trust_is_configured(keys, tmp_path):
    from fleet_helpers import DEMO_ONNX

    with pytest.raises(SignatureError, match="plain ONNX"):
        edgeinfer.load(DEMO_ONNX, trust=[keys["pub"]], device="cpu", warmup=0)


def test_checksums_still_come_first(signed_bundle, keys, tmp_path):
    bad = tmp_path / "corrupt.bundle"
    shutil.copytree(signed_bundle, bad)
    onnx = next((bad / "artifacts").glob("*.onnx"))
    with open(onnx, "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match="corrupt"):
        edgeinfer.load(bad, trust=[keys["pub"]], device="cpu", warmup=0)


def test_engine_added_on_the_device_keeps_the_signature_valid(signed_bundle, keys, tmp_path):
    from edgeinfer.bundle import open_bundle

    copy = tmp_path / "b.bundle"
    shutil.copytree(signed_bundle, copy)
    before = signed_digest(open_bundle(copy).manifest)
    engine = tmp_path / "x.engine"
    engine.write_bytes(os.urandom(64))
    bundle = open_bundle(copy)
    device = bundle.devices[0]
    bundle.add_engine(device, engine, {"key": "k", "tensorrt_version": "10.3"})
    reopened = open_bundle(copy)
    assert reopened.manifest["devices"][device]["engines"]  # the manifest (and its hash) changed ...
    assert signed_digest(reopened.manifest) == before  # ... the signed content did not
    assert TrustStore.from_config(files=[keys["pub"]], env={}).verify(reopened)


def test_inspect_shows_the_signer(signed_bundle, keys, tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from edgeinfer.cli import cli as group

    fp = fingerprint(load_public_key(keys["pub"]))
    monkeypatch.setenv("EDGEINFER_TRUST", str(keys["pub"]))
    out = CliRunner().invoke(group, ["inspect", str(signed_bundle)]).output
    assert f"signature ed25519 by key {fp} (trusted here)" in out
    unsigned = make_variant(signed_bundle, tmp_path / "u.bundle")
    assert "signature unsigned" in CliRunner().invoke(group, ["inspect", str(unsigned)]).output
    data = json.loads(CliRunner().invoke(group, ["inspect", str(signed_bundle), "--json"]).output)
    assert data["signature"]["key_id"] == fp and data["signature"]["matches_manifest"] is True


def test_sign_cli_signs_and_refuses_a_public_key_with_one_line(signed_bundle, keys, tmp_path):
    copy = make_variant(signed_bundle, tmp_path / "b.bundle")
    assert "by key" in cli("sign", copy, keys["other_key"]).stdout
    assert TrustStore.from_config(files=[keys["other_pub"]], env={}).verify(open_bundle(copy))
    proc = cli("sign", copy, keys["pub"], check=False)
    assert proc.returncode == 1 and "not an unencrypted PEM private key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_corrupt_engine_falls_back_to_onnxruntime_only_when_asked(signed_bundle, keys, tmp_path, caplog):
    from edgeinfer.bundle import open_bundle

    copy = tmp_path / "b.bundle"
    shutil.copytree(signed_bundle, copy)
    engine = tmp_path / "orin.engine"
    engine.write_bytes(os.urandom(256))
    bundle = open_bundle(copy)
    bundle.add_engine(bundle.devices[0], engine, {"key": "k", "tensorrt_version": "10.3"})
    with open(copy / "engines" / "orin.engine", "r+b") as fh:  # a disk fault after the build
        fh.write(b"\x00" * 16)
    with pytest.raises(BundleError, match="engines/orin.engine is corrupt"):
        edgeinfer.load(copy, trust=[keys["pub"]], device="cpu", warmup=0)
    model = edgeinfer.load(copy, trust=[keys["pub"]], device="cpu", warmup=0, fallback="onnxruntime")
    try:
        assert model.backend_name == "onnxruntime"
        assert "engine engines/orin.engine is corrupt" in model.backend_reason
        assert "falling back to ONNX Runtime" in caplog.text
    finally:
        model.close()
