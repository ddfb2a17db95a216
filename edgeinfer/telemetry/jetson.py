"""Jetson power, temperatures, GPU load and power mode: jtop → sysfs → tegrastats → "not available".

jetson-stats' ``jtop`` works only while its service runs (``/run/jtop.sock``) with a matching
client version (rbonghi/jetson_stats: ``jtop/jtop.py``, ``jtop/core/common.py``
``compare_versions``); when it does not, the same figures are read from sysfs
(INA3221 power monitors, thermal zones, GPU load, nvpmodel status) or from a background
``tegrastats``. Off-Jetson every sample says ``"not available"``. ``root`` is injectable so
tests can point the readers at a fake sysfs tree.

Example:
    >>> tel = JetsonTelemetry(source="none")
    >>> tel.sample()["source"]
    'not available'
    >>> parse_tegrastats("RAM 2/7 GR3D_FREQ 45% cpu@47.5C gpu@46C VDD_IN 5012mW/4900mW VDD_CPU_GPU_CV 900mW/880mW")["power_w"]
    5.012
"""
from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import subprocess
import threading
from typing import Any, Dict, Optional

from .._deps import is_available, on_jetson, require

log = logging.getLogger(__name__)

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0", "VDD_IN_TOTAL")  # the board-input rail, when the module has one


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _num(text: Optional[str]) -> Optional[float]:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _total(rails: Dict[str, float]) -> Optional[float]:
    if not rails:
        return None
    for name in TOTAL_RAILS:
        if name in rails:
            return rails[name]
    return sum(rails.values())


def read_sysfs(root: str = "/") -> Dict[str, Any]:
    """Power rails (W), temperatures (°C), GPU load (%) and nvpmodel from a (possibly fake) sysfs root."""
    j = lambda *p: os.path.join(root, *p)  # noqa: E731 - tiny path helper
    temps = {}
    for zone in sorted(glob.glob(j("sys", "class", "thermal", "thermal_zone*"))):
        name, value = _read(os.path.join(zone, "type")), _num(_read(os.path.join(zone, "temp")))
        if name and value is not None and value > -40000:  # -256 °C marks an offline sensor
            temps[name] = round(value / 1000.0, 2)
    rails: Dict[str, float] = {}
    # JetPack 5.1+/6: hwmon INA3221 (label, mV, mA)
    for hw in glob.glob(j("sys", "bus", "i2c", "drivers", "ina3221", "*", "hwmon", "hwmon*")):
        for label_path in glob.glob(os.path.join(hw, "in*_label")):
            n = re.search(r"in(\d+)_label$", label_path).group(1)
            mv, ma = _num(_read(os.path.join(hw, f"in{n}_input"))), _num(_read(os.path.join(hw, f"curr{n}_input")))
            label = _read(label_path)
            if label and mv is not None and ma is not None and not label.lower().startswith("sum of"):
                rails[label] = round(mv * ma / 1e6, 3)
    # JetPack 4: iio ina3221x (rail_name_N, in_power N in mW)
    for dev in glob.glob(j("sys", "bus", "i2c", "drivers", "ina3221x", "*", "iio:device*")):
        for name_path in glob.glob(os.path.join(dev, "rail_name_*")):
            n = name_path.rsplit("_", 1)[1]
            mw = _num(_read(os.path.join(dev, f"in_power{n}_input")))
            label = _read(name_path)
            if label and mw is not None:
                rails[label] = round(mw / 1000.0, 3)
    gpu_load = None
    for path in glob.glob(j("sys", "devices", "gpu.0", "load")) + glob.glob(j("sys", "devices", "platform", "*gpu*", "load")) \
            + glob.glob(j("sys", "devices", "platform", "bus@0", "*.gpu", "load")):
        value = _num(_read(path))
        if value is not None:
            gpu_load = round(value / 10.0, 1)  # the file is per-mille
            break
    return {"temperatures": temps, "power_rails": rails, "power_w": _total(rails), "gpu_load": gpu_load,
            "nvpmodel": read_nvpmodel(root)}


def read_nvpmodel(root: str = "/") -> Optional[Dict[str, Any]]:
    """Current power mode from /var/lib/nvpmodel/status, named through /etc/nvpmodel.conf."""
    status = _read(os.path.join(root, "var", "lib", "nvpmodel", "status"))
    if not status:
        return None
    match = re.search(r"pmode:(\d+)", status)
    if not match:
        return None
    mode_id = int(match.group(1))
    name = None
    conf = _read(os.path.join(root, "etc", "nvpmodel.conf")) or ""
    for m in re.finditer(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)", conf):
        if int(m.group(1)) == mode_id:
            name = m.group(2)
    return {"id": mode_id, "name": name}


