"""Device-side execution plumbing shared by the TensorRT backend and its gpu-tier stand-in.

A :class:`DeviceRunner` owns, per *slot* (double-buffering), pinned host buffers and device
buffers for every I/O tensor, one stream, and an event; it binds the device addresses to an
*execution context* and runs ``H2D copies -> execute_async_v3 -> D2H copies -> event`` on the
stream. The context is anything with TensorRT's ``set_tensor_address(name, ptr)`` and
``execute_async_v3(stream_handle) -> bool``: a TensorRT ``IExecutionContext`` in production, a
CUDA-kernel stand-in in the gpu tier. Optional CUDA-graph capture replays the whole sequence.

Memory modes: ``staged`` = pinned host + device buffer + copies (discrete GPUs; Jetson when the
iGPU benefits from cached device memory); ``mapped`` = zero-copy pinned memory mapped into the
device address space, bound directly (Jetson: CPU and iGPU share DRAM, so no copy at all).

CUDA graphs: an engine may contain work that is illegal under stream capture, so capture is
tried the way trtexec does it (samples/common/sampleInference.cpp in NVIDIA/TensorRT): one
ordinary enqueue first, then capture; if ``execute_async_v3`` fails (or the capture ends
invalidated) the capture is ended and discarded, the CUDA error cleared, a warning logged, and
the runner carries on without graphs (:attr:`DeviceRunner.graph_failure` says why).

Example:
    >>> IoTensor("images", True, (1, 3, 320, 320), "float32").nbytes
    1228800
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import BackendError, ConfigError, EdgeInferError
from .cuda.base import CudaApi, DeviceBuffer, HostBuffer

log = logging.getLogger(__name__)

MEMORY_MODES = ("auto", "staged", "mapped")


@dataclass(frozen=True)
class IoTensor:
    """One engine I/O tensor at its allocation shape."""

    name: str
    is_input: bool
    shape: Tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


class _Slot:
    def __init__(self) -> None:
        self.host: Dict[str, HostBuffer] = {}
        self.device: Dict[str, DeviceBuffer] = {}
        self.event: Any = None
        self.graph: Any = None
        self.graph_skip_h2d: Optional[Tuple[str, ...]] = None
        self.pending = False


class DeviceRunner:
    """Buffers, stream, events and (optional) CUDA graphs around one execution context.

    Args:
        cuda: the CUDA layer.
        io: the engine's tensors at allocation shapes.
        context: object with ``set_tensor_address`` and ``execute_async_v3``.
        memory: ``staged`` or ``mapped`` (resolve ``auto`` before, see :func:`choose_memory_mode`).
        slots: 2 to double-buffer (fill slot B while slot A runs).
        cuda_graph: capture each slot's sequence once and replay it (static shapes only).
    """

    def __init__(self, cuda: CudaApi, io: Sequence[IoTensor], context: Any, *, memory: str = "staged",
                 slots: int = 1, cuda_graph: bool = False) -> None:
        if memory not in ("staged", "mapped"):
            raise ConfigError(f"memory mode {memory!r} is not a concrete mode", hint="use 'staged' or 'mapped'")
        self.cuda, self.io, self.context = cuda, list(io), context
        self.memory, self.cuda_graph = memory, bool(cuda_graph)
        self.graph_failure: Optional[str] = None  # why graphs were given up, once a capture failed
        with cuda.activate():
            self.stream = cuda.create_stream()
            self._slots: List[_Slot] = [self._allocate() for _ in range(max(1, int(slots)))]

    def _allocate(self) -> _Slot:
        slot = _Slot()
        mapped = self.memory == "mapped"
        for t in self.io:
            slot.host[t.name] = self.cuda.host_empty(t.shape, t.dtype, mapped=mapped)
            if not mapped:
                slot.device[t.name] = self.cuda.device_empty(t.nbytes)
        slot.event = self.cuda.create_event()
        return slot

    # ------------------------------------------------------------------ buffers
    def host(self, name: str, slot: int = 0) -> np.ndarray:
        """Pinned host array of tensor ``name`` in ``slot`` (write inputs here, read outputs here)."""
        return self._slots[slot].host[name].array

    def device_ptr(self, name: str, slot: int = 0) -> int:
        """The device address bound for ``name`` (GPU pre-processing writes inputs here)."""
        s = self._slots[slot]
        return s.device[name].ptr if name in s.device else int(s.host[name].device_ptr or 0)

    @property
    def slots(self) -> int:
        return len(self._slots)

    # ------------------------------------------------------------------ execution
    def _bind(self, s: _Slot) -> None:
        for t in self.io:
            ptr = s.device[t.name].ptr if t.name in s.device else s.host[t.name].device_ptr
            if not self.context.set_tensor_address(t.name, int(ptr)):
                raise BackendError(f"could not bind tensor {t.name!r}", hint="the engine's I/O names changed; rebuild it")

    def _enqueue(self, s: _Slot, skip_h2d: Tuple[str, ...]) -> None:
        cuda, stream = self.cuda, self.stream
        if self.memory == "staged":
            for t in self.io:
                if t.is_input and t.name not in skip_h2d:
                    cuda.copy_htod_async(s.device[t.name].ptr, s.host[t.name].array, stream)
        if not self.context.execute_async_v3(cuda.stream_handle(stream)):
            raise BackendError("TensorRT execution failed (execute_async_v3 returned False)",
                               hint="run with logging at DEBUG to see TensorRT's message")
        if self.memory == "staged":
            for t in self.io:
                if not t.is_input:
                    cuda.copy_dtoh_async(s.host[t.name].array, s.device[t.name].ptr, stream)

    def submit(self, slot: int = 0, *, skip_h2d: Sequence[str] = ()) -> None:
        """Enqueue slot ``slot``'s copies and execution; returns at once (use :meth:`wait`).

        ``skip_h2d`` names inputs already written on the device (GPU pre-processing).
        """
        s = self._slots[slot]
        skip = tuple(skip_h2d)
        with self.cuda.activate():
            self._bind(s)  # addresses per slot: one context serves every slot in turn
            if self.cuda_graph and (s.graph is None or s.graph_skip_h2d != skip):
                self._capture(s, skip)  # on failure: graphs off, and this call runs uncaptured below
            if self.cuda_graph:
                self.cuda.graph_launch(s.graph, self.stream)
            else:
                self._enqueue(s, skip)
            self.cuda.record(s.event, self.stream)
        s.pending = True

    def _capture(self, s: _Slot, skip: Tuple[str, ...]) -> None:
        # TensorRT does lazy set-up on its first enqueue, which must not land inside a capture;
        # a failure of this ordinary enqueue is a real failure and propagates.
        self._enqueue(s, skip)
        self.cuda.synchronize(self.stream)
        if s.graph is not None:
            self.cuda.destroy(s.graph)
            s.graph = None
        self.cuda.begin_capture(self.stream)
        try:
            self._enqueue(s, skip)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the stream must leave capture mode
            self.cuda.end_capture_on_error(self.stream)
            self._give_up_graphs(getattr(exc, "message", None) or str(exc))
            return
        try:
            graph = self.cuda.end_capture(self.stream)
        except EdgeInferError as exc:  # invalidated by an illegal call inside, or not instantiable
            self.cuda.end_capture_on_error(self.stream)
            self._give_up_graphs(exc.message)
            return
        s.graph, s.graph_skip_h2d = graph, skip

    def _give_up_graphs(self, why: str) -> None:
        self.cuda_graph, self.graph_failure = False, why
        for slot in self._slots:
            self.cuda.destroy(slot.graph)
            slot.graph = None
        log.warning("CUDA graph capture failed (%s): running without CUDA graphs, as trtexec does for "
                    "--useCudaGraph", why)

    def wait(self, slot: int = 0) -> Dict[str, np.ndarray]:
        """Block until slot ``slot`` is done; its output arrays by name."""
        s = self._slots[slot]
        if s.pending:
            with self.cuda.activate():
                self.cuda.event_synchronize(s.event)
            s.pending = False
        return {t.name: s.host[t.name].array for t in self.io if not t.is_input}

    def ready(self, slot: int = 0) -> bool:
        """Non-blocking: has slot ``slot`` finished?"""
        s = self._slots[slot]
        return (not s.pending) or self.cuda.event_done(s.event)

    def run(self, slot: int = 0) -> Dict[str, np.ndarray]:
        self.submit(slot)
        return self.wait(slot)

    def close(self) -> None:
        """Wait for pending work, then free graphs, events, buffers and the stream."""
        if not self._slots:
            return
        with self.cuda.activate():
            self.cuda.synchronize(self.stream)
            for s in self._slots:
                self.cuda.destroy(s.graph)
                self.cuda.destroy(s.event)
                for buf in list(s.host.values()) + list(s.device.values()):
                    buf.free()
            self.cuda.destroy(self.stream)
        self._slots = []


def choose_memory_mode(memory: str, *, integrated: bool, measure: Any = None) -> Tuple[str, str]:
    """Resolve ``memory`` to ("staged"|"mapped", reason).

    ``auto``: staged on discrete GPUs (mapped memory would cross PCIe on every kernel read);
    on Jetson (integrated) ``measure(mode) -> ms`` is called for both and the faster is kept.

    Example:
        >>> choose_memory_mode("auto", integrated=False)
        ('staged', 'discrete GPU: pinned staging + device buffers')
        >>> choose_memory_mode("auto", integrated=True, measure={"staged": 2.0, "mapped": 1.5}.get)[0]
        'mapped'
    """
    if memory not in MEMORY_MODES:
        raise ConfigError(f"memory={memory!r} is not one of {MEMORY_MODES}", hint="use auto, staged or mapped")
    if memory != "auto":
        return memory, f"memory={memory} requested"
    if not integrated or measure is None:
        return "staged", "discrete GPU: pinned staging + device buffers"
    staged_ms, mapped_ms = float(measure("staged")), float(measure("mapped"))
    mode = "mapped" if mapped_ms < staged_ms else "staged"
    return mode, f"measured on this Jetson: staged {staged_ms:.3f} ms, mapped {mapped_ms:.3f} ms -> {mode}"


def measure_ms(cuda: CudaApi, io: Sequence[IoTensor], context: Any, mode: str, *, cuda_graph: bool,
               runs: int = 20) -> Tuple[float, Optional[str]]:
    """(median ms of one inference in memory ``mode``, why CUDA-graph capture failed or None)."""
    runner = DeviceRunner(cuda, io, context, memory=mode, cuda_graph=cuda_graph)
    try:
        times = []
        for _ in range(runs + 3):
            with cuda.activate(), cuda.timed(runner.stream) as t:
                runner.submit(0)
            times.append(t["ms"])
        return float(np.median(times[3:])), runner.graph_failure
    finally:
        runner.close()


def plan_execution(cuda: CudaApi, io: Sequence[IoTensor], context: Any, *, memory: str, cuda_graph: bool,
                   dla_core: Optional[int]) -> Tuple[str, bool, str]:
    """(memory mode, whether to use CUDA graphs, reason) for an engine's execution context.

    Never captures a DLA engine: DLA work cannot go into a CUDA graph (NVIDIA/TensorRT#3524,
    Orin, trtexec ``--useDLACore`` with ``--useCudaGraph``). A graph that cannot be captured
    while ``memory="auto"`` measures both modes on a Jetson turns graphs off instead of failing
    the load.
    """
    note = ""
    if cuda_graph and dla_core is not None:
        cuda_graph, note = False, "; CUDA graph off (DLA engines cannot be captured)"
    failures: List[str] = []

    def measure(mode: str) -> float:
        ms, failure = measure_ms(cuda, io, context, mode, cuda_graph=cuda_graph and not failures)
        failures.extend([failure] if failure else [])
        return ms

    mode, why = choose_memory_mode(memory, integrated=bool(cuda.device_info().get("integrated")), measure=measure)
    if cuda_graph and failures:  # found while measuring: do not capture (and fail) again
        cuda_graph, note = False, f"; CUDA graph off (capture failed: {failures[0]})"
    return mode, cuda_graph, why + note
