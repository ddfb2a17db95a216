"""Producer for the SIGKILL-with-records-in-memory test: puts n = 0.. at ~1000/s, printing each accepted n.

Usage: python uplink_ring_producer.py URL SPOOL_DIR
The writer moves the ring to disk only every 2 s (flush_interval), so a kill always finds records
in memory; ring_size=1000 bounds them.
"""
from __future__ import annotations

import sys
import time

from edgeinfer.uplink import Uplink


def main() -> None:
    up = Uplink(sys.argv[1], spool_dir=sys.argv[2], flush_interval=2.0, flush_records=10**6, ring_size=1000,
                backoff_initial=30.0, device_id="ring")
    n = 0
    while True:
        if up.put({"source": "cam0", "n": n}):
            print(n, flush=True)
            n += 1
        time.sleep(0.001)


if __name__ == "__main__":
    main()
