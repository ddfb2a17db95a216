"""Producer process for the kill -9 test: puts records n = start.. and prints durable watermarks.

Usage: python uplink_producer.py URL SPOOL_DIR START COUNT (forever|finish)
After every 25 records it calls flush() and prints "spooled <n>": every record up to n is on disk.
"finish" closes the uplink (final send) after COUNT records and prints "done".
"""
from __future__ import annotations

import sys
import time

from edgeinfer.uplink import Uplink


def main() -> None:
    url, spool, start, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    up = Uplink(url, spool_dir=spool, batch_size=20, backoff_initial=0.05, backoff_max=0.5, device_id="killme")
    for n in range(start, start + count):
        up.put({"source": f"cam{n % 3}", "n": n})
        if n % 25 == 24:
            if up.flush(10):
                print(f"spooled {n}", flush=True)
            time.sleep(0.01)
    if mode == "finish":
        up.close(timeout=30)
        print("done", flush=True)
    else:
        time.sleep(3600)  # wait to be killed


if __name__ == "__main__":
    main()
