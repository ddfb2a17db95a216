"""ONNX Runtime backend: CPU everywhere, CUDA / TensorRT execution providers where installed.

Inputs and outputs go through IOBinding onto preallocated numpy arrays: the input buffer is the
array pre-processing writes into, and outputs are bound to preallocated arrays too (static shapes:
at start; dynamic shapes: from the second call with the same input shapes, using the first call's
outputs), so a call allocates no tensors on the Python side.

Example:
    >>> pick_providers("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])[0]
    ['CUDAExecutionProvider', 'CPUExecutionProvider']
    >>> pick_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    (['CPUExecutionProvider'], 'device=cpu requested')
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .._deps import require
from ..errors import BackendError, ConfigError
from ..model.info import TensorSpec
from .backend import Backend, concrete_shape, numpy_dtype

log = logging.getLogger(__name__)

_PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
DEVICES = ("auto",) + tuple(_PROVIDER)
MAX_SLOTS = 8  # I/O bindings are made on first use of a slot; a pipeline uses slot 0 plus a few


def pick_providers(device: str, available: Sequence[str]) -> Tuple[List[str], str]:
    """Execution providers for ``device`` given what this onnxruntime build offers, and why.

    ``auto`` takes CUDA when present (no engine build at start-up, unlike the TensorRT EP, which
    must be asked for explicitly), else CPU.
    """
    if device not in DEVICES:
        raise ConfigError(f"device {device!r} is not one of {', '.join(DEVICES)}", hint="use auto, cpu, cuda or tensorrt")
    avail = list(available)
    if device == "auto":
        if _PROVIDER["cuda"] in avail:
            return [_PROVIDER["cuda"], _PROVIDER["cpu"]], "CUDA execution provider is installed"
        return [_PROVIDER["cpu"]], "no GPU execution provider in this onnxruntime build (" + ", ".join(avail) + ")"
    wanted = _PROVIDER[device]
    if wanted not in avail:
        raise BackendError(f"onnxruntime here has no {wanted} (it has {', '.join(avail)})",
                           hint="install onnxruntime-gpu (on Jetson: the JetPack wheel from jetson-ai-lab), or use device='cpu'")
    chain = [wanted] + ([_PROVIDER["cuda"]] if device == "tensorrt" and _PROVIDER["cuda"] in avail else [])
    if wanted != _PROVIDER["cpu"]:
        chain.append(_PROVIDER["cpu"])  # CPU takes the ops the GPU providers do not implement
    return chain, f"device={device} requested"


def _spec_of(node: Any) -> TensorSpec:
    shape = [d if isinstance(d, int) and d > 0 else str(d or "dim") for d in node.shape]
    return TensorSpec(node.name, shape, numpy_dtype(node.type).name)


class OnnxRuntimeBackend(Backend):
    """Run an ONNX file with ONNX Runtime.

    Args:
        onnx_path: model file.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``tensorrt`` (execution provider).
        intra_op_threads: ONNX Runtime's intra-op thread count (0: its default, all cores).
        spin: let ONNX Runtime's worker threads busy-wait after each run (its default). Off here:
            on a small edge CPU the spinning threads steal the cores that pre/post-processing,
            capture and the sink need right after inference.

    Example:
        >>> be = OnnxRuntimeBackend("model.onnx", device="cpu", intra_op_threads=2)   # doctest: +SKIP
        >>> be.input_buffer()[...] = batch; outputs = be.infer()                      # doctest: +SKIP
    """

    name = "onnxruntime"

    def __init__(self, onnx_path: Union[str, Path], *, device: str = "auto", intra_op_threads: int = 0,
                 spin: bool = False) -> None:
        ort = require("onnxruntime", feature="the ONNX Runtime backend")
        path = Path(onnx_path)
        if not path.is_file():
            raise BackendError(f"ONNX file {path} not found", hint="check the path, or re-package the model")
        providers, why = pick_providers(device, ort.get_available_providers())
        opts = ort.SessionOptions()
        if int(intra_op_threads) < 0:
            raise ConfigError(f"intra_op_threads={intra_op_threads} is negative", hint="use 0 (default) or a thread count")
        opts.intra_op_num_threads = int(intra_op_threads)
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise BackendError(f"ONNX Runtime could not load {path.name}: {exc}",
                               hint="check the file with `edgeinfer inspect`, or re-export the model") from exc
        self._ort = ort
        self.inputs = [_spec_of(n) for n in self.session.get_inputs()]
        self.outputs = [_spec_of(n) for n in self.session.get_outputs()]
        used = self.session.get_providers()
        self.providers = used
        self.reason = f"ONNX Runtime {ort.__version__} with {used[0]} ({why})"
        # One I/O binding per slot, made on first use: slot 0 serves __call__/infer_batch, further slots let a
        # pipeline pre-process into one slot while ONNX Runtime runs another (run_with_iobinding releases the GIL).
        self._slots: Dict[int, _OrtSlot] = {}
        self._slot(0)
        log.info("%s", self.reason)

    def input_buffer(self, name: Optional[str] = None, *, shape: Optional[Sequence[int]] = None,
                     slot: int = 0) -> np.ndarray:
        return self._slot(slot).input_buffer(self._input_spec(name), shape)

    def _input_spec(self, name: Optional[str]) -> TensorSpec:
        if name is None:
            return self.inputs[0]
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise ConfigError(f"model has no input {name!r}", hint="inputs are: " + ", ".join(t.name for t in self.inputs))

    def infer(self, *, slot: int = 0) -> Dict[str, np.ndarray]:
        return self._slot(slot).infer()

    @property
    def slots(self) -> int:
        return MAX_SLOTS

    def _slot(self, slot: int) -> "_OrtSlot":
        entry = self._slots.get(slot)
        if entry is None:
            if self.session is None:
                raise BackendError("the ONNX Runtime backend is closed", hint="load the model again")
            if not 0 <= int(slot) < MAX_SLOTS:
                raise ConfigError(f"slot {slot} does not exist (0 to {MAX_SLOTS - 1})", hint="use a slot in that range")
            entry = self._slots[slot] = _OrtSlot(self)
        return entry

    def close(self) -> None:
        for entry in self._slots.values():
            entry.clear()
        self._slots.clear()
        self.session = None  # type: ignore[assignment]


class _OrtSlot:
    """One IOBinding with its preallocated input and output arrays.

    Outputs stay valid until the next ``infer`` of the same slot (a pipeline post-processes slot A
    while slot B runs).
    """

    def __init__(self, backend: OnnxRuntimeBackend) -> None:
        self._be = backend
        self._ort = backend._ort
        self.session = backend.session
        self._binding = self.session.io_binding()
        # per (input, shape): the array pre-processing writes and the OrtValue over it, made once. Making an
        # OrtValue per call (each time a dynamic shape came back) is what tracemalloc saw kept per frame.
        self._in_bufs: Dict[Tuple[str, Tuple[int, ...]], Tuple[np.ndarray, Any]] = {}
        self._bound_inputs: Dict[str, int] = {}
        self._last: Dict[str, Tuple[Any, np.ndarray]] = {}  # input -> (shape asked, buffer): the per-frame fast path
        self._rebinds = 0  # bumped on every input rebind; outputs are rebound when it moved
        self._bound_shapes: Dict[str, Tuple[int, ...]] = {}
        self._in_key: Tuple[Any, ...] = ()  # the bound input shapes, rebuilt on rebind only
        # dynamic outputs: per bound input shapes, arrays (+ OrtValues) ONNX Runtime writes into, taken from the
        # first run of those shapes; None where the output shape depends on the data (ORT allocates each run then)
        self._dyn_outs: Dict[Tuple[Any, ...], Optional[Tuple[Dict[str, np.ndarray], List[Any]]]] = {}
        self._outputs_at: Tuple[int, str] = (-1, "")  # (rebind count, "cpu" | "pre") the outputs are bound for
        self._out_bufs: Optional[Dict[str, np.ndarray]] = self._bind_static_outputs()

    @property
    def inputs(self) -> List[TensorSpec]:
        return self._be.inputs

    @property
    def outputs(self) -> List[TensorSpec]:
        return self._be.outputs

    def clear(self) -> None:
        self._in_bufs.clear()
        self._last.clear()
        self._dyn_outs.clear()
        self._out_bufs = None

    def _bind_static_outputs(self) -> Optional[Dict[str, np.ndarray]]:
        """Bind every output to a preallocated array when all output shapes are static."""
        if not all(t.is_static for t in self.outputs):
            for t in self.outputs:
                self._binding.bind_output(t.name, "cpu")
            return None
        bufs = {t.name: np.empty([int(d) for d in t.shape], numpy_dtype(t.dtype)) for t in self.outputs}
        self._out_values = [self._ort.OrtValue.ortvalue_from_numpy(arr) for arr in bufs.values()]
        for name, value in zip(bufs, self._out_values):
            self._binding.bind_ortvalue_output(name, value)
        return bufs

    def input_buffer(self, spec: TensorSpec, shape: Optional[Sequence[int]]) -> np.ndarray:
        last = self._last.get(spec.name)
        if last is not None and (last[0] is shape or last[0] == shape):  # same shape as the previous call
            return last[1]
        concrete = concrete_shape(spec, shape)
        key = (spec.name, concrete)
        entry = self._in_bufs.get(key)
        if entry is None:
            if len(self._in_bufs) > 16:  # a stream of ever-new dynamic shapes must not grow memory
                self._in_bufs.clear()
                self._bound_inputs.clear()
                self._last.clear()
                self._dyn_outs.clear()
            buf = np.zeros(concrete, numpy_dtype(spec.dtype))
            # an OrtValue over the numpy memory (no copy): later writes into buf are what ORT reads
            entry = self._in_bufs[key] = (buf, self._ort.OrtValue.ortvalue_from_numpy(buf))
        buf, value = entry
        if self._bound_inputs.get(spec.name) != id(buf):
            self._binding.bind_ortvalue_input(spec.name, value)
            self._bound_inputs[spec.name] = id(buf)
            self._bound_shapes[spec.name] = concrete
            self._in_key = tuple(sorted(self._bound_shapes.items()))
            self._rebinds += 1
        self._last[spec.name] = (shape, buf)
        return buf

    def infer(self) -> Dict[str, np.ndarray]:
        if len(self._bound_inputs) < len(self.inputs):
            missing = [t.name for t in self.inputs if t.name not in self._bound_inputs]
            raise BackendError(f"input(s) {missing} were never written",
                               hint="fill backend.input_buffer(name) before infer()")
        if self._out_bufs is not None:
            self._run()
            return self._out_bufs
        entry = self._dyn_outs.get(self._in_key, False)
        if entry:
            self._bind_outputs("pre", entry[1])
            try:
                self.session.run_with_iobinding(self._binding)
                return entry[0]
            except Exception:  # noqa: BLE001 - an output whose shape depends on the data: let ORT allocate
                self._dyn_outs[self._in_key] = entry = None
        self._bind_outputs("cpu", None)
        self._run()
        if entry is None:  # data-dependent shapes: ORT would reuse this run's allocation next time; rebind then
            self._outputs_at = (-1, "")
        values = self._binding.copy_outputs_to_cpu()
        outs = {t.name: v for t, v in zip(self.outputs, values)}
        if entry is False and all(isinstance(v, np.ndarray) and v.flags.c_contiguous for v in values):
            # these fresh arrays become the outputs for these input shapes from the next call on
            self._dyn_outs[self._in_key] = (outs, [self._ort.OrtValue.ortvalue_from_numpy(v) for v in values])
        return outs

    def _run(self) -> None:
        try:
            self.session.run_with_iobinding(self._binding)
        except Exception as exc:
            raise BackendError(f"ONNX Runtime inference failed: {exc}", hint="check the input shapes and dtypes") from exc

    def _bind_outputs(self, kind: str, values: Optional[List[Any]]) -> None:
        # "cpu": ORT allocates; it keeps reusing the first run's allocation, which has the wrong shape once the
        # input shape changes, so rebind after every input rebind. "pre": our arrays for these input shapes.
        # An int and a str compared per call; nothing built.
        if self._outputs_at[0] == self._rebinds and self._outputs_at[1] == kind:
            return
        self._binding.clear_binding_outputs()
        for i, t in enumerate(self.outputs):
            if values is None:
                self._binding.bind_output(t.name, "cpu")
            else:
                self._binding.bind_ortvalue_output(t.name, values[i])
        self._outputs_at = (self._rebinds, kind)
