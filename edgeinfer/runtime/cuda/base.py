"""The one small CUDA interface the runtime uses, whatever binding provides it.

Host memory is always a numpy view of pinned (page-locked) memory; device memory is an integer
device pointer. Two implementations: :mod:`.cudapython` (``cuda.bindings``, preferred) and
:mod:`.pycuda_impl` (pycuda, the binding most JetPack images carry). Pick one with
:func:`edgeinfer.runtime.cuda.get_cuda`.

Kernel signatures are strings of argument kinds: ``P`` pointer, ``i`` int32, ``f`` float32,
e.g. ``"PPiif"``; both implementations launch the same CUDA C source.

Example:
    >>> KERNEL_ARG_KINDS
    ('P', 'i', 'f')
"""
from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from ...errors import BackendError

KERNEL_ARG_KINDS = ("P", "i", "f")
_PINNED: Dict[int, Tuple[int, Optional[int]]] = {}  # start address -> (bytes, device address if mapped) per live pinned allocation


def is_pinned(array: np.ndarray) -> bool:
    """Whether ``array`` starts at a live pinned allocation of this process and fits in it.

    Frame slots are whole allocations, so the start address is enough: a pinned frame can be
    copied to the device asynchronously, straight from where capture decoded it.

    Example:
        >>> is_pinned(np.zeros(4, np.uint8))
        False
    """
    entry = _PINNED.get(int(array.__array_interface__["data"][0]))
    return entry is not None and array.nbytes <= entry[0] and array.flags.c_contiguous


def mapped_device_ptr(array: np.ndarray) -> Optional[int]:
    """The device address of ``array`` when it is a whole mapped (zero-copy) pinned allocation, else None."""
    entry = _PINNED.get(int(array.__array_interface__["data"][0]))
    if entry is None or entry[1] is None or array.nbytes > entry[0] or not array.flags.c_contiguous:
        return None
    return int(entry[1])


class HostBuffer:
    """Pinned host memory seen as a numpy array; ``device_ptr`` is set for mapped (zero-copy) memory."""

    def __init__(self, array: np.ndarray, *, device_ptr: Optional[int], owner: Any, release: Any) -> None:
        self.array = array
        self.device_ptr = device_ptr
        self._owner = owner  # keeps the allocation alive as long as the view is in use
        self._release = release
        _PINNED[self.host_ptr] = (self.nbytes, None if device_ptr is None else int(device_ptr))

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    @property
    def host_ptr(self) -> int:
        return int(self.array.ctypes.data)

    def free(self) -> None:
        """Release the pinned memory; the numpy view must not be used afterwards."""
        if self._release is not None:
            release, self._release = self._release, None
            _PINNED.pop(self.host_ptr, None)
            release()


