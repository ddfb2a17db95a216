"""TensorRT backend: a thin layer over the version shim (edgeinfer.engine.trt_shim) and the CUDA layer.

All TensorRT calls of the runtime are in this module (name-based I/O, TensorRT 8.5+):
deserialize (with ``runtime.DLA_core`` set first for DLA engines, through the shim), execution
context, optimization-profile shapes, tensor addresses and ``execute_async_v3``. Buffers,
copies, stream, events, double-buffering and CUDA graphs are :class:`DeviceRunner`'s, which the
gpu tier exercises with a CUDA-kernel stand-in for the execution context.

Several instances (GPU, DLA0, DLA1) can run side by side: each has its own runtime, engine,
context, stream and buffers.

Example:
    >>> TensorRTBackend.name
    'tensorrt'
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .._deps import require
from ..errors import BackendError, BuildError, ConfigError
from ..model.info import TensorSpec
from .backend import Backend
from .cuda import get_cuda
from .device_runner import DeviceRunner, IoTensor, plan_execution

log = logging.getLogger(__name__)


def _trt_dtype_name(trt: Any, dtype: Any) -> str:
    return np.dtype(trt.nptype(dtype)).name


class TensorRTBackend(Backend):
    """Run a serialized TensorRT engine.

    Args:
        engine_path: the ``.engine`` / ``.plan`` file built for this device.
        dla_core: DLA core the engine was built for (None: GPU engine).
        memory: ``auto`` | ``staged`` | ``mapped`` (see :mod:`.device_runner`).
        cuda_graph: replay a captured CUDA graph per call (static shapes only).
        slots: buffer slots (each: its own pinned input/output buffers). Slot 0 serves ``Model.__call__``;
            a pipeline fills slot 2 while slot 1 runs (double-buffering, see ``Model.prepare``).
        cuda_impl: CUDA binding override (``cuda-python`` | ``pycuda``).
        input_shape: for dynamic engines, the shape to run (default: the profile's max).

    Example:
        >>> with TensorRTBackend("model.engine") as be:   # doctest: +SKIP
        ...     be.input_buffer()[...] = batch
        ...     outputs = be.infer()
    """

    name = "tensorrt"

    def __init__(self, engine_path: Union[str, Path], *, dla_core: Optional[int] = None, memory: str = "auto",
                 cuda_graph: bool = False, slots: int = 5, cuda_impl: Optional[str] = None,
                 input_shape: Optional[Sequence[int]] = None) -> None:
        from ..engine import trt_shim

        self._shim = trt_shim
        self.trt = require("tensorrt", feature="the TensorRT backend")
        trt_shim.check_supported(self.trt)
        self.cuda = get_cuda(cuda_impl)
        self.runner: Optional[DeviceRunner] = None
        path = Path(engine_path)
        if not path.is_file():
            raise BackendError(f"engine file {path} not found", hint="build it with `edgeinfer build BUNDLE`")
        with self.cuda.activate():
            self._logger = trt_shim.make_logger(self.trt)
            try:
                self.engine = trt_shim.deserialize(self.trt, self._logger, path.read_bytes(), dla_core=dla_core)
            except BuildError as exc:
                raise BackendError(f"TensorRT could not load {path.name}: {exc.message}",
                                   hint="the engine was built for another TensorRT/GPU; rebuild it with `edgeinfer build`") from exc
            self.context = self.engine.create_execution_context()
            io = self._io_tensors(input_shape)
        mode, cuda_graph, why = plan_execution(self.cuda, io, self.context, memory=memory, cuda_graph=cuda_graph,
                                               dla_core=dla_core)
        where = f"DLA{dla_core}" if dla_core is not None else "GPU"
        self._attach(io, self.context, memory=mode, slots=slots, cuda_graph=cuda_graph,
                     reason=f"TensorRT {self.trt.__version__} engine {path.name} on {where}; {why}")

    def _attach(self, io: Sequence[IoTensor], context: Any, *, memory: str, slots: int, cuda_graph: bool,
                reason: str) -> None:
        self.inputs = [TensorSpec(t.name, list(t.shape), t.dtype) for t in io if t.is_input]
        self.outputs = [TensorSpec(t.name, list(t.shape), t.dtype) for t in io if not t.is_input]
        self.runner = DeviceRunner(self.cuda, io, context, memory=memory, slots=slots, cuda_graph=cuda_graph)
        self.reason = reason
        log.info("%s", self.reason)

    @classmethod
    def from_context(cls, cuda: Any, io: Sequence[IoTensor], context: Any, *, memory: str = "staged",
                     slots: int = 1, cuda_graph: bool = False, reason: str = "") -> "TensorRTBackend":
        """The backend around an existing execution context (anything with ``set_tensor_address``
        and ``execute_async_v3``): an engine deserialized elsewhere, or the gpu tier's CUDA stand-in."""
        self = cls.__new__(cls)
        self.cuda, self.engine, self.context, self.runner = cuda, None, context, None
        self._attach(io, context, memory=memory, slots=slots, cuda_graph=cuda_graph,
                     reason=reason or "execution context supplied by the caller")
        return self

    def _io_tensors(self, input_shape: Optional[Sequence[int]]) -> List[IoTensor]:
        trt, engine, ctx = self.trt, self.engine, self.context
        result = []
        for name, mode, shape in self._shim.io_tensors(trt, engine):
            if mode == "input" and any(d < 0 for d in shape):
                shape = tuple(input_shape) if input_shape else tuple(engine.get_tensor_profile_shape(name, 0)[2])
                if not ctx.set_input_shape(name, shape):
                    raise BackendError(f"shape {shape} is outside the engine's profile for {name!r}",
                                       hint="rebuild the engine with a profile covering this shape")
            result.append((name, mode, shape))
        io = []
        for name, mode, shape in result:
            if mode == "output":
                shape = tuple(int(d) for d in ctx.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise BackendError(f"output {name!r} has data-dependent shape {shape}",
                                       hint="use a model whose output shapes follow from its input shapes")
            io.append(IoTensor(name, mode == "input", tuple(int(d) for d in shape),
                               _trt_dtype_name(trt, engine.get_tensor_dtype(name))))
        return io

    def input_buffer(self, name: Optional[str] = None, *, shape: Optional[Sequence[int]] = None,
                     slot: int = 0) -> np.ndarray:
        runner = self._live()
        name = name or self.inputs[0].name
        buf = runner.host(name, self._slot_index(slot))
        if shape is not None and tuple(shape) != buf.shape:
            raise ConfigError(f"the engine runs {name!r} at {buf.shape}, not {tuple(shape)}",
                              hint="create the backend with input_shape=... for another shape")
        return buf

    def input_device_ptr(self, name: Optional[str] = None, slot: int = 0) -> int:
        """Device address of an input (GPU pre-processing writes there; then ``infer(skip_h2d=...)``)."""
        return self._live().device_ptr(name or self.inputs[0].name, slot)

    def infer(self, *, skip_h2d: Sequence[str] = (), slot: int = 0) -> Dict[str, np.ndarray]:
        self.submit(skip_h2d=skip_h2d, slot=slot)
        return self.wait(slot=slot)

    def submit(self, *, skip_h2d: Sequence[str] = (), slot: int = 0) -> None:
        """Enqueue ``slot``'s copies and engine run on the stream and return at once (then :meth:`wait`).

        Slots submitted one after another run back to back on the one stream, so the GPU or DLA never
        waits for Python between them; each slot's buffers stay untouched until its own :meth:`wait`.
        """
        self._live().submit(self._slot_index(slot), skip_h2d=skip_h2d)

    def wait(self, *, slot: int = 0) -> Dict[str, np.ndarray]:
        """Block (GIL released) until ``slot`` is done; its output arrays by name."""
        return self._live().wait(self._slot_index(slot))

    @property
    def slots(self) -> int:
        return self._live().slots

    def _slot_index(self, slot: int) -> int:
        if not 0 <= slot < self._live().slots:
            raise ConfigError(f"slot {slot} does not exist (the engine has {self._live().slots} buffer slots)",
                              hint="create the backend with slots=N")
        return slot

    def _live(self) -> DeviceRunner:
        if self.runner is None:
            raise BackendError("the TensorRT backend is closed", hint="load the model again")
        return self.runner

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        with self.cuda.activate():
            # context before engine: TensorRT requires destruction in reverse creation order
            self.context = None
            self.engine = None

    def __del__(self) -> None:  # best effort when the user forgets close(); never raises
        try:
            if getattr(self, "runner", None) is not None:
                self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn CUDA down already
            pass

