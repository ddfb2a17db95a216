#!/usr/bin/env python3
"""Benchmark (a): H2D/D2H through the runtime's pinned preallocated buffers vs pageable numpy,
against the peak pinned bandwidth measured in the same run (64 MiB raw copies, best of 20).

Prints GB/s and ratios for each CUDA binding found. Target: our buffers >= 90% of peak.
Usage: python scripts/bench_runtime_transfer.py [--impl cuda-python|pycuda|all]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeinfer.runtime.cuda import get_cuda  # noqa: E402
from edgeinfer.runtime.device_runner import DeviceRunner, IoTensor  # noqa: E402

PEAK_BYTES = 64 << 20
# YOLO tensors at 640: input 1x3x640x640 f32 (4.9 MB); yolov8 output 1x84x8400 f32 (2.8 MB); batch 8 input 39 MB
CASES = [("input b1 3x640x640", (1, 3, 640, 640)), ("output b1 84x8400", (1, 84, 8400)),
         ("input b8 3x640x640", (8, 3, 640, 640))]


def _time(cuda, stream, fn, reps):
    times = []
    for _ in range(reps):
        with cuda.timed(stream) as t:
            fn()
        times.append(t["ms"])
    return min(times), statistics.median(times)


class _NullContext:
    def set_tensor_address(self, name, ptr):
        return True

    def execute_async_v3(self, handle):
        return True


def _case(cuda, impl, label, shape, dev, reps, peak_h2d, peak_d2h):
    """One tensor size through a DeviceRunner's pinned + device buffers, and from pageable numpy."""
    t_in, t_out = IoTensor("x", True, shape, "float32"), IoTensor("y", False, shape, "float32")
    runner = DeviceRunner(cuda, [t_in, t_out], _NullContext())  # copies only: measures the buffer path
    runner.host("x")[:] = 1.0
    nbytes, s = t_in.nbytes, runner.stream
    h2d_ms = _time(cuda, s, lambda: cuda.copy_htod_async(runner.device_ptr("x"), runner.host("x"), s), reps)[1]
    d2h_ms = _time(cuda, s, lambda: cuda.copy_dtoh_async(runner.host("y"), runner.device_ptr("y"), s), reps)[1]
    both_ms = _time(cuda, s, lambda: runner.submit(0), reps)[1]

    def ten_h2d():  # back to back, as a stream of frames runs: per-copy launch latency overlaps
        for _ in range(10):
            cuda.copy_htod_async(runner.device_ptr("x"), runner.host("x"), s)

    b2b_ms = _time(cuda, s, ten_h2d, reps)[1] / 10
    pageable = np.ones(shape, np.float32)
    times = []
    for _ in range(reps):  # synchronous copy: host clock
        t0 = time.perf_counter()
        cuda.copy_htod_pageable(dev.ptr, pageable)
        times.append((time.perf_counter() - t0) * 1e3)
    pg_ms = statistics.median(times)
    runner.close()
    gbs = lambda ms, n=nbytes: n / ms / 1e6  # noqa: E731 - bytes per ms -> GB/s
    return [(impl, label, "H2D ours", gbs(h2d_ms), gbs(h2d_ms) / peak_h2d),
            (impl, label, "H2D ours x10 back-to-back", gbs(b2b_ms), gbs(b2b_ms) / peak_h2d),
            (impl, label, "D2H ours", gbs(d2h_ms), gbs(d2h_ms) / peak_d2h),
            (impl, label, "H2D+D2H runner.submit", gbs(both_ms, 2 * nbytes), gbs(both_ms, 2 * nbytes) / ((peak_h2d + peak_d2h) / 2)),
            (impl, label, "H2D pageable numpy", gbs(pg_ms), gbs(pg_ms) / peak_h2d)]


def bench(impl: str, reps: int) -> list:
    cuda = get_cuda(impl)
    rows = []
    with cuda.activate():
        stream = cuda.create_stream()
        host = cuda.host_empty((PEAK_BYTES,), np.uint8)
        host.array[:] = 7
        dev = cuda.device_empty(PEAK_BYTES)
        peak_h2d = PEAK_BYTES / _time(cuda, stream, lambda: cuda.copy_htod_async(dev.ptr, host.array, stream), reps)[0] / 1e6
        peak_d2h = PEAK_BYTES / _time(cuda, stream, lambda: cuda.copy_dtoh_async(host.array, dev.ptr, stream), reps)[0] / 1e6
        rows.append((impl, "peak pinned 64 MiB", "H2D", peak_h2d, 1.0))
        rows.append((impl, "peak pinned 64 MiB", "D2H", peak_d2h, 1.0))
        for label, shape in CASES:
            rows.extend(_case(cuda, impl, label, shape, dev, reps, peak_h2d, peak_d2h))
        host.free()
        dev.free()
        cuda.destroy(stream)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--impl", default="all")
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    impls = ["cuda-python", "pycuda"] if args.impl == "all" else [args.impl]
    print(f"{'binding':12} {'buffer':22} {'path':26} {'GB/s':>8} {'of peak':>8}")
    for impl in impls:
        try:
            rows = bench(impl, args.reps)
        except Exception as exc:  # noqa: BLE001 - report and go on with the other binding
            print(f"{impl}: skipped ({exc})")
            continue
        for b, label, path, gbs, ratio in rows:
            print(f"{b:12} {label:22} {path:26} {gbs:8.1f} {ratio:8.1%}")
    info = get_cuda(impls[0]).device_info()
    print(f"device: {info['name']} (sm_{info['compute_capability'][0]}{info['compute_capability'][1]})")


if __name__ == "__main__":
    main()
