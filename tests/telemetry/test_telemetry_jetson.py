"""Jetson telemetry from a fake sysfs tree and tegrastats lines; 'not available' off-Jetson."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgeinfer.telemetry.jetson import JetsonTelemetry, parse_tegrastats, read_nvpmodel, read_sysfs

pytestmark = pytest.mark.timeout(60)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


@pytest.fixture()
def orin_root(tmp_path) -> Path:
    """The files an Orin NX on JetPack 6 exposes for power, thermals, GPU load and power mode."""
    hw = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    for n, (label, mv, ma) in enumerate([("VDD_IN", 5000, 1500), ("VDD_CPU_GPU_CV", 5000, 400), ("VDD_SOC", 5000, 300)], 1):
        _write(tmp_path, f"{hw}/in{n}_label", label)
        _write(tmp_path, f"{hw}/in{n}_input", str(mv))
        _write(tmp_path, f"{hw}/curr{n}_input", str(ma))
    _write(tmp_path, f"{hw}/in7_label", "Sum of shunt voltages")
    _write(tmp_path, f"{hw}/in7_input", "1")
    _write(tmp_path, f"{hw}/curr7_input", "1")
    for z, (name, milli) in enumerate([("cpu-thermal", 47500), ("gpu-thermal", 46000), ("cv0-thermal", -256000)]):
        _write(tmp_path, f"sys/class/thermal/thermal_zone{z}/type", name)
        _write(tmp_path, f"sys/class/thermal/thermal_zone{z}/temp", str(milli))
    _write(tmp_path, "sys/devices/platform/bus@0/17000000.gpu/load", "455")
    _write(tmp_path, "var/lib/nvpmodel/status", "pmode:0002 fmode:quiet")
    _write(tmp_path, "etc/nvpmodel.conf", "< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=2 NAME=15W >")
    return tmp_path


def test_sysfs_readers(orin_root):
    data = read_sysfs(str(orin_root))
    assert data["power_rails"] == {"VDD_IN": 7.5, "VDD_CPU_GPU_CV": 2.0, "VDD_SOC": 1.5}
    assert data["power_w"] == 7.5  # the board input rail is the total, not the sum of rails
    assert data["temperatures"] == {"cpu-thermal": 47.5, "gpu-thermal": 46.0}  # offline sensor skipped
    assert data["gpu_load"] == 45.5
    assert data["nvpmodel"] == {"id": 2, "name": "15W"}


def test_jetpack4_iio_rails(tmp_path):
    dev = "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    _write(tmp_path, f"{dev}/rail_name_0", "GPU")
    _write(tmp_path, f"{dev}/in_power0_input", "1200")
    _write(tmp_path, f"{dev}/rail_name_1", "CPU")
    _write(tmp_path, f"{dev}/in_power1_input", "800")
    data = read_sysfs(str(tmp_path))
    assert data["power_rails"] == {"GPU": 1.2, "CPU": 0.8} and data["power_w"] == 2.0
    assert read_nvpmodel(str(tmp_path)) is None


def test_auto_picks_sysfs_when_jtop_service_is_absent(orin_root, tmp_path):
    tel = JetsonTelemetry.auto(root=str(orin_root), jtop_socket=str(tmp_path / "no-jtop.sock"), allow_tegrastats=False)
    sample = tel.sample()
    assert tel.source == "sysfs" and sample["available"] and sample["power_w"] == 7.5


def test_off_jetson_is_not_available(tmp_path):
    tel = JetsonTelemetry.auto(root=str(tmp_path), jtop_socket=str(tmp_path / "no.sock"), allow_tegrastats=False)
    assert tel.source == "none" and tel.sample() == {"available": False, "source": "not available"}


def test_tegrastats_line_parsing():
    line = ("04-22-2026 10:00:01 RAM 3012/15655MB (lfb 2x4MB) CPU [12%@1510,5%@1510] EMC_FREQ 0% GR3D_FREQ 61% "
            "cpu@48.25C soc2@45.5C tj@49C VDD_IN 9874mW/9500mW VDD_CPU_GPU_CV 3100mW/2900mW VDD_SOC 1800mW/1750mW")
    data = parse_tegrastats(line)
    assert data["power_w"] == 9.874 and data["power_rails"]["VDD_SOC"] == 1.8
    assert data["gpu_load"] == 61.0 and data["temperatures"] == {"cpu": 48.25, "soc2": 45.5, "tj": 49.0}


def test_tegrastats_fallback_runs_the_tool_in_the_background(tmp_path, monkeypatch):
    """No jtop service, no readable rails: a (stand-in) tegrastats on PATH is started and parsed."""
    import time

    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "tegrastats"
    tool.write_text("#!/bin/sh\nwhile true; do echo 'RAM 1/7MB GR3D_FREQ 12% gpu@41.5C VDD_IN 6100mW/6000mW'; sleep 0.1; done\n")
    tool.chmod(0o755)
    release = tmp_path / "nv_tegra_release"
    release.write_text("# R36 (release), REVISION: 4.3\n")
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("EDGEINFER_TEGRA_RELEASE", str(release))
    root = tmp_path / "root"
    root.mkdir()
    tel = JetsonTelemetry.auto(root=str(root), jtop_socket=str(tmp_path / "none.sock"))
    try:
        assert tel.source == "tegrastats"
        deadline = time.time() + 10
        while not tel.sample().get("power_w") and time.time() < deadline:
            time.sleep(0.1)
        sample = tel.sample()
    finally:
        tel.close()
    assert sample["power_w"] == 6.1 and sample["gpu_load"] == 12.0 and sample["temperatures"] == {"gpu": 41.5}