def parse_tegrastats(line: str) -> Dict[str, Any]:
    """One tegrastats line → power rails (W, current value), temperatures (°C), GPU load (%)."""
    rails = {m.group(1): round(int(m.group(2)) / 1000.0, 3) for m in re.finditer(r"\b([A-Z][A-Z0-9_]+) (\d+)mW/(\d+)mW", line)}
    temps = {m.group(1): float(m.group(2)) for m in re.finditer(r"\b(\w+)@(-?[\d.]+)C\b", line) if float(m.group(2)) > -40}
    gpu = re.search(r"GR3D_FREQ (\d+)%", line)
    return {"power_rails": rails, "power_w": _total(rails), "temperatures": temps,
            "gpu_load": float(gpu.group(1)) if gpu else None}


class _Tegrastats:
    """A background ``tegrastats`` process; keeps the latest parsed line."""

    def __init__(self, exe: str, interval_ms: int = 1000) -> None:
        self._proc = subprocess.Popen([exe, "--interval", str(interval_ms)], stdout=subprocess.PIPE, text=True)
        self.latest: Dict[str, Any] = {}
        threading.Thread(target=self._read, name="tegrastats", daemon=True).start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            self.latest = parse_tegrastats(line)

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._proc.kill()


class JetsonTelemetry:
    """Samples one telemetry source; ``source`` is ``jtop``, ``sysfs``, ``tegrastats`` or ``none``."""

    def __init__(self, *, source: str, root: str = "/", jtop_client: Any = None, tegrastats: Optional[_Tegrastats] = None) -> None:
        self.source = source
        self.root = root
        self._jtop = jtop_client
        self._tegrastats = tegrastats

    @classmethod
    def auto(cls, *, root: str = "/", jtop_socket: str = "/run/jtop.sock", allow_tegrastats: bool = True) -> "JetsonTelemetry":
        """Pick the best available source; never raises."""
        if os.path.exists(jtop_socket) and is_available("jtop"):
            try:
                client = require("jtop", feature="Jetson telemetry").jtop()
                client.start()
                return cls(source="jtop", root=root, jtop_client=client)
            except Exception as exc:  # service down, version mismatch, permissions: fall back, say why
                log.info("jtop unavailable (%s); falling back to sysfs/tegrastats", exc)
        sysfs = read_sysfs(root)
        if sysfs["power_rails"] or (root != "/" or on_jetson()) and sysfs["temperatures"]:
            return cls(source="sysfs", root=root)
        exe = shutil.which("tegrastats")
        if allow_tegrastats and exe and on_jetson():
            try:
                return cls(source="tegrastats", root=root, tegrastats=_Tegrastats(exe))
            except OSError as exc:
                log.info("tegrastats did not start: %s", exc)
        return cls(source="none", root=root)

    def sample(self) -> Dict[str, Any]:
        """A JSON-ready snapshot: available, source, power_w, power_rails, temperatures, gpu_load, dla_load, nvpmodel."""
        if self.source == "jtop":
            return self._from_jtop()
        if self.source == "sysfs":
            data = read_sysfs(self.root)
        elif self.source == "tegrastats" and self._tegrastats is not None:
            data = dict(self._tegrastats.latest)
            data["nvpmodel"] = read_nvpmodel(self.root)
        else:
            return {"available": False, "source": "not available"}
        data.update({"available": True, "source": self.source, "dla_load": None})
        return data

    def _from_jtop(self) -> Dict[str, Any]:
        try:
            stats = dict(self._jtop.stats)
        except Exception as exc:  # the service can go away at run time
            return {"available": False, "source": "jtop", "error": repr(exc)}
        rails = {k[len("Power "):]: round(float(v) / 1000.0, 3) for k, v in stats.items()
                 if k.startswith("Power ") and k != "Power TOT" and isinstance(v, (int, float))}
        total = stats.get("Power TOT")
        temps = {k[len("Temp "):]: float(v) for k, v in stats.items() if k.startswith("Temp ") and isinstance(v, (int, float)) and v > -40}
        dla = {k: v for k, v in stats.items() if k.upper().startswith("DLA") or k.upper().startswith("NVDLA")}
        return {"available": True, "source": "jtop", "power_rails": rails,
                "power_w": round(float(total) / 1000.0, 3) if isinstance(total, (int, float)) else _total(rails),
                "temperatures": temps, "gpu_load": stats.get("GPU"), "dla_load": dla or None,
                "nvpmodel": {"id": None, "name": str(stats.get("nvp model") or stats.get("nvpmodel") or "") or None}}

    def close(self) -> None:
        if self._jtop is not None:
            try:
                self._jtop.close()
            except Exception as exc:  # closing telemetry must never fail a run
                log.debug("jtop close: %s", exc)
        if self._tegrastats is not None:
            self._tegrastats.close()
