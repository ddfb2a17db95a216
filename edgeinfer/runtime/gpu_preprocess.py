"""GPU pre-processing: ONE CUDA kernel does bilinear resize + pad + BGR->RGB + normalise + HWC->CHW.

The uint8 frame is uploaded once (from a pinned staging slot) and the kernel writes float32 CHW
straight into the device input buffer of the backend. Sampling copies OpenCV's ``INTER_LINEAR``
(half-pixel centres, ``fx = (x + 0.5) * scale - 0.5``, edge clamping) and rounds to whole 0..255
levels before normalising, as ``cv2.resize`` does on uint8, so GPU and CPU agree within one
level (1/255 after the default scaling). Geometry is the CPU path's (:class:`LetterboxTransform`).
The same kernel source compiles through NVRTC (cuda-python) or pycuda's SourceModule.

On a discrete GPU the upload is the cost (a 1080p frame is 6.2 MB over PCIe), so when the vertical
scale is an exact integer factor k (1080 -> 360 rows: k = 3; 2160 -> 360: 6; 1440 -> 360: 4) only the
rows the kernel samples go over the bus: one strided 2-D copy of 1 row (k odd) or 2 rows (k even) in
every k (:func:`sampled_rows`), and the kernel maps each source row to its place in that compact copy.
With an exact factor the sampling positions are exact in float32, so the rows read are exactly the rows
copied; any other scale copies the whole frame.

Capture code that wants no host copy at all writes frames straight into :meth:`frame_slot`, or into
any pinned array (the pipeline's frame pool is pinned where CUDA is present): a pinned frame is
uploaded from where it lies, with no staging copy.
With ``zero_copy=True`` the slot is mapped pinned memory and the kernel reads the frame in place
(no upload at all): the natural mode on Jetson, where CPU and iGPU share DRAM; on a discrete GPU
the kernel then reads only the pixels it samples, over PCIe.

The kernel is compiled at load time (NVRTC, or nvcc through pycuda), which can fail on a device
whose CUDA toolkit is incomplete or off PATH (pycuda runs ``nvcc``; a systemd unit does not see
the login shell's PATH). :func:`make_gpu_preprocessor` then falls back to CPU pre-processing with
a warning instead of failing ``edgeinfer.load()``, unless GPU pre-processing was explicitly asked for.

Example:
    >>> KERNEL_SIGNATURE
    'PiiiPiiiiiifffffffffffiiii'
    >>> sampled_rows(1080, 360), sampled_rows(2160, 360), sampled_rows(720, 360), sampled_rows(1000, 360)
    ((1, 1, 3), (2, 2, 6), None, None)
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import BackendError, MissingDependencyError
from ..model.info import PreprocessSpec
from .cuda.base import CudaApi, DeviceBuffer, HostBuffer, is_pinned, mapped_device_ptr
from .preprocess import LetterboxTransform, Preprocessor, check_frame

log = logging.getLogger(__name__)
KERNEL_NAME = "letterbox_bgr_to_chw"
KERNEL_SIGNATURE = "PiiiPiiiiiiff" + "fff" * 3 + "i" + "iii"
BLOCK = (32, 8, 1)

KERNEL_SOURCE = r"""
extern "C" __global__ void letterbox_bgr_to_chw(
    const unsigned char* __restrict__ src, int src_h, int src_w, int src_pitch,
    float* __restrict__ dst, int dst_h, int dst_w, int top, int left, int nh, int nw,
    float inv_scale_x, float inv_scale_y,
    float mul0, float mul1, float mul2, float add0, float add1, float add2,
    float pad0, float pad1, float pad2, int swap_rb, int row0, int row_run, int row_step)
{
    /* source row r is at row ((r - row0) / row_step) * row_run + (r - row0) % row_step of src: the whole
       frame when (row0, row_run, row_step) = (0, 1, 1), else the compact copy of the sampled rows */
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dst_w || y >= dst_h) return;
    size_t plane = (size_t)dst_h * dst_w;
    size_t o = (size_t)y * dst_w + x;
    int rx = x - left, ry = y - top;
    if (rx < 0 || ry < 0 || rx >= nw || ry >= nh) {
        dst[o] = pad0; dst[o + plane] = pad1; dst[o + 2 * plane] = pad2;
        return;
    }
    /* OpenCV INTER_LINEAR source coordinates: half-pixel centres, clamped at the borders */
    float fx = (rx + 0.5f) * inv_scale_x - 0.5f;
    float fy = (ry + 0.5f) * inv_scale_y - 0.5f;
    int sx = (int)floorf(fx), sy = (int)floorf(fy);
    float ax = fx - sx, ay = fy - sy;
    if (sx < 0) { sx = 0; ax = 0.f; }
    if (sy < 0) { sy = 0; ay = 0.f; }
    if (sx >= src_w - 1) { sx = src_w - 1; ax = 0.f; }
    if (sy >= src_h - 1) { sy = src_h - 1; ay = 0.f; }
    int sx1 = min(sx + 1, src_w - 1), sy1 = min(sy + 1, src_h - 1);
    int d0 = sy - row0, d1 = sy1 - row0;
    const unsigned char* r0 = src + (size_t)((d0 / row_step) * row_run + d0 % row_step) * src_pitch;
    const unsigned char* r1 = src + (size_t)((d1 / row_step) * row_run + d1 % row_step) * src_pitch;
    float w00 = (1.f - ax) * (1.f - ay), w01 = ax * (1.f - ay), w10 = (1.f - ax) * ay, w11 = ax * ay;
    float v[3];
    /* taps of weight 0 are not read (adding 0 changes no sum): from mapped host memory every byte not
       read is a byte not sent over the bus; an exact 3x downscale (1920 -> 640) reads 1 pixel in 9 */
    #pragma unroll
    for (int c = 0; c < 3; ++c) {
        float s = w00 * r0[sx * 3 + c];
        if (ax > 0.f) s += w01 * r0[sx1 * 3 + c];
        if (ay > 0.f) {
            s += w10 * r1[sx * 3 + c];
            if (ax > 0.f) s += w11 * r1[sx1 * 3 + c];
        }
        v[c] = fminf(fmaxf(rintf(s), 0.f), 255.f);  /* whole levels, like cv2.resize on uint8 */
    }
    float c0 = swap_rb ? v[2] : v[0];
    float c2 = swap_rb ? v[0] : v[2];
    dst[o] = c0 * mul0 + add0;
    dst[o + plane] = v[1] * mul1 + add1;
    dst[o + 2 * plane] = c2 * mul2 + add2;
}
"""


def sampled_rows(src_h: int, nh: int) -> Optional[Tuple[int, int, int]]:
    """``(first, run, step)``: resizing ``src_h`` rows to ``nh`` reads ``run`` consecutive rows every
    ``step`` rows from ``first`` on (one group per output row), when ``src_h`` is an exact multiple
    ``k >= 3`` of ``nh``; None otherwise (every row may be read, the whole frame is uploaded).

    With INTER_LINEAR's half-pixel centres, output row y samples ``fy = k*y + (k-1)/2``: a whole row
    when k is odd, midway between two rows when k is even.
    """
    if nh <= 0 or src_h % nh or src_h // nh < 3:
        return None
    k = src_h // nh
    return ((k - 1) // 2, 1, k) if k % 2 else (k // 2 - 1, 2, k)


class GpuPreprocessor:
    """Letterbox a BGR uint8 frame on the GPU into a device float32 (3, H, W) buffer.

    Args:
        spec: the model's PreprocessSpec.
        input_hw: model input (height, width) (target size for dynamic models).
        cuda: the :class:`CudaApi` to use (its kernel is compiled once per instance).
        dynamic: stride-aligned rectangle per frame, as the CPU path.
        zero_copy: stage frames in mapped pinned memory the kernel reads directly (no H2D copy).

    Example:
        >>> from edgeinfer.runtime.cuda import get_cuda  # doctest: +SKIP
        >>> gpu = GpuPreprocessor(PreprocessSpec(), (640, 640), cuda=get_cuda())  # doctest: +SKIP
        >>> t = gpu(frame, dst_ptr=input_device_ptr, stream=stream)  # doctest: +SKIP
    """

    def __init__(self, spec: PreprocessSpec, input_hw: Sequence[int], *, cuda: CudaApi, dynamic: bool = False,
                 zero_copy: bool = False) -> None:
        self._cpu = Preprocessor(spec, input_hw, dynamic=dynamic)  # geometry + validated constants
        self.cuda = cuda
        self.spec = spec
        self._kernel = cuda.compile(KERNEL_SOURCE, KERNEL_NAME, KERNEL_SIGNATURE)
        self._slots: Dict[Tuple[int, int], Tuple[HostBuffer, Optional[DeviceBuffer]]] = {}
        # recorded after the last read of a staging slot: with several frames in flight on the stream (the
        # pipeline submits frame N+1 before N has run) the slot must not be refilled before the GPU read it
        self._staged: Dict[Tuple[int, int], Any] = {}
        c = self._cpu
        self._consts = [float(v) for v in (*c._mul, *c._add, *c._pad)]
        self._swap = 1 if spec.color == "RGB" else 0
        self.zero_copy = bool(zero_copy)

    def geometry(self, src_hw: Sequence[int]) -> LetterboxTransform:
        return self._cpu.geometry(src_hw)

    def frame_slot(self, height: int, width: int) -> np.ndarray:
        """The pinned host array frames of this size are staged in; decode into it to skip a copy."""
        return self._slot(int(height), int(width))[0].array

    def _slot(self, height: int, width: int) -> Tuple[HostBuffer, Optional[DeviceBuffer]]:
        slot = self._slots.get((height, width))
        if slot is None:
            host = self.cuda.host_empty((height, width, 3), np.uint8, mapped=self.zero_copy)
            dev = None if self.zero_copy else self.cuda.device_empty(host.nbytes)
            slot = self._slots[(height, width)] = (host, dev)
        return slot

    def __call__(self, frame: np.ndarray, *, dst_ptr: int, stream: Any) -> LetterboxTransform:
        """Stage + upload ``frame`` and launch the kernel on ``stream`` (asynchronous: sync before reading)."""
        frame = check_frame(frame)
        geo = self.geometry(frame.shape[:2])
        h0, w0 = geo.src_hw
        mapped = mapped_device_ptr(frame)
        if mapped is not None:  # a zero-copy capture slot (Jetson: shared DRAM): the kernel reads it in place
            self.launch_from_device(mapped, geo, dst_ptr=dst_ptr, stream=stream)
            return geo
        host, dev = self._slot(h0, w0)
        if dev is not None and frame is not host.array and is_pinned(frame):
            # already page-locked (a capture slot): DMA straight from it; the caller keeps it until the stream syncs
            self._upload_and_launch(frame, dev, geo, dst_ptr=dst_ptr, stream=stream)
            return geo
        if frame is not host.array:
            self._wait_staged((h0, w0))
            np.copyto(host.array, frame)
        if dev is None:  # zero-copy: the kernel reads the mapped host slot
            self.launch_from_device(int(host.device_ptr or 0), geo, dst_ptr=dst_ptr, stream=stream)
        else:
            self._upload_and_launch(host.array, dev, geo, dst_ptr=dst_ptr, stream=stream)
        self._mark_staged((h0, w0), stream)
        return geo

    def _wait_staged(self, key: Tuple[int, int]) -> None:
        event = self._staged.get(key)
        if event is not None:
            self.cuda.event_synchronize(event)

    def _mark_staged(self, key: Tuple[int, int], stream: Any) -> None:
        event = self._staged.get(key)
        if event is None:
            event = self._staged[key] = self.cuda.create_event()
        self.cuda.record(event, stream)

    def _upload_and_launch(self, frame: np.ndarray, dev: DeviceBuffer, geo: LetterboxTransform, *, dst_ptr: int,
                           stream: Any) -> None:
        """DMA the pinned ``frame`` (only its sampled rows when the scale allows) and run the kernel on it."""
        rows = sampled_rows(geo.src_hw[0], geo.resized_hw[0])
        if rows is None:
            self.cuda.copy_htod_async(dev.ptr, frame, stream)
            self.launch_from_device(dev.ptr, geo, dst_ptr=dst_ptr, stream=stream)
            return
        first, run, step = rows
        row_bytes = frame.shape[1] * 3
        self.cuda.copy_htod_2d_async(dev.ptr, run * row_bytes, frame[first:], step * row_bytes, run * row_bytes,
                                     geo.resized_hw[0], stream)
        self.launch_from_device(dev.ptr, geo, dst_ptr=dst_ptr, stream=stream, rows=rows)

    def launch_from_device(self, src_ptr: int, geo: LetterboxTransform, *, dst_ptr: int, stream: Any,
                           rows: Tuple[int, int, int] = (0, 1, 1)) -> None:
        """Run the kernel on a frame already on the device (packed HxWx3 uint8 at ``src_ptr``; with ``rows``
        from :func:`sampled_rows`, only those rows, packed)."""
        h0, w0 = geo.src_hw
        th, tw = geo.dst_hw
        nh, nw = geo.resized_hw
        args = [src_ptr, h0, w0, w0 * 3, dst_ptr, th, tw, geo.pad_top, geo.pad_left, nh, nw,
                w0 / nw, h0 / nh, *self._consts, self._swap, *rows]
        grid = ((tw + BLOCK[0] - 1) // BLOCK[0], (th + BLOCK[1] - 1) // BLOCK[1], 1)
        self.cuda.launch(self._kernel, grid, BLOCK, args, stream)

    def close(self) -> None:
        """Free the staging slots (pinned host + device) and their events."""
        with self.cuda.activate():
            for event in self._staged.values():
                self.cuda.event_synchronize(event)
                self.cuda.destroy(event)
            self._staged.clear()
            for host, dev in self._slots.values():
                host.free()
                if dev is not None:
                    dev.free()
            self._slots.clear()


def make_gpu_preprocessor(spec: PreprocessSpec, input_hw: Sequence[int], *, cuda: CudaApi,
                          required: bool = False) -> Optional[GpuPreprocessor]:
    """A :class:`GpuPreprocessor`, or None (with a warning) when its kernel cannot be compiled here
    and ``required`` is False: the caller then pre-processes on the CPU, which gives the same
    pixels, only slower. With ``required=True`` the compile error is raised.

    Example:
        >>> from edgeinfer.runtime.cuda import get_cuda                              # doctest: +SKIP
        >>> make_gpu_preprocessor(PreprocessSpec(), (640, 640), cuda=get_cuda())    # doctest: +SKIP
        <edgeinfer.runtime.gpu_preprocess.GpuPreprocessor object at ...>
    """
    try:
        return GpuPreprocessor(spec, input_hw, cuda=cuda)
    except (BackendError, MissingDependencyError) as exc:
        if required:
            raise
        log.warning("GPU pre-processing is off, pre-processing on the CPU instead: the kernel does not compile "
                    "here (%s). Fix: %s", exc.message, exc.hint or "check the CUDA toolkit (nvcc/NVRTC)")
        return None
