#!/usr/bin/env python3
"""Benchmark (b): GPU pre-processing (one kernel, upload included) vs the CPU path, 1920x1080 -> 640.

Times per frame (median of N, after warm-up), on the same frames, in one run:
  cpu            Preprocessor (cv2.resize INTER_LINEAR + fused normalise/transpose) into a host buffer
  gpu+copy       frame from ordinary numpy memory: copy into the pinned slot, H2D, kernel, sync
  gpu pinned     frame already in the pinned slot (capture decodes into it): H2D, kernel, sync
  gpu zero-copy  frame in a mapped pinned slot: the kernel reads it in place (no H2D), sync
and the max |GPU - CPU| difference. Target: >= 10x (gpu vs cpu).
Usage: python scripts/bench_runtime_gpu_preprocess.py [--impl cuda-python|pycuda] [--frames 200]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgeinfer.model.info import PreprocessSpec  # noqa: E402
from edgeinfer.runtime.cuda import get_cuda  # noqa: E402
from edgeinfer.runtime.gpu_preprocess import GpuPreprocessor  # noqa: E402
from edgeinfer.runtime.preprocess import Preprocessor  # noqa: E402


def _median_ms(fn, frames, warm=5):
    for f in frames[:warm]:
        fn(f)
    times = []
    for f in frames:
        t = time.perf_counter()
        fn(f)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--impl", default=None)
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()
    import cv2

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8) for _ in range(8)]
    frames = [frames[i % 8] for i in range(args.frames)]
    spec = PreprocessSpec()
    cpu = Preprocessor(spec, (640, 640))
    host_out = np.empty((3, 640, 640), np.float32)
    cpu_ms = _median_ms(lambda f: cpu(f, out=host_out), frames)

    cuda = get_cuda(args.impl)
    gpu = GpuPreprocessor(spec, (640, 640), cuda=cuda)
    with cuda.activate():
        stream = cuda.create_stream()
        dev_out = cuda.device_empty(host_out.nbytes)
        check = cuda.host_empty((3, 640, 640), np.float32)

        def run_gpu(f):
            gpu(f, dst_ptr=dev_out.ptr, stream=stream)
            cuda.synchronize(stream)

        gpu_copy_ms = _median_ms(run_gpu, frames)
        slot = gpu.frame_slot(1080, 1920)
        slot[...] = frames[0]
        gpu_pinned_ms = _median_ms(run_gpu, [slot] * len(frames))
        with cuda.timed(stream) as kt:
            gpu.launch_from_device(gpu._slot(1080, 1920)[1].ptr, gpu.geometry((1080, 1920)), dst_ptr=dev_out.ptr,
                                   stream=stream)
        zc = GpuPreprocessor(spec, (640, 640), cuda=cuda, zero_copy=True)
        zslot = zc.frame_slot(1080, 1920)
        zslot[...] = frames[0]

        def run_zero_copy(f):
            zc(f, dst_ptr=dev_out.ptr, stream=stream)
            cuda.synchronize(stream)

        zc_ms = _median_ms(run_zero_copy, [zslot] * len(frames))
        zc_copy_ms = _median_ms(run_zero_copy, frames)
        run_zero_copy(frames[1])
        cuda.copy_dtoh_async(check.array, dev_out.ptr, stream)
        cuda.synchronize(stream)
        cpu(frames[1], out=host_out)
        zc_diff = float(np.abs(check.array - host_out).max())
        gpu(frames[0], dst_ptr=dev_out.ptr, stream=stream)
        cuda.copy_dtoh_async(check.array, dev_out.ptr, stream)
        cuda.synchronize(stream)
        cpu(frames[0], out=host_out)
        diff = float(np.abs(check.array - host_out).max())
    info = cuda.device_info()
    print(f"device: {info['name']}; binding {cuda.name}; cv2 {cv2.__version__} threads {cv2.getNumThreads()}; "
          f"CPU cores {os.cpu_count()}")
    print("1920x1080 BGR uint8 -> 3x640x640 float32 (letterbox, RGB, /255, CHW), median ms per frame")
    print(f"  cpu (cv2 + numpy)            {cpu_ms:8.3f} ms")
    print(f"  gpu incl. copy into pinned   {gpu_copy_ms:8.3f} ms   speed-up {cpu_ms / gpu_copy_ms:6.1f}x")
    print(f"  gpu from pinned frame slot   {gpu_pinned_ms:8.3f} ms   speed-up {cpu_ms / gpu_pinned_ms:6.1f}x")
    print(f"  gpu zero-copy, frame in slot {zc_ms:8.3f} ms   speed-up {cpu_ms / zc_ms:6.1f}x  (kernel reads mapped host memory)")
    print(f"  gpu zero-copy incl. copy     {zc_copy_ms:8.3f} ms   speed-up {cpu_ms / zc_copy_ms:6.1f}x")
    print(f"  kernel alone (device events) {kt['ms']:8.3f} ms")
    print(f"  max |gpu zero-copy - cpu| = {zc_diff:.6f}")
    print(f"  max |gpu - cpu| = {diff:.6f} (1/255 = {1 / 255:.6f})")


if __name__ == "__main__":
    main()