class DeviceBuffer:
    """Device memory: ``ptr`` is the device address, ``nbytes`` its size."""

    def __init__(self, ptr: int, nbytes: int, *, owner: Any, release: Any) -> None:
        self.ptr = int(ptr)
        self.nbytes = int(nbytes)
        self._owner = owner
        self._release = release

    def free(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release()


class CudaApi(ABC):
    """Streams, events, pinned/device/mapped memory, async copies, NVRTC-style kernels, graphs."""

    name = "abstract"

    @abstractmethod
    def activate(self) -> contextlib.AbstractContextManager:
        """Context manager making this binding's CUDA context current on the calling thread."""

    @abstractmethod
    def device_info(self) -> Dict[str, Any]:
        """``{"name", "compute_capability": (major, minor), "integrated": bool}`` of the device."""

    @abstractmethod
    def host_empty(self, shape: Sequence[int], dtype: Any, *, mapped: bool = False) -> HostBuffer:
        """Pinned host array; ``mapped`` also maps it into the device address space (zero-copy)."""

    @abstractmethod
    def device_empty(self, nbytes: int) -> DeviceBuffer:
        """Device allocation of ``nbytes`` (at least 1)."""

    @abstractmethod
    def create_stream(self) -> Any:
        """A non-blocking stream; :meth:`stream_handle` gives the integer TensorRT wants."""

    @abstractmethod
    def stream_handle(self, stream: Any) -> int: ...

    @abstractmethod
    def synchronize(self, stream: Any) -> None: ...

    @abstractmethod
    def create_event(self, *, timing: bool = False) -> Any: ...

    @abstractmethod
    def record(self, event: Any, stream: Any) -> None: ...

    @abstractmethod
    def event_synchronize(self, event: Any) -> None: ...

    @abstractmethod
    def event_done(self, event: Any) -> bool:
        """True once all work before the event's record point has finished (non-blocking)."""

    @abstractmethod
    def elapsed_ms(self, start: Any, end: Any) -> float: ...

    @abstractmethod
    def stream_wait_event(self, stream: Any, event: Any) -> None:
        """Make future work on ``stream`` wait for ``event`` (cross-stream ordering, no host sync)."""

    @abstractmethod
    def copy_htod_async(self, dst_ptr: int, src: np.ndarray, stream: Any) -> None:
        """Copy the pinned host array ``src`` (all of it) to device address ``dst_ptr``."""

    def copy_htod_2d_async(self, dst_ptr: int, dst_pitch: int, src: np.ndarray, src_pitch: int, width: int,
                           height: int, stream: Any) -> None:
        """Copy ``height`` rows of ``width`` bytes from the pinned, contiguous host array ``src`` (its first
        byte is the first row's; rows ``src_pitch`` bytes apart) to the device (rows ``dst_pitch`` apart):
        one strided DMA. Implementations override this."""
        raise BackendError(f"{self.name} has no strided 2-D copy", hint="use cuda-python or pycuda")

    @abstractmethod
    def copy_dtoh_async(self, dst: np.ndarray, src_ptr: int, stream: Any) -> None:
        """Copy ``dst.nbytes`` from device address ``src_ptr`` into the pinned host array ``dst``."""

    @abstractmethod
    def copy_dtod_async(self, dst_ptr: int, src_ptr: int, nbytes: int, stream: Any) -> None: ...

    @abstractmethod
    def copy_htod_pageable(self, dst_ptr: int, src: np.ndarray) -> None:
        """Synchronous copy from ordinary (pageable) numpy memory: the slow path, for comparison."""

    @abstractmethod
    def compile(self, source: str, name: str, signature: str) -> Any:
        """Compile CUDA C ``source`` for this device; return a launchable handle for kernel ``name``."""

    @abstractmethod
    def launch(self, kernel: Any, grid: Tuple[int, int, int], block: Tuple[int, int, int],
               args: Sequence[Any], stream: Any) -> None:
        """Launch ``kernel`` asynchronously on ``stream``; ``args`` follow the compile-time signature."""

    @abstractmethod
    def begin_capture(self, stream: Any) -> None:
        """Start recording work issued to ``stream`` into a CUDA graph."""

    @abstractmethod
    def end_capture(self, stream: Any) -> Any:
        """Stop recording; return an instantiated graph for :meth:`graph_launch`."""

    @abstractmethod
    def graph_launch(self, graph: Any, stream: Any) -> None: ...

    def end_capture_on_error(self, stream: Any) -> None:
        """End a capture whose recorded work failed: drop what was captured, leave ``stream``
        usable and clear the CUDA error, as trtexec does (TrtCudaGraph::endCaptureOnError in
        NVIDIA/TensorRT samples/common/sampleDevice.h). Never raises. Bindings override this
        to also reset the runtime's last error; this fallback only ends the capture."""
        try:
            self.destroy(self.end_capture(stream))
        except Exception:  # noqa: BLE001 - an invalidated capture ends with an error by design
            pass

    @abstractmethod
    def destroy(self, obj: Any) -> None:
        """Free a stream, event or graph made by this API (idempotent per object)."""

    @contextlib.contextmanager
    def timed(self, stream: Any) -> Iterator[Dict[str, float]]:
        """Time the work issued inside the block with device events: ``result["ms"]`` after exit."""
        start, end = self.create_event(timing=True), self.create_event(timing=True)
        result: Dict[str, float] = {}
        self.record(start, stream)
        try:
            yield result
        finally:
            self.record(end, stream)
            self.event_synchronize(end)
            result["ms"] = self.elapsed_ms(start, end)
            self.destroy(start)
            self.destroy(end)


def check_signature(signature: str) -> str:
    bad = [c for c in signature if c not in KERNEL_ARG_KINDS]
    if bad:
        from ...errors import InternalError

        raise InternalError(f"kernel signature {signature!r} has unknown kinds {bad}")
    return signature
