"""Which source rows the GPU letterbox reads: for an exact vertical factor only those rows are uploaded, so
they must be exactly the rows the kernel samples (checked here against the kernel's own float32 arithmetic,
on the CPU; the pixels themselves are compared with the CPU path in test_runtime_gpu.py on a CUDA host)."""
from __future__ import annotations

import numpy as np
import pytest

from edgeinfer.runtime.gpu_preprocess import sampled_rows


def _kernel_rows(src_h: int, nh: int) -> set:
    """The rows the kernel dereferences: floor(fy), and floor(fy)+1 when its weight is not 0 (float32, clamped)."""
    y = np.arange(nh, dtype=np.float32)
    fy = (y + np.float32(0.5)) * np.float32(src_h / nh) - np.float32(0.5)
    sy = np.floor(fy).astype(np.int64)
    ay = fy - sy
    ay[sy < 0], sy[sy < 0] = 0, 0
    top = sy >= src_h - 1
    ay[top], sy[top] = 0, src_h - 1
    return set(sy.tolist()) | set((sy[ay > 0] + 1).tolist())


@pytest.mark.parametrize("src_h,nh", [(1080, 360), (2160, 360), (1440, 360), (1080, 216), (3000, 600), (1920, 640)])
def test_sampled_rows_are_exactly_the_rows_the_kernel_reads(src_h, nh):
    first, run, step = sampled_rows(src_h, nh)
    copied = {first + i * step + j for i in range(nh) for j in range(run)}
    assert copied == _kernel_rows(src_h, nh)
    assert max(copied) < src_h and run < step  # fewer bytes than the frame, all inside it


@pytest.mark.parametrize("src_h,nh", [(720, 360), (360, 360), (1000, 360), (480, 640)])
def test_other_scales_upload_the_whole_frame(src_h, nh):
    assert sampled_rows(src_h, nh) is None
