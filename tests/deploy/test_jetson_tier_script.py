"""scripts/run_jetson_tier.sh off a Jetson: it must parse, refuse with one clear line and exit 2
(so nobody mistakes a host run for a Jetson result), and write no report folder."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(Path("/etc/nv_tegra_release").exists(), reason="this IS a Jetson: run the tier itself")
def test_tier_script_refuses_off_a_jetson(tmp_path):
    out = tmp_path / "report"
    result = subprocess.run(["bash", str(REPO / "scripts" / "run_jetson_tier.sh"), str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: /etc/nv_tegra_release not found: this is not a Jetson (the tier only runs on one)"]
    assert not any(out.iterdir())  # the folder is made first, but nothing is written into it
