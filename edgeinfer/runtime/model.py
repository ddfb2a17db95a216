"""Public runtime API: ``edgeinfer.load(path) -> Model``; ``model(frame) -> Detections``.

Example:
    >>> import edgeinfer, numpy as np                                  # doctest: +SKIP
    >>> with edgeinfer.load("shapes.bundle") as model:                 # doctest: +SKIP
    ...     dets = model(np.zeros((480, 640, 3), np.uint8))
    ...     print(model.backend_name, model.backend_reason, len(dets))
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import BackendError, ConfigError
from ..model.info import ModelInfo
from ..model.layout import input_channels, input_hw
from .backend import Backend
from .detections import Detections
from .onnx_info import info_from_session, target_hw
from .preprocess import LetterboxTransform, Preprocessor, check_frame, input_shape
from .selection import open_backend
from .staged import STAGE_SLOTS, Prepared, StagedInference  # noqa: F401 - re-exported
from .tasks import DecodeOptions, make_decoder, resolve_task
from .tasks.classify import CenterCropPreprocessor
from .tasks.options import class_ids

log = logging.getLogger(__name__)

Result = Union[Detections, Any, Dict[str, np.ndarray]]  # Any: Classification (no boxes)
class Model(StagedInference):
    """A loaded model: pre-processing into the backend's buffers, inference, post-processing.

    Create with :func:`load`. ``model(frame)`` takes a BGR uint8 HxWx3 frame and returns
    :class:`Detections` in frame pixels (detectors), :class:`~edgeinfer.runtime.task_results.Segments`,
    ``Poses``, ``OrientedBoxes`` or ``Classification`` for the other Ultralytics tasks (``task`` says
    which; ``task=`` overrides the model's metadata), or a dict of output arrays (generic models).
    Not thread-safe: call it from one (the inference) thread.

    Staged use (a software pipeline around the engine, as ``edgeinfer.Pipeline`` runs it): while the
    engine runs one slot, another thread pre-processes the next batch into a second slot and a third
    post-processes the previous one. :meth:`prepare`, :meth:`execute` and :meth:`finish` may each run
    in its own thread (one thread per step), on different :attr:`stage_slots`; they share no scratch
    buffers with ``__call__``/``infer_batch``, which use slot 0. ``execute`` is :meth:`submit` then
    :meth:`collect`: on an asynchronous backend (TensorRT) the engine thread submits slot N+1 before it
    collects N, so the accelerator runs them back to back.

    Example:
        >>> model = edgeinfer.load("shapes-yolo11n-320.onnx", device="cpu")   # doctest: +SKIP
        >>> p = model.prepare([frame], slot=model.stage_slots[0])             # doctest: +SKIP
        >>> dets = model.finish(model.execute(p))[0]                          # doctest: +SKIP
    """

    def __init__(self, backend: Backend, info: ModelInfo, *, reason: str, conf: float = 0.25, iou: float = 0.45,
                 max_det: int = 300, gpu_preprocess: Optional[bool] = None, task: Optional[str] = None,
                 classes: Optional[Sequence[int]] = None, class_conf: Optional[Dict[int, float]] = None,
                 agnostic_nms: bool = False, top_k: int = 5, mask_format: str = "polygon") -> None:
        self.backend = backend
        self.info = info
        self.backend_reason = reason
        self._input = backend.inputs[0]
        self._dynamic = not self._input.is_static
        _check_input(self._input.shape, info)
        hw = input_hw(self._input.shape, info.preprocess.layout) or ()
        dynamic_hw = not all(isinstance(d, int) and d > 0 for d in hw)  # only then the stride-aligned rectangle
        if class_conf:  # keys may be class names ("person": 0.5)
            keys = class_ids(list(class_conf), info.names) or []
            class_conf = dict(zip(keys, class_conf.values()))
        options = DecodeOptions(conf=conf, iou=iou, max_det=max_det, classes=class_ids(classes, info.names),
                                class_conf=dict(class_conf or {}),
                                agnostic=agnostic_nms, top_k=top_k, mask_format=mask_format)
        self.task, self.layout = resolve_task(info, task)
        self._pre_cls = CenterCropPreprocessor if self.task == "classify" else Preprocessor
        self._pre = self._pre_cls(info.preprocess, target_hw(info), dynamic=dynamic_hw)
        # one shape tuple per (batch, h, w), reused: building it per frame showed up in tracemalloc as growth
        self._shapes: Dict[Tuple[int, int, int], Tuple[int, ...]] = {}
        self._decoder_args = dict(task=self.task, options=options, input_hw=target_hw(info))
        self._post: Any = make_decoder(info, **self._decoder_args)
        self._dynamic_hw = dynamic_hw
        self._stage_pre: Any = None  # the staged steps' own pre/post (their scratch buffers are per thread)
        self._stage_post: Any = None
        self._pinned_frames: List[Any] = []
        if self.task == "classify" and gpu_preprocess:
            raise ConfigError("gpu_preprocess=True letterboxes; a classifier needs its centre crop",
                              hint="leave gpu_preprocess unset for classification models")
        self._gpu_pre = self._make_gpu_pre(False if self.task == "classify" else gpu_preprocess)
        self._one: List[Optional[LetterboxTransform]] = [None]  # reused per call: no list per frame
        self._closed = False
        # Traceability (set by load(); see edgeinfer.fleet.identity): carried by every result and record.
        self.model_id: Optional[str] = None
        self.model_version: Optional[str] = None
        self.signer: Optional[str] = None
        self.path: Optional[str] = None

    def _make_gpu_pre(self, wanted: Optional[bool]) -> Any:
        is_trt = self.backend.name == "tensorrt" and not self._dynamic
        spec = self.info.preprocess
        # the CUDA kernel writes 3-channel NCHW letterbox/stretch; other layouts stay on the CPU path
        kernel_fits = spec.layout == "NCHW" and spec.color != "GRAY" and spec.resize != "crop"
        if wanted is False or (wanted is None and not (is_trt and kernel_fits)):
            return None
        if not is_trt or not kernel_fits:
            raise ConfigError("gpu_preprocess=True needs the TensorRT backend with a static 3-channel NCHW input "
                              "and letterbox or stretch resizing",
                              hint="leave gpu_preprocess unset, or load a bundle with an engine for this device")
        from .gpu_preprocess import make_gpu_preprocessor

        # None when the kernel cannot compile here: CPU pre-processing then, unless GPU was asked for
        return make_gpu_preprocessor(self.info.preprocess, target_hw(self.info), cuda=self.backend.cuda,  # type: ignore[attr-defined]
                                     required=wanted is True)

    # ------------------------------------------------------------------ properties
    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def names(self) -> Dict[int, str]:
        return dict(self.info.names)

    # ------------------------------------------------------------------ inference
    def __call__(self, frame: np.ndarray) -> Result:
        """One frame -> Detections (detectors) or {output name: array copy} (generic)."""
        self._check_open()
        frame = check_frame(frame)
        if self._gpu_pre is not None:
            be = self.backend
            with be.cuda.activate():  # type: ignore[attr-defined]
                self._one[0] = self._gpu_pre(frame, dst_ptr=be.input_device_ptr(), stream=be.runner.stream)  # type: ignore[attr-defined]
                outputs = be.infer(skip_h2d=(self._input.name,))  # type: ignore[call-arg]
        else:
            geo = self._pre.geometry(frame.shape[:2])
            buf = self.backend.input_buffer(shape=self._batch_shape(1, geo.dst_hw))  # same tuple per size
            self._one[0] = self._pre(frame, out=buf[0])
            outputs = self.backend.infer()
        return self._finish(outputs, self._one)[0]

    def infer_batch(self, frames: Sequence[np.ndarray]) -> List[Result]:
        """Several frames, in chunks of the model's batch size; one result per frame, in order."""
        self._check_open()
        if len(frames) == 0:
            return []
        frames = [check_frame(f) for f in frames]
        step = len(frames) if self._dynamic_batch() else self.backend.max_batch
        results: List[Result] = []
        for start in range(0, len(frames), step):
            results.extend(self._run_chunk(frames[start:start + step]))
        return results

    def _run_chunk(self, frames: Sequence[np.ndarray]) -> List[Result]:
        same = len({f.shape for f in frames}) == 1
        pre = self._pre if (same or not self._dynamic) else self._pre_cls(self.info.preprocess, target_hw(self.info))
        # (frames of several sizes in one dynamic batch share the letterbox target, not the auto rectangle)
        dst_hw = pre.geometry(frames[0].shape[:2]).dst_hw
        n = len(frames) if self._dynamic_batch() else self.backend.max_batch
        buf = self.backend.input_buffer(shape=self._batch_shape(n, dst_hw))
        transforms = [pre(f, out=buf[i]) for i, f in enumerate(frames)]  # unused slots keep old data
        return self._finish(self.backend.infer(), transforms)

    def _dynamic_batch(self) -> bool:
        b = self._input.shape[0] if self._input.shape else 1
        return not (isinstance(b, int) and b > 0)

    def _batch_shape(self, n: int, hw: Tuple[int, int]) -> Optional[tuple]:
        if not self._dynamic:
            return None
        key = (n, hw[0], hw[1])
        shape = self._shapes.get(key)
        if shape is None:
            if len(self._shapes) > 32:  # bounded like the backend's buffers
                self._shapes.clear()
            shape = self._shapes[key] = (n,) + input_shape(self.info.preprocess, hw)
        return shape

    def _finish(self, outputs: Dict[str, np.ndarray], transforms: Sequence[Optional[LetterboxTransform]],
                post: Any = None) -> List[Result]:
        post = self._post if post is None else post
        if post is not None:
            ordered = [outputs[t.name] for t in self.backend.outputs]
            return list(post(ordered, transforms))
        return [{name: arr[i].copy() if arr.ndim and arr.shape[0] >= len(transforms) else arr.copy()
                 for name, arr in outputs.items()} for i in range(len(transforms))]

    def warmup(self, runs: int = 2) -> None:
        """Run ``runs`` inferences on a grey frame (first-call allocations and lazy init out of the way)."""
        h, w = target_hw(self.info)
        frame = np.full((h, w, 3), 114, np.uint8)
        for _ in range(max(0, int(runs))):
            self(frame)

    # ------------------------------------------------------------------ lifetime
    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("the model is closed", hint="load it again with edgeinfer.load(...)")

    def close(self) -> None:
        """Free the backend (GPU memory, engine, session). Idempotent."""
        if self._closed:
            return
        if self._gpu_pre is not None:
            self._gpu_pre.close()
        self.backend.close()
        self._closed = True

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Model({self.info.source!r}, backend={self.backend_name!r}, task={self.task!r}, layout={self.layout!r})"


def _check_input(shape: Sequence[Any], info: ModelInfo) -> None:
    """The image input must be rank 4 with the channel count the pre-processing writes, in its layout."""
    spec = info.preprocess
    channels = input_channels(shape, spec.layout) if len(shape) == 4 else None
    if len(shape) != 4 or (isinstance(channels, int) and channels != spec.channels):
        raise ConfigError(f"input {list(shape)} does not take {spec.channels}-channel {spec.layout} images",
                          hint="declare the model's pre-processing, e.g. preprocess='layout=nhwc' "
                               "(or color=gray for one channel); `edgeinfer package --preprocess` stores it")


def load(path: Union[str, Path], *, backend: str = "auto", device: str = "auto", dla_core: Any = None,
         warmup: int = 2, conf: float = 0.25, iou: float = 0.45, max_det: int = 300, build_on_load: bool = False,
         memory: str = "auto", cuda_graph: bool = False, cuda_impl: Optional[str] = None,
         gpu_preprocess: Optional[bool] = None, intra_op_threads: int = 0, preprocess: Any = None, trust: Any = None,
         fallback: Optional[str] = None, task: Optional[str] = None, classes: Optional[Sequence[int]] = None,
         class_conf: Optional[Dict[int, float]] = None, agnostic_nms: bool = False, top_k: int = 5,
         mask_format: str = "polygon") -> Model:
    """Load a bundle (directory or .tar) or a plain ONNX file for inference on this machine.

    Args:
        backend: ``auto`` (TensorRT engine for this device if the bundle has one, else ONNX
            Runtime), ``tensorrt`` or ``onnxruntime``.
        device: ONNX Runtime provider: ``auto`` | ``cpu`` | ``cuda`` | ``tensorrt``.
        dla_core: pick the engine built for this DLA core; ``"gpu"`` the GPU engine; None: the
            bundle's placement plan decides.
        warmup: inferences run at load.
        conf, iou, max_det: detection thresholds.
        build_on_load: build a missing engine now (minutes, once; never in the hot path).
        memory: TensorRT buffers: ``auto`` | ``staged`` | ``mapped`` (Jetson zero-copy).
        cuda_graph: TensorRT: replay a captured CUDA graph per call.
        cuda_impl: ``cuda-python`` | ``pycuda`` (default: ``EDGEINFER_CUDA`` or auto).
        gpu_preprocess: letterbox on the GPU (default: on for TensorRT with static input).
        intra_op_threads: ONNX Runtime threads (0: its default).
        preprocess: override the model's pre-processing (mean/std, colour, resize, scale, layout): a
            PreprocessSpec, a mapping or the text ``"imagenet resize=stretch"`` (see docs/runtime.md). Bundles
            carry what was declared at packaging; a plain ONNX file gets its layout from the input shape.
        trust: trusted public keys (.pub paths or an ``edgeinfer.fleet.TrustStore``); None reads
            ``EDGEINFER_TRUST`` and /etc/edgeinfer/trusted-keys. With any key configured, unsigned or
            wrongly signed bundles are refused (docs/fleet.md).
        fallback: ``"onnxruntime"``: an engine that cannot be deserialized falls back to the bundle's ONNX.
        task: ``detect`` | ``segment`` | ``pose`` | ``obb`` | ``classify`` | ``generic``; default: the model's
            metadata, then its output shapes.
        classes: keep only these class ids. class_conf: class id -> its own confidence threshold.
        agnostic_nms: NMS across classes. top_k: classification entries reported.
        mask_format: what segmentation results put on the uplink: ``polygon`` | ``rle`` | ``both`` | ``none``.

    Example:
        >>> model = edgeinfer.load("shapes-yolo11n-320.onnx", device="cpu")   # doctest: +SKIP
        >>> model.backend_name  # doctest: +SKIP
        'onnxruntime'
    """
    from ..fleet.loading import IdentityCheck

    ident = IdentityCheck(path, trust)
    be, info, reason = open_backend(path, backend=backend, device=device, dla_core=dla_core,
                                    build_on_load=build_on_load, memory=memory, cuda_graph=cuda_graph,
                                    cuda_impl=cuda_impl, intra_op_threads=intra_op_threads, on_bundle=ident,
                                    fallback=fallback)
    try:
        if info is None:
            info = info_from_session(be.session, be.inputs, be.outputs, source=Path(path).name,  # type: ignore[attr-defined]
                                     preprocess=preprocess)
        elif preprocess is not None:
            info = replace(info, preprocess=info.preprocess.updated(preprocess))
        model = Model(be, info, reason=reason, conf=conf, iou=iou, max_det=max_det, gpu_preprocess=gpu_preprocess,
                      task=task, classes=classes, class_conf=class_conf, agnostic_nms=agnostic_nms, top_k=top_k,
                      mask_format=mask_format)
        ident.apply(model)
        log.info("loaded %s with %s: %s", Path(path).name, be.name, reason)
        model.warmup(warmup)
    except BaseException:
        be.close()
        raise
    return model
