"""Staged (pipelined) inference on a :class:`~edgeinfer.runtime.model.Model`: prepare, submit, collect, finish.

A software pipeline around the engine (``edgeinfer.Pipeline``, pipeline/overlap.py) runs these steps in three
threads on different backend *slots*: while the engine runs slot N (with N+1 queued behind it on an
asynchronous engine), another thread pre-processes N+2 into its own slot and a third post-processes N-1.
None of them share scratch buffers with ``model(frame)``/``infer_batch``, which use slot 0.

Example:
    >>> Prepared(slot=1, count=1).pending
    False
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ConfigError
from .onnx_info import target_hw
from .preprocess import LetterboxTransform, check_frame
from .tasks import make_decoder

# pre-process N+2, N+1 queued behind N on the engine, post-process N-1 at once (slot 0 stays for __call__/infer_batch)
STAGE_SLOTS = 4


@dataclass
class Prepared:
    """Frames pre-processed into one backend slot (:meth:`Model.prepare`); ``outputs`` after :meth:`Model.execute`.

    The outputs are the slot's own buffers: valid until the slot is prepared again.
    """

    slot: int
    count: int
    transforms: List[Optional[LetterboxTransform]] = field(default_factory=list)
    frames: Optional[List[np.ndarray]] = None  # GPU pre-processing: the kernel runs in submit(), on the engine's stream
    outputs: Optional[Dict[str, np.ndarray]] = None
    pending: bool = False  # submitted to an asynchronous backend, not yet collected


class StagedInference:
    """The staged steps of :class:`~edgeinfer.runtime.model.Model` (a mixin: it uses the model's backend,
    pre-processors and decoder, and its ``_check_open``, ``_dynamic_batch``, ``_batch_shape`` and ``_finish``)."""

    backend: Any
    info: Any
    _input: Any
    _dynamic: bool
    _dynamic_hw: bool
    _gpu_pre: Any
    _stage_pre: Any
    _stage_post: Any
    _pre_cls: Any
    _decoder_args: Dict[str, Any]
    _pinned_frames: List[Any]

    @property
    def stage_slots(self) -> Tuple[int, ...]:
        """Backend slots :meth:`prepare` may use (empty: this backend has only slot 0; use ``infer_batch``)."""
        return tuple(range(1, min(int(getattr(self.backend, "slots", 1)), STAGE_SLOTS + 1)))

    @property
    def stage_batch(self) -> int:
        """Most frames one :meth:`prepare` takes (0: any number, the model's batch axis is dynamic)."""
        return 0 if self._dynamic_batch() else self.backend.max_batch

    def frame_allocator(self) -> Optional[Callable[[Tuple[int, ...]], np.ndarray]]:
        """Where capture should decode frames for this model: pinned host memory when it pre-processes on the
        GPU, else None (ordinary memory). On a Jetson (integrated GPU, shared DRAM) the slots are also mapped
        into the GPU's address space and the letterbox kernel reads the frame where it was decoded; on a
        discrete GPU the frame goes to the device by one DMA from the slot, with no staging copy.

        Pinned slots live as long as the process (a pipeline makes them once per source and frame size).
        """
        if self._gpu_pre is None:
            return None
        cuda = self.backend.cuda  # type: ignore[attr-defined]
        mapped = bool(cuda.device_info().get("integrated"))

        def allocate(shape: Tuple[int, ...]) -> np.ndarray:
            with cuda.activate():
                buf = cuda.host_empty(shape, np.uint8, mapped=mapped)
            self._pinned_frames.append(buf)  # keeps the allocation alive with the model's CUDA context
            return buf.array

        return allocate

    def prepare(self, frames: Sequence[np.ndarray], *, slot: int) -> Prepared:
        """Pre-process up to :attr:`stage_batch` frames into ``slot``'s input buffer (no engine call)."""
        self._check_open()
        if slot not in self.stage_slots:
            raise ConfigError(f"slot {slot} is not a staging slot of this model ({list(self.stage_slots)})",
                              hint="use one of model.stage_slots")
        frames = [check_frame(f) for f in frames]
        step = self.stage_batch
        if not frames or (step and len(frames) > step):
            raise ConfigError(f"prepare() takes 1 to {step or 'any number of'} frames, got {len(frames)}",
                              hint="split the batch into chunks of model.stage_batch")
        if self._gpu_pre is not None and len(frames) == 1:
            return Prepared(slot, 1, frames=frames)
        if self._stage_pre is None:
            self._stage_pre = self._pre_cls(self.info.preprocess, target_hw(self.info), dynamic=self._dynamic_hw)
        same = len({f.shape for f in frames}) == 1
        pre = self._stage_pre if (same or not self._dynamic) else self._pre_cls(self.info.preprocess, target_hw(self.info))
        dst_hw = pre.geometry(frames[0].shape[:2]).dst_hw
        n = len(frames) if self._dynamic_batch() else self.backend.max_batch
        buf = self.backend.input_buffer(shape=self._batch_shape(n, dst_hw), slot=slot)
        return Prepared(slot, len(frames), [pre(f, out=buf[i]) for i, f in enumerate(frames)])

    def execute(self, prepared: Prepared) -> Prepared:
        """Run the engine on a prepared slot: :meth:`submit` then :meth:`collect`."""
        return self.collect(self.submit(prepared))

    @property
    def asynchronous(self) -> bool:
        """Whether :meth:`submit` returns before the engine is done (TensorRT: copies, GPU pre-processing
        and the engine run are enqueued on a CUDA stream); False for ONNX Runtime, which runs in submit."""
        return callable(getattr(self.backend, "submit", None)) and callable(getattr(self.backend, "wait", None))

    def submit(self, prepared: Prepared) -> Prepared:
        """Start the engine on a prepared slot. On an :attr:`asynchronous` backend this returns at once and
        slots submitted in turn run back to back; else (ONNX Runtime, which releases the GIL) it runs here.
        Call :meth:`collect` before :meth:`finish`, from the same thread (the stream's order is the call order).
        """
        self._check_open()
        be: Any = self.backend
        if prepared.frames is not None:  # GPU letterbox straight into this slot's device input, then the engine
            with be.cuda.activate():
                geo = self._gpu_pre(prepared.frames[0], dst_ptr=be.input_device_ptr(slot=prepared.slot),
                                    stream=be.runner.stream)
                be.submit(skip_h2d=(self._input.name,), slot=prepared.slot)
            prepared.transforms, prepared.frames, prepared.pending = [geo], None, True
        elif self.asynchronous:
            be.submit(slot=prepared.slot)
            prepared.pending = True
        else:
            prepared.outputs = be.infer(slot=prepared.slot)
        return prepared

    def collect(self, prepared: Prepared) -> Prepared:
        """Wait for a submitted slot (GIL released) and attach its outputs; a no-op when already done."""
        self._check_open()
        if prepared.pending:
            prepared.outputs = self.backend.wait(slot=prepared.slot)  # type: ignore[attr-defined]
            prepared.pending = False
        return prepared

    def finish(self, prepared: Prepared) -> List[Any]:
        """Post-process an executed slot: one result per prepared frame, in order."""
        self._check_open()
        if prepared.outputs is None or prepared.pending:
            raise ConfigError("finish() needs an executed slot",
                              hint="call model.execute(prepared), or model.collect(prepared) after submit, first")
        if self._stage_post is None:
            self._stage_post = [make_decoder(self.info, **self._decoder_args)]  # a list: generic models decode to None
        return self._finish(prepared.outputs, prepared.transforms, self._stage_post[0])
