"""The Backend protocol: what every inference backend (TensorRT, ONNX Runtime) offers the Model.

A backend owns preallocated host buffers. Pre-processing writes into :meth:`Backend.input_buffer`;
:meth:`Backend.infer` runs the model and returns the output arrays *by name*; these are the
backend's own buffers, valid until the next ``infer`` (copy what you keep). Nothing is allocated
per call once a shape has been seen.

Backends with several buffer *slots* (:attr:`Backend.slots` > 1) keep one set of input and output
buffers per slot, so a pipeline can pre-process into one slot while the engine runs another and
post-processes a third; outputs of a slot stay valid until that slot runs again.

Example:
    >>> from edgeinfer.model.info import TensorSpec
    >>> spec = TensorSpec("images", [1, 3, 320, 320], "float32")
    >>> concrete_shape(spec, None)
    (1, 3, 320, 320)
    >>> concrete_shape(TensorSpec("images", ["batch", 3, "h", "w"]), (2, 3, 384, 640))
    (2, 3, 384, 640)
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import BackendError
from ..model.info import TensorSpec

NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64,
                "uint8": np.uint8, "int8": np.int8, "bool": np.bool_, "float64": np.float64}


def numpy_dtype(name: str) -> np.dtype:
    """ONNX/TensorRT dtype name -> numpy dtype (BackendError for types the runtime cannot feed)."""
    key = str(name).lower().replace("tensor(", "").replace(")", "")
    key = {"float": "float32", "half": "float16", "double": "float64"}.get(key, key)
    if key not in NUMPY_DTYPES:
        raise BackendError(f"tensor type {name!r} is not supported by the runtime",
                           hint="export the model with float32/float16/int32/int64/uint8 inputs and outputs")
    return np.dtype(NUMPY_DTYPES[key])


def concrete_shape(spec: TensorSpec, shape: Optional[Sequence[int]]) -> Tuple[int, ...]:
    """The shape to allocate: the spec's own when static, else ``shape`` (which must fit the spec)."""
    if spec.is_static:
        if shape is not None and tuple(shape) != tuple(spec.shape):
            raise BackendError(f"input {spec.name!r} is static {tuple(spec.shape)}, got shape {tuple(shape)}",
                               hint="feed the model's own input size (see model.info.inputs)")
        return tuple(int(d) for d in spec.shape)
    if shape is None or len(shape) != len(spec.shape):
        raise BackendError(f"input {spec.name!r} has dynamic shape {spec.shape}; a concrete shape is needed",
                           hint="pass the batch/height/width of this call")
    for want, got in zip(spec.shape, shape):
        if isinstance(want, int) and want > 0 and want != int(got):
            raise BackendError(f"input {spec.name!r} needs {spec.shape}, got {tuple(shape)}",
                               hint="only the dynamic axes may change")
    return tuple(int(d) for d in shape)


class Backend(ABC):
    """An inference engine behind preallocated buffers.

    Attributes:
        name: "tensorrt" | "onnxruntime".
        inputs, outputs: TensorSpec lists as the engine reports them.
        reason: why this backend (and provider / DLA core / memory mode) was chosen, for logs.
    """

    name = "abstract"
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    reason: str = ""

    @abstractmethod
    def input_buffer(self, name: Optional[str] = None, *, shape: Optional[Sequence[int]] = None,
                     slot: int = 0) -> np.ndarray:
        """The host array to write input ``name`` (default: the first input) of ``slot`` into.

        For dynamic inputs pass ``shape``; buffers are cached per shape.
        """

    @abstractmethod
    def infer(self, *, slot: int = 0) -> Dict[str, np.ndarray]:
        """Run on ``slot``'s input buffers; its output arrays by name (the backend's, reused when the slot runs again)."""

    @property
    def slots(self) -> int:
        """Buffer slots (1: only slot 0)."""
        return 1

    @abstractmethod
    def close(self) -> None:
        """Free engine, session and buffers; idempotent."""

    @property
    def max_batch(self) -> int:
        """Largest batch the first input takes (1 for batch-1 models; dynamic: what the backend allows)."""
        b = self.inputs[0].shape[0] if self.inputs[0].shape else 1
        return int(b) if isinstance(b, int) and b > 0 else 1

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
