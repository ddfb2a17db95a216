"""Bundle write/read round trip, tamper detection, schema checks, atomicity, artifact sharing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from edgeinfer.bundle import BundleWriter, open_bundle
from edgeinfer.bundle._fs import sha256_bytes
from edgeinfer.errors import BundleError
from edgeinfer.model.info import ModelInfo, TensorSpec

INFO = ModelInfo(
    inputs=[TensorSpec("images", [1, 3, 320, 320])], outputs=[TensorSpec("output0", [1, 7, 2100])],
    task="detect", output_layout="yolov8", names={0: "rect", 1: "circle", 2: "triangle"},
)


def _files(tmp_path: Path) -> dict:
    src = tmp_path / "src"
    src.mkdir()
    files = {"onnx": src / "model.onnx", "qdq": src / "model_qdq.onnx", "cache": src / "calib.cache"}
    files["onnx"].write_bytes(b"onnx-bytes" * 100)
    files["qdq"].write_bytes(b"qdq-bytes" * 100)
    files["cache"].write_text("TRT-100300-EntropyCalibration2\nimages: 3c010204\n")
    return files


def _write(out: Path, files: dict, *, force: bool = False, archive: bool = False) -> Path:
    with BundleWriter(out, force=force, archive=archive) as w:
        w.set_model(info=INFO.to_dict(), name="model.onnx", source_sha256="ab" * 32)
        for name in ("orin-nx-16gb", "orin-nano-8gb"):
            arts = {"onnx": w.add_artifact(files["onnx"]), "qdq_onnx": w.add_artifact(files["qdq"])}
            if name == "orin-nx-16gb":
                arts["calib_cache"] = w.add_artifact(files["cache"])
            w.add_device(name, profile={"name": name}, jetpack={"jetpack": "6.2", "tensorrt": "10.3"},
                         precision="int8", artifacts=arts, placement={"decision": "gpu"},
                         recipes={"10.x": {"trtexec": "trtexec --onnx=x"}}, accuracy={"map50": 0.9})
    return out


def _rewrite_manifest(root: Path, mutate) -> None:
    """Edit the manifest and re-sign it, as a careless tool would (self-hash stays valid)."""
    text = (root / "manifest.yaml").read_text()
    data = yaml.safe_load(text.partition("\n")[2])
    mutate(data)
    body = yaml.safe_dump(data, sort_keys=False)
    (root / "manifest.yaml").write_text(f"# edgeinfer-manifest sha256={sha256_bytes(body.encode())}\n{body}")


def test_round_trip_reads_back_what_was_written(tmp_path):
    files = _files(tmp_path)
    bundle = open_bundle(_write(tmp_path / "m.bundle", files))
    assert bundle.devices == ["orin-nx-16gb", "orin-nano-8gb"]
    assert bundle.model_info == INFO
    entry = bundle.device("orin-nx-16gb")
    assert entry.precision == "int8" and entry.recipes["10.x"]["trtexec"].startswith("trtexec")
    assert bundle.artifact_path("orin-nx-16gb", "calib_cache").read_text().startswith("TRT-100300")
    assert bundle.artifact_path("orin-nano-8gb", "onnx").read_bytes() == files["onnx"].read_bytes()
    assert bundle.manifest["model"]["class_names"] == {0: "rect", 1: "circle", 2: "triangle"}
    with pytest.raises(BundleError, match="no calib_cache"):
        bundle.artifact_path("orin-nano-8gb", "calib_cache")
    with pytest.raises(BundleError, match="no entry for device 'xavier-nx'"):
        bundle.device("xavier-nx")
    umask = os.umask(0)
    os.umask(umask)
    assert (bundle.root.stat().st_mode & 0o777) == 0o777 & ~umask  # not mkdtemp's private 0700
    assert ((bundle.root / "manifest.yaml").stat().st_mode & 0o777) == 0o666 & ~umask


def test_identical_artifacts_are_stored_once_and_shared(tmp_path):
    bundle = open_bundle(_write(tmp_path / "m.bundle", _files(tmp_path)))
    stored = sorted(p.name for p in (bundle.root / "artifacts").iterdir())
    assert len(stored) == 3  # onnx + qdq shared by both devices, one cache
    a, b = bundle.device("orin-nx-16gb").artifacts, bundle.device("orin-nano-8gb").artifacts
    assert a["onnx"] == b["onnx"] and a["qdq_onnx"] == b["qdq_onnx"]


def test_flipped_byte_in_artifact_is_refused(tmp_path):
    root = _write(tmp_path / "m.bundle", _files(tmp_path))
    art = root / open_bundle(root).device("orin-nx-16gb").artifacts["qdq_onnx"]
    data = bytearray(art.read_bytes())
    data[10] ^= 0x01
    art.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 mismatch"):
        open_bundle(root)


def test_edited_manifest_is_refused(tmp_path):
    root = _write(tmp_path / "m.bundle", _files(tmp_path))
    text = (root / "manifest.yaml").read_text()
    (root / "manifest.yaml").write_text(text.replace("precision: int8", "precision: fp16", 1))
    with pytest.raises(BundleError, match="modified after packaging"):
        open_bundle(root)


def test_missing_file_is_refused(tmp_path):
    root = _write(tmp_path / "m.bundle", _files(tmp_path))
    os.unlink(root / open_bundle(root).device("orin-nx-16gb").artifacts["calib_cache"])
    with pytest.raises(BundleError, match="is missing"):
        open_bundle(root)


def test_unknown_schema_version_is_refused(tmp_path):
    root = _write(tmp_path / "m.bundle", _files(tmp_path))
    _rewrite_manifest(root, lambda d: d.update(schema_version=99))
    with pytest.raises(BundleError, match="unknown schema_version 99"):
        open_bundle(root)


def test_malformed_yaml_is_refused(tmp_path):
    root = _write(tmp_path / "m.bundle", _files(tmp_path))
    body = "schema_version: 1\ndevices: [unclosed\n"
    (root / "manifest.yaml").write_text(f"# edgeinfer-manifest sha256={sha256_bytes(body.encode())}\n{body}")
    with pytest.raises(BundleError, match="not valid YAML"):
        open_bundle(root)


def test_manifest_missing_key_is_refused(tmp_path):
    root = _write(tmp_path / "m.bundle", _files(tmp_path))
    _rewrite_manifest(root, lambda d: d["devices"]["orin-nx-16gb"].pop("recipes"))
    with pytest.raises(BundleError, match=r"missing devices\.orin-nx-16gb\.recipes"):
        open_bundle(root)


def test_unlisted_referenced_file_is_refused(tmp_path):
    root = _write(tmp_path / "m.bundle", _files(tmp_path))
    _rewrite_manifest(root, lambda d: d["checksums"].clear())
    with pytest.raises(BundleError, match="no recorded sha256"):
        open_bundle(root)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no bundle at"):
        open_bundle(tmp_path / "nothing")
    with pytest.raises(BundleError, match="manifest.yaml missing"):
        open_bundle(tmp_path)


def test_exception_mid_write_leaves_no_bundle_and_no_temp(tmp_path):
    files = _files(tmp_path)
    out = tmp_path / "out" / "m.bundle"
    with pytest.raises(RuntimeError, match="disk full"):
        with BundleWriter(out) as w:
            w.add_artifact(files["onnx"])
            raise RuntimeError("disk full")
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_failed_repackage_keeps_the_old_bundle(tmp_path):
    files = _files(tmp_path)
    out = _write(tmp_path / "m.bundle", files)
    before = (out / "manifest.yaml").read_text()
    with pytest.raises(BundleError, match="already exists"):
        _write(out, files)
    with pytest.raises(RuntimeError):
        with BundleWriter(out, force=True) as w:
            w.add_artifact(files["qdq"])
            raise RuntimeError("interrupted")
    assert (out / "manifest.yaml").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bundle", "src"]
    _write(out, files, force=True)
    assert open_bundle(out).devices == ["orin-nx-16gb", "orin-nano-8gb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bundle", "src"]


def test_killed_writer_leaves_no_bundle_and_next_writer_sweeps(tmp_path):
    files = _files(tmp_path)
    out = tmp_path / "out" / "m.bundle"
    script = textwrap.dedent(f"""
        import sys, time
        from edgeinfer.bundle import BundleWriter
        with BundleWriter({str(out)!r}) as w:
            w.add_artifact({str(files['onnx'])!r})
            print("written", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    leftovers = list(out.parent.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".m.bundle.partial-")
    _write(out, files)
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.bundle"]


def test_add_engine_is_recorded_hashed_and_verified(tmp_path):
    root = _write(tmp_path / "m.bundle", _files(tmp_path))
    engine = tmp_path / "orin-nx-16gb_int8.engine"
    engine.write_bytes(b"\x00engine" * 50)
    bundle = open_bundle(root)
    bundle.add_engine("orin-nx-16gb", engine, {"key": {"precision": "int8"}, "placement": {"dla_layers": 3}})
    again = open_bundle(root)
    (rec,) = again.device("orin-nx-16gb").engines
    assert rec["path"] == "engines/orin-nx-16gb_int8.engine" and rec["placement"] == {"dla_layers": 3}
    assert (root / rec["path"]).read_bytes() == engine.read_bytes()
    engine.write_bytes(b"rebuilt")
    again.add_engine("orin-nx-16gb", engine, {"key": {"precision": "int8"}})
    assert len(open_bundle(root).device("orin-nx-16gb").engines) == 1  # a rebuild replaces, not appends
    (root / rec["path"]).write_bytes(b"tampered")
    with pytest.raises(BundleError, match="engines/orin-nx-16gb_int8.engine is corrupt"):
        open_bundle(root)
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]


def test_archive_round_trip_and_engine_repack(tmp_path):
    out = _write(tmp_path / "m.bundle.tar", _files(tmp_path), archive=True)
    assert out.is_file()
    bundle = open_bundle(out)
    assert bundle.devices == ["orin-nx-16gb", "orin-nano-8gb"]
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"engine")
    bundle.add_engine("orin-nano-8gb", engine, {"key": {}})
    assert open_bundle(out).device("orin-nano-8gb").engines[0]["path"] == "engines/e.engine"


def test_archive_with_unsafe_member_is_refused(tmp_path):
    import tarfile

    evil = tmp_path / "evil.tar"
    payload = tmp_path / "p"
    payload.write_text("x")
    with tarfile.open(evil, "w") as tar:
        tar.add(payload, arcname="../escape")
    with pytest.raises(BundleError, match="unsafe member"):
        open_bundle(evil)
    assert not (tmp_path.parent / "escape").exists()
