"""What machine a benchmark ran on, recorded next to every figure (shared by the scripts here)."""
from __future__ import annotations

import os
import platform
from typing import Any, Dict


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info() -> Dict[str, Any]:
    """CPU model, core count, Python, platform and the load average when the run started."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    return {"host": platform.node(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_at_start": [round(v, 2) for v in load]}


def machine_line() -> str:
    """One line: host | CPU | cores | 1-minute load | Python."""
    m = machine_info()
    load = f"{m['loadavg_at_start'][0]:.2f}" if m["loadavg_at_start"] else "?"
    return f"{m['host']} | {m['cpu']} | {m['cores']} cores | load avg {load} | Python {m['python']}"
