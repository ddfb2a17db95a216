"""`edgeinfer doctor` against fixture trees: a JetPack 5 Xavier NX, a JetPack 6.2 Orin NX 16GB, a plain host."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from edgeinfer._deps import is_available
from edgeinfer.doctor import FAIL, OK, SKIP, WARN, run_doctor

FIXTURES = Path(__file__).resolve().parent / "fixtures"
JP5_XAVIER = FIXTURES / "jp5-xavier-nx"
JP6_ORIN = FIXTURES / "jp6-orin-nx-16gb"
HOST = FIXTURES / "x86-host"


def doctor(root, tmp_path, **kw):
    return run_doctor(root=root, spool_dir=tmp_path / "spool", engine_cache_dir=tmp_path / "engines", **kw)


@pytest.fixture()
def fake_tensorrt(tmp_path, monkeypatch):
    """A stand-in `tensorrt` package (only __version__): JetPack's bindings do not exist on this host."""

    def install(version):
        pkg = tmp_path / "fake_site" / "tensorrt"
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text(f"__version__ = {version!r}\n")
        monkeypatch.syspath_prepend(str(pkg.parent))
        monkeypatch.delitem(sys.modules, "tensorrt", raising=False)

    yield install
    sys.modules.pop("tensorrt", None)


def test_plain_host(tmp_path):
    r = doctor(HOST, tmp_path)
    device = r.check("device")
    assert device.status == OK and "not a Jetson" in device.message and "Ubuntu 24.04.1 LTS" in device.message
    for name in ("jetpack", "dla", "power_mode", "clocks", "jtop"):
        assert r.check(name).status == SKIP, name
    assert r.check("tensorrt").status == (OK if is_available("tensorrt") else SKIP)
    assert r.check("onnxruntime").status == OK and "CPUExecutionProvider" in r.check("onnxruntime").message
    assert r.features["onnxruntime inference"] is True and r.features["csi cameras"] is False
    assert r.features["dla"] is False
    assert r.device is None and r.exit_code == 0


def test_jetpack5_xavier(tmp_path):
    r = doctor(JP5_XAVIER, tmp_path)
    assert r.device["profile"] == "xavier-nx"
    assert r.check("jetpack").message.startswith("L4T 35.4.1 = JetPack 5.1.2 (TensorRT 8.5.2")
    assert r.check("cuda").status == OK and "11.4" in r.check("cuda").message
    cudnn = r.check("cudnn")
    assert cudnn.status == OK and cudnn.data["version"] == "8.6.0.166"
    dla = r.check("dla")
    assert dla.status == OK and "NVDLA v1" in dla.message and dla.data["sysfs_cores"] == 2
    power = r.check("power_mode")
    assert power.status == OK and power.data == {"id": 2, "name": "MODE_15W_6CORE", "default_id": 2,
                                                 "source": "/var/lib/nvpmodel/status"}
    assert "jetson_clocks" in power.hint  # not MAXN: says how to get peak throughput
    assert r.check("clocks").status == WARN and "dynamic" in r.check("clocks").message
    # The host venv has no JetPack TensorRT bindings: on this "Jetson" that is a FAIL with the apt route.
    if not is_available("tensorrt"):
        trt = r.check("tensorrt")
        assert trt.status == FAIL and "libnvinfer 8.5.2" in trt.message
        assert "python3-libnvinfer" in trt.hint
        assert r.exit_code == 1
    # pip's OpenCV (no GStreamer) on a Jetson: a WARN that says how to get JetPack's back.
    opencv = r.check("opencv")
    if opencv.data.get("gstreamer") is False:
        assert opencv.status == WARN and "pip uninstall opencv-python" in opencv.hint


def test_jetpack6_orin_with_matching_tensorrt(tmp_path, fake_tensorrt):
    fake_tensorrt("10.3.0.30")
    r = doctor(JP6_ORIN, tmp_path)
    assert r.device["profile"] == "orin-nx-16gb" and r.device["jetpack"]["jetpack"] == "6.2"
    trt = r.check("tensorrt")
    assert trt.status == OK and trt.message == "TensorRT 10.3.0.30 imports (libnvinfer 10.3.0.30)"
    assert r.check("cudnn").data["version"] == "9.3.0.75"
    assert r.check("clocks").status == OK and r.check("clocks").data["pinned"] is True
    power = r.check("power_mode")
    assert power.status == OK and power.data["name"] == "MAXN" and power.hint is None
    assert "NVDLA v2" in r.check("dla").message


def test_jetpack6_orin_with_other_tensorrt_warns(tmp_path, fake_tensorrt):
    fake_tensorrt("10.7.0.23")
    trt = doctor(JP6_ORIN, tmp_path).check("tensorrt")
    assert trt.status == WARN and "JetPack 6.2 ships 10.3" in trt.message and "edgeinfer build" in trt.hint


def test_missing_dla_and_jtop_socket(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(JP6_ORIN, root)
    shutil.rmtree(root / "sys" / "bus" / "platform" / "devices" / "158c0000.nvdla1")
    r = doctor(root, tmp_path)
    assert r.check("dla").status == WARN and "sysfs shows 1" in r.check("dla").message
    jtop = r.check("jtop")
    assert jtop.status == WARN and "/run/jtop.sock" in jtop.hint
    (root / "run").mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(root / "run" / "jtop.sock"))
        jtop = doctor(root, tmp_path).check("jtop")
    finally:
        sock.close()
    assert jtop.data["socket_present"] is True
    assert jtop.status == (OK if is_available("jtop") else WARN)


def test_unknown_module_fails_with_hint(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(JP5_XAVIER, root)
    (root / "proc" / "device-tree" / "model").write_bytes(b"NVIDIA Jetson TX2\x00")
    r = doctor(root, tmp_path)
    assert r.check("device").status == FAIL and "TX2" in r.check("device").message
    assert r.check("jetpack").status == FAIL and r.exit_code == 1


def test_quick_mode_imports_nothing_heavy(tmp_path):
    code = (
        "import sys; from pathlib import Path; from edgeinfer.doctor import run_doctor;"
        f"r = run_doctor(root=Path({str(JP6_ORIN)!r}), quick=True, spool_dir=Path({str(tmp_path)!r}));"
        "heavy = [m for m in ('cv2', 'onnxruntime', 'tensorrt', 'pycuda', 'cuda', 'torch') if m in sys.modules];"
        "print(heavy, r.features['gstreamer sources'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] None"
