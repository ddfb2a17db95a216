"""Restart safety: a producer killed with SIGKILL mid-flight loses nothing it had spooled."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from uplink_receivers import wait_until

from edgeinfer.uplink import read_spool_status

PRODUCER = Path(__file__).with_name("uplink_producer.py")
REPO = Path(__file__).resolve().parents[2]


def _spawn(url, spool, start, count, mode):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, str(PRODUCER), url, str(spool), str(start), str(count), mode],
                            stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.integration
def test_sigkill_mid_flight_then_restart_delivers_everything(tmp_path, receiver):
    receiver.mode = "slow"  # 50 ms per request: there is always a batch in flight
    spool = tmp_path / "spool"
    first = _spawn(receiver.url, spool, 0, 3000, "forever")
    watermark = -1
    for line in first.stdout:
        watermark = int(line.split()[1])
        if watermark >= 1500:
            break
    assert wait_until(lambda: receiver.requests > 3, 10)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL
    left = read_spool_status(spool)["queued"]
    assert left > 0  # the kill really interrupted delivery

    second = _spawn(receiver.url, spool, 100_000, 300, "finish")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0 and "done" in out
    receiver.mode = "ok"
    delivered = receiver.values()
    got = set(delivered)
    assert set(range(watermark + 1)) <= got  # everything spooled before the kill
    assert set(range(100_000, 100_300)) <= got  # everything from the restarted process
    assert got <= set(range(3000)) | set(range(100_000, 100_300))  # nothing invented
    assert len(delivered) == len(got)  # one key per record: keys are unique across the restart
    assert read_spool_status(spool)["queued"] == 0
