#!/usr/bin/env python3
"""Benchmark (b): GPU pre-processing (one kernel, upload included) vs the CPU path, 1920x1080 -> 640.

Times per frame (median of N, after warm-up), on the same frames, in one run:
  cpu            Preprocessor (cv2.resize INTER_LINEAR + fused normalise/transpose) into a host buffer
  gpu+copy       frame from ordinary numpy memory: copy into the pinned slot, H2D, kernel, sync
  gpu pinned     frame already in the pinned slot (capture decodes into it): H2D, kernel, sync
  gpu zero-copy  frame in a mapped pinned slot: the kernel reads it in place (no H2D), sync
and the max |GPU - CPU| difference. Target: >= 10x (gpu vs cpu).

Then capture into frame slots, as the pipeline does it: a real 1920x1080 video (edgeinfer.demo.make_video) is
decoded with OpenCV's ``cap.read(image=slot)`` straight into (a) ordinary numpy slots, (b) pinned slots, (c) mapped
pinned slots, and each frame is pre-processed from where it was decoded: (a) on the CPU, and on the GPU from a
pageable frame (staging copy), (b) GPU with one DMA from the slot, (c) GPU kernel reading the slot in place.
Per path: decode ms, pre-processing ms and their sum, median per frame, with speed-ups against the CPU path.
There the GPU paths are synchronous (launch, then wait for the result): the latency of one frame.

Last, pipelined, as edgeinfer's pipeline runs it (the engine thread submits pre-processing and the engine on the
stream and goes on; a capture slot is reused only after the GPU has read it): frames are decoded into a ring of
3 pinned (or mapped) slots, each frame's GPU pre-processing is launched and an event recorded, and before the
decoder writes a slot again it waits for that slot's event. Per frame: the pre-processing the CPU pays (launch +
any wait for a slot), against the CPU path's whole pre-processing, and frames per second for decode + pre.
Usage: python scripts/bench_runtime_gpu_preprocess.py [--impl cuda-python|pycuda] [--frames 200] [--video-frames 60]
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
    ap.add_argument("--video-frames", type=int, default=60, help="frames of the 1080p video for the capture part (0: skip)")
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
    if args.video_frames > 0:
        capture_into_slots(cuda, cpu, args.video_frames)


def capture_into_slots(cuda, cpu, frames: int) -> None:
    """Decode a real 1080p video into slots of each kind and pre-process each frame from its slot."""
    import tempfile

    import cv2

    from edgeinfer.demo.video import make_video
    from edgeinfer.runtime.cuda.base import is_pinned, mapped_device_ptr

    tmp = tempfile.TemporaryDirectory()
    video = str(make_video(Path(tmp.name) / "shapes-1080p.mp4", frames=frames, size=(1920, 1080), seed=1))
    spec = PreprocessSpec()
    host_out = np.empty((3, 640, 640), np.float32)
    gpu = GpuPreprocessor(spec, (640, 640), cuda=cuda)
    rows = []
    with cuda.activate():
        stream = cuda.create_stream()
        dev_out = cuda.device_empty(host_out.nbytes)

        def on_gpu(f):
            gpu(f, dst_ptr=dev_out.ptr, stream=stream)
            cuda.synchronize(stream)

        def pinned(mapped):
            bufs = [cuda.host_empty((1080, 1920, 3), np.uint8, mapped=mapped) for _ in range(2)]
            return [b.array for b in bufs], bufs

        plain = [np.empty((1080, 1920, 3), np.uint8) for _ in range(2)]
        pin, pin_bufs = pinned(False)
        mapd, map_bufs = pinned(True)
        paths = [("cpu, ordinary slot", plain, lambda f: cpu(f, out=host_out)),
                 ("gpu, ordinary slot (staging copy)", plain, on_gpu),
                 ("gpu, pinned slot (one DMA)", pin, on_gpu),
                 ("gpu, mapped slot (kernel reads it)", mapd, on_gpu)]
        for name, slots, pre in paths:
            cap = cv2.VideoCapture(video, cv2.CAP_FFMPEG)
            dec, pro, in_place = [], [], 0
            for i in range(frames):
                slot = slots[i % len(slots)]
                t0 = time.perf_counter()
                ok, frame = cap.read(image=slot)
                t1 = time.perf_counter()
                if not ok:
                    break
                in_place += frame is slot
                pre(frame)
                t2 = time.perf_counter()
                if i >= 3:  # warm-up frames out
                    dec.append((t1 - t0) * 1e3)
                    pro.append((t2 - t1) * 1e3)
            cap.release()
            kind = "mapped" if mapped_device_ptr(slots[0]) is not None else "pinned" if is_pinned(slots[0]) else "pageable"
            rows.append((name, statistics.median(dec), statistics.median(pro), in_place, len(dec) + 3, kind))
        for b in pin_bufs + map_bufs:
            b.free()
        dev_out.free()
    gpu.close()
    base_pre, base_all = rows[0][2], rows[0][1] + rows[0][2]
    print(f"capture into frame slots: real 1920x1080 video, cap.read(image=slot), then pre-processing from the slot "
          f"(median ms per frame, {frames} frames)")
    for name, dec, pro, in_place, n, kind in rows:
        print(f"  {name:36s} decode {dec:7.3f}  pre {pro:7.3f} (x{base_pre / pro:5.1f})  decode+pre {dec + pro:7.3f} "
              f"(x{base_all / (dec + pro):4.2f})  decoded in place {in_place}/{n} ({kind})")
    pipelined_capture(cuda, cpu, video, frames, base_pre)
    tmp.cleanup()


def pipelined_capture(cuda, cpu, video: str, frames: int, cpu_pre_ms: float) -> None:
    """Decode into a ring of pinned/mapped slots, launch GPU pre-processing per frame, sync a slot only before
    reusing it; per frame the CPU-side cost of pre-processing and the decode + pre frame rate."""
    import cv2

    spec = PreprocessSpec()
    gpu = GpuPreprocessor(spec, (640, 640), cuda=cuda)
    host_out = np.empty((3, 640, 640), np.float32)
    print(f"pipelined capture: ring of 3 slots, launch per frame, wait for a slot's event before decoding into it "
          f"again (median ms per frame, {frames} frames)")
    with cuda.activate():
        stream = cuda.create_stream()
        outs = [cuda.device_empty(host_out.nbytes) for _ in range(3)]
        events = [cuda.create_event() for _ in range(3)]
        cap = cv2.VideoCapture(video, cv2.CAP_FFMPEG)
        t_all, n = time.perf_counter(), 0
        for _ in range(frames):  # the CPU path, decoding into ordinary memory as a CPU pipeline does
            ok, frame = cap.read()
            if not ok:
                break
            cpu(frame, out=host_out)
            n += 1
        cpu_fps = n / (time.perf_counter() - t_all)
        cap.release()
        print(f"  {'cpu, ordinary memory':36s} pre {cpu_pre_ms:7.3f} (x  1.0)  decode+pre {cpu_fps:6.1f} FPS")
        for mapped in (False, True):
            bufs = [cuda.host_empty((1080, 1920, 3), np.uint8, mapped=mapped) for _ in range(3)]
            cap = cv2.VideoCapture(video, cv2.CAP_FFMPEG)
            pre, pending, n = [], [False] * 3, 0
            t_all = time.perf_counter()
            for i in range(frames):
                k = i % 3
                t0 = time.perf_counter()
                if pending[k]:  # the GPU must be done with this slot before the decoder overwrites it
                    cuda.event_synchronize(events[k])
                waited = time.perf_counter() - t0
                ok, frame = cap.read(image=bufs[k].array)
                if not ok:
                    break
                t1 = time.perf_counter()
                gpu(frame, dst_ptr=outs[k].ptr, stream=stream)
                cuda.record(events[k], stream)
                pending[k] = True
                if i >= 3:
                    pre.append((time.perf_counter() - t1 + waited) * 1e3)
                n += 1
            cuda.synchronize(stream)
            fps = n / (time.perf_counter() - t_all)
            cap.release()
            for b in bufs:
                b.free()
            med = statistics.median(pre)
            name = "gpu, mapped slots (kernel reads them)" if mapped else "gpu, pinned slots (one DMA each)"
            print(f"  {name:36s} pre {med:7.3f} (x{cpu_pre_ms / med:5.1f})  decode+pre {fps:6.1f} FPS "
                  f"(x{fps / cpu_fps:4.2f})")
        for buf in outs:
            buf.free()
        for ev in events:
            cuda.destroy(ev)
    gpu.close()


if __name__ == "__main__":
    main()
