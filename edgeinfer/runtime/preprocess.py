"""CPU pre-processing: a BGR uint8 frame straight into the backend's float32 input buffer, NCHW or NHWC.

Letterbox geometry matches Ultralytics' ``LetterBox`` exactly (same rounding of the resized size and
of the centre padding, ``round(d - 0.1)`` / ``round(d + 0.1)``), so boxes agree with Ultralytics.
Dynamic-shape models get the stride-aligned rectangle of the frame's aspect (Ultralytics ``auto``).
The only per-frame work is ``cv2.resize`` into a cached scratch image and one fused
scale/normalise/transpose per channel into the caller's buffer; nothing is allocated per frame
once a frame size has been seen.

Example:
    >>> import numpy as np
    >>> from edgeinfer.model.info import PreprocessSpec
    >>> pre = Preprocessor(PreprocessSpec(), (320, 320))
    >>> buf = np.empty((3, 320, 320), np.float32)
    >>> t = pre(np.zeros((480, 640, 3), np.uint8), out=buf)
    >>> (t.resized_hw, t.pad_top, t.pad_left)
    ((240, 320), 40, 0)
    >>> t.to_original(np.array([[0, 40, 320, 280]], np.float32)).tolist()
    [[0.0, 0.0, 640.0, 480.0]]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._deps import require
from ..errors import ConfigError
from ..model.info import PreprocessSpec


@dataclass(frozen=True)
class LetterboxTransform:
    """Where a source frame landed inside the model input; maps model-space boxes back.

    ``gain_x``/``gain_y`` are the *actual* resize ratios (resized / source per axis), which differ
    slightly from ``scale`` because the resized size is rounded to whole pixels; Ultralytics'
    ``scale_boxes`` uses the same per-axis gains.
    """

    src_hw: Tuple[int, int]  # frame (height, width)
    dst_hw: Tuple[int, int]  # model input (height, width)
    resized_hw: Tuple[int, int]  # size of the resized image inside the input
    scale: float  # the single aspect-preserving ratio r = min(dst/src)
    gain_x: float
    gain_y: float
    pad_top: int
    pad_left: int
    crop_top: int = 0  # resize="crop": the source window (top, left, height, width) that fills the input
    crop_left: int = 0
    crop_hw: Tuple[int, int] = (0, 0)  # (0, 0): the whole frame

    def __post_init__(self) -> None:
        # per-column (x1 y1 x2 y2) constants for to_original, built once (not dataclass fields); a crop is a
        # negative pad in input pixels
        h, w = self.src_hw
        off_x = self.pad_left - self.crop_left * self.gain_x
        off_y = self.pad_top - self.crop_top * self.gain_y
        object.__setattr__(self, "_pad4", np.array([off_x, off_y] * 2, np.float32))
        object.__setattr__(self, "_gain4", np.array([self.gain_x, self.gain_y] * 2, np.float32))
        object.__setattr__(self, "_limit4", np.array([w, h] * 2, np.float32))

    def to_original(self, xyxy: np.ndarray, *, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Boxes (N, 4) in model-input pixels -> source-frame pixels, clipped to the frame.

        Example:
            >>> t = LetterboxTransform((100, 200), (64, 64), (32, 64), 0.32, 0.32, 0.32, 16, 0)
            >>> t.to_original(np.array([[0., 16., 64., 48.]])).tolist()
            [[0.0, 0.0, 200.0, 100.0]]
        """
        boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        res = boxes.copy() if out is None else out
        if out is not None and out is not boxes:
            res[...] = boxes
        if len(res) == 0:
            return res
        # one op per step over all four columns (x1 y1 x2 y2): per-axis pad, gain and limit vectors
        res -= self._pad4
        res /= self._gain4
        np.maximum(res, 0, out=res)  # maximum/minimum, not np.clip: clip with out= leaks a little in numpy 2.4
        np.minimum(res, self._limit4, out=res)
        return res

    def to_input(self, xyxy: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_original` (source pixels -> model-input pixels), unclipped."""
        res = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
        res *= self._gain4
        res += self._pad4
        return res


def letterbox_geometry(src_hw: Tuple[int, int], dst_hw: Tuple[int, int], *, letterbox: bool = True,
                       auto: bool = False, stride: int = 32, center: bool = True,
                       crop: bool = False) -> LetterboxTransform:
    """Ultralytics ``LetterBox.get_params`` arithmetic, returned as a :class:`LetterboxTransform`.

    With ``auto`` the destination shrinks to the stride-aligned rectangle holding the resized frame
    (the minimal padding Ultralytics uses for rectangular inference on dynamic-shape models).
    ``letterbox=False`` stretches the frame to the input; ``crop=True`` scales it to *cover* the input
    and keeps the centre (the source window is cut before resizing, so nothing is resized twice).

    Example:
        >>> t = letterbox_geometry((1080, 1920), (640, 640), auto=True)
        >>> t.dst_hw, t.resized_hw, t.pad_top
        ((384, 640), (360, 640), 12)
        >>> c = letterbox_geometry((480, 640), (224, 224), crop=True)
        >>> c.crop_left, c.crop_hw, c.to_original(np.array([[0, 0, 224, 224]], np.float32)).tolist()
        (80, (480, 480), [[80.0, 0.0, 560.0, 480.0]])
    """
    h0, w0 = int(src_hw[0]), int(src_hw[1])
    th, tw = int(dst_hw[0]), int(dst_hw[1])
    if crop:
        r = max(th / h0, tw / w0)
        ch, cw = min(h0, max(int(round(th / r)), 1)), min(w0, max(int(round(tw / r)), 1))
        top, left = (h0 - ch) // 2, (w0 - cw) // 2
        return LetterboxTransform((h0, w0), (th, tw), (th, tw), r, tw / cw, th / ch, 0, 0, top, left, (ch, cw))
    if not letterbox:  # plain stretch, no padding (Ultralytics scale_fill)
        return LetterboxTransform((h0, w0), (th, tw), (th, tw), min(th / h0, tw / w0), tw / w0, th / h0, 0, 0)
    r = min(th / h0, tw / w0)
    nw, nh = max(int(round(w0 * r)), 1), max(int(round(h0 * r)), 1)
    dw, dh = tw - nw, th - nh
    if auto:
        dw, dh = dw % stride, dh % stride
        th, tw = nh + dh, nw + dw
    if center:
        dwf, dhf = dw / 2, dh / 2
        top, left = int(round(dhf - 0.1)), int(round(dwf - 0.1))
    else:
        top = left = 0
    return LetterboxTransform((h0, w0), (th, tw), (nh, nw), r, nw / w0, nh / h0, top, left)


def check_frame(frame: object) -> np.ndarray:
    """Reject anything that is not a non-empty HxWx3 uint8 image, naming the problem and the fix."""
    if not isinstance(frame, np.ndarray):
        raise ConfigError(f"frame must be a numpy array, got {type(frame).__name__}",
                          hint="pass a BGR image as returned by cv2.imread / VideoCapture.read")
    if frame.dtype != np.uint8:
        raise ConfigError(f"frame dtype is {frame.dtype}, expected uint8",
                          hint="convert with frame.astype(np.uint8) (values 0..255, BGR order)")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ConfigError(f"frame shape is {tuple(frame.shape)}, expected (height, width, 3)",
                          hint="convert grey or BGRA frames with cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR / COLOR_BGRA2BGR)")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ConfigError(f"frame is empty {tuple(frame.shape)}", hint="check that the capture returned a frame")
    return frame


def input_shape(spec: PreprocessSpec, hw: Sequence[int]) -> Tuple[int, int, int]:
    """One image's shape in the model's layout: (C, H, W) for NCHW, (H, W, C) for NHWC.

    Example:
        >>> input_shape(PreprocessSpec(layout="NHWC"), (48, 64)), input_shape(PreprocessSpec(color="GRAY"), (8, 8))
        ((48, 64, 3), (1, 8, 8))
    """
    h, w, c = int(hw[0]), int(hw[1]), spec.channels
    return (c, h, w) if spec.layout == "NCHW" else (h, w, c)


class Preprocessor:
    """Resize (letterbox / stretch / centre crop) + colour order + scale/normalise + layout, into a caller-owned
    float32 buffer of one image: (C, H, W) for NCHW models, (H, W, C) for NHWC ones.

    Args:
        spec: the model's :class:`PreprocessSpec`.
        input_hw: model input (height, width); for dynamic models the *target* size.
        dynamic: shrink to the stride-aligned rectangle of each frame (dynamic-shape models only).

    Example:
        >>> pre = Preprocessor(PreprocessSpec(), (64, 64))
        >>> out = np.empty((3, 64, 64), np.float32)
        >>> t = pre(np.full((32, 64, 3), 255, np.uint8), out=out)
        >>> round(float(out[0, 0, 0]), 4), float(out[0, 32, 32])   # pad row (114/255), image row
        (0.4471, 1.0)
        >>> nhwc = Preprocessor(PreprocessSpec(layout="NHWC", color="BGR", scale=1.0), (2, 2))
        >>> frame = np.zeros((2, 2, 3), np.uint8); frame[..., 2] = 200          # red in BGR
        >>> out = np.empty((2, 2, 3), np.float32); _ = nhwc(frame, out=out); out[0, 0].tolist()
        [0.0, 0.0, 200.0]
    """

    def __init__(self, spec: PreprocessSpec, input_hw: Sequence[int], *, dynamic: bool = False) -> None:
        if len(input_hw) != 2 or min(int(v) for v in input_hw) <= 0:
            raise ConfigError(f"input size {tuple(input_hw)} is not a positive (height, width)",
                              hint="pass the model input size, e.g. (640, 640)")
        self.spec = spec
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.dynamic = bool(dynamic)
        self._nchw = spec.layout == "NCHW"
        self._gray = spec.color == "GRAY"
        std = np.asarray(spec.std, np.float64)
        # out = x * mul + add, per *output* channel: one fused affine instead of scale, sub, div.
        self._mul = (spec.scale / std).astype(np.float32)[:spec.channels]
        self._add = (-np.asarray(spec.mean, np.float64) / std).astype(np.float32)[:spec.channels]
        self._pad = (spec.pad_value * self._mul + self._add).astype(np.float32)
        # output channel c reads source (BGR) channel _src[c]
        self._src = (2, 1, 0) if spec.color == "RGB" else (0, 1, 2)
        bcast = (-1, 1, 1) if self._nchw else (1, 1, -1)  # the channel axis of one image
        self._mul3 = self._mul.reshape(bcast)
        self._add3 = self._add.reshape(bcast)
        self._pad3 = self._pad.reshape(bcast)
        self._has_add = bool(np.any(self._add != 0))
        self._scratch: Dict[tuple, Any] = {}  # resized images and de-interleaved planes, per size
        self._geometry: Dict[Tuple[int, int], LetterboxTransform] = {}

    def geometry(self, src_hw: Sequence[int]) -> LetterboxTransform:
        """The (cached) transform a frame of ``src_hw`` gets; its ``dst_hw`` is the buffer size needed."""
        key = (int(src_hw[0]), int(src_hw[1]))
        geo = self._geometry.get(key)
        if geo is None:
            s = self.spec
            geo = letterbox_geometry(key, self.input_hw, letterbox=s.resize == "letterbox", auto=self.dynamic,
                                     stride=s.stride, center=s.center, crop=s.resize == "crop")
            if len(self._geometry) > 64:  # bounded: a stream of ever-new sizes must not grow memory
                self._geometry.clear()
            self._geometry[key] = geo
        return geo

    def out_shape(self, dst_hw: Sequence[int]) -> Tuple[int, int, int]:
        """The buffer shape one frame needs for a ``dst_hw`` input."""
        return input_shape(self.spec, dst_hw)

    def _buffer(self, key: tuple, shape: Tuple[int, ...]) -> np.ndarray:
        buf = self._scratch.get(key)
        if buf is None:
            if len(self._scratch) > 8:
                self._scratch.clear()
            buf = self._scratch[key] = np.empty(shape, np.uint8)
        return buf

    def _resized(self, frame: np.ndarray, geo: LetterboxTransform) -> np.ndarray:
        if geo.crop_hw != (0, 0):
            ch, cw = geo.crop_hw
            frame = frame[geo.crop_top:geo.crop_top + ch, geo.crop_left:geo.crop_left + cw]  # a view, no copy
        if geo.resized_hw == frame.shape[:2]:
            return frame
        cv2 = require("cv2", feature="CPU pre-processing")
        nh, nw = geo.resized_hw
        buf = self._buffer((nh, nw), (nh, nw, 3))
        cv2.resize(frame, (nw, nh), dst=buf, interpolation=cv2.INTER_LINEAR)
        return buf

    def _planes(self, img: np.ndarray) -> Optional[List[np.ndarray]]:
        """De-interleave HxWx3 into cached contiguous uint8 planes with cv2.split (None: not possible)."""
        if not img.flags.c_contiguous:
            return None
        cv2 = require("cv2", feature="CPU pre-processing")
        key = (img.shape[0], img.shape[1], "planes")
        planes = self._scratch.get(key)
        if planes is None:
            block = self._buffer(key + ("block",), (3, img.shape[0], img.shape[1]))
            planes = self._scratch[key] = [block[0], block[1], block[2]]
        got = cv2.split(img, planes)
        # some OpenCV builds hand back new arrays instead of filling ours: use what came back
        return planes if all(g is p for g, p in zip(got, planes)) else list(got)

    def _grey(self, img: np.ndarray) -> np.ndarray:
        cv2 = require("cv2", feature="CPU pre-processing")
        buf = self._buffer((img.shape[0], img.shape[1], "grey"), img.shape[:2])
        src = img if img.flags.c_contiguous else np.ascontiguousarray(img)  # only a crop without resize
        cv2.cvtColor(src, cv2.COLOR_BGR2GRAY, dst=buf)
        return buf

    def __call__(self, frame: np.ndarray, *, out: np.ndarray) -> LetterboxTransform:
        """Write ``frame`` (BGR uint8 HxWx3) into ``out`` (one image in the model's layout, float32)."""
        frame = check_frame(frame)
        geo = self.geometry(frame.shape[:2])
        want = self.out_shape(geo.dst_hw)
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != want:
            got = (getattr(out, "dtype", None), getattr(out, "shape", None))
            raise ConfigError(f"output buffer is {got}, expected float32 {want} ({self.spec.layout})",
                              hint="size the buffer with Preprocessor.out_shape(geometry(frame.shape[:2]).dst_hw)")
        img = self._resized(frame, geo)
        nh, nw = geo.resized_hw
        t, left = geo.pad_top, geo.pad_left
        chw = out if self._nchw else out.transpose(2, 0, 1)  # a view: index (C, H, W) either way
        if (t, left) != (0, 0) or (nh, nw) != geo.dst_hw:  # pad only the border strips, all channels at once
            for strip in (out[:, :t], out[:, t + nh:], out[:, t:t + nh, :left], out[:, t:t + nh, left + nw:]) \
                    if self._nchw else (out[:t], out[t + nh:], out[t:t + nh, :left], out[t:t + nh, left + nw:]):
                strip[...] = self._pad3
        dst = chw[:, t:t + nh, left:left + nw]
        if self._gray:
            np.multiply(self._grey(img), self._mul[0], out=dst[0], dtype=np.float32)
        elif self._nchw and img.flags.c_contiguous:  # contiguous uint8 planes: unit strides (~3x faster)
            planes = self._planes(img)
            for c in range(3):
                np.multiply(planes[self._src[c]], self._mul[c], out=dst[c], dtype=np.float32)  # type: ignore[index]
        else:  # one strided pass: uint8 HWC -> float32 in the buffer's own layout
            src = img[:, :, ::-1] if self._src[0] == 2 else img
            np.multiply(src if not self._nchw else src.transpose(2, 0, 1), self._mul3,
                        out=out[t:t + nh, left:left + nw] if not self._nchw else dst, dtype=np.float32)
        if self._has_add:
            region = dst if self._nchw else out[t:t + nh, left:left + nw]
            np.add(region, self._add3, out=region)
        return geo


def letterbox_into(frame: np.ndarray, out: np.ndarray, spec: Optional[PreprocessSpec] = None) -> LetterboxTransform:
    """One-off form of :class:`Preprocessor` (allocates its scratch each call; use the class in loops)."""
    spec = spec or PreprocessSpec()
    return Preprocessor(spec, out.shape[-2:] if spec.layout == "NCHW" else out.shape[-3:-1])(frame, out=out)


def preprocess_batch(frames: Sequence[np.ndarray], spec: PreprocessSpec,
                     input_hw: Sequence[int]) -> Tuple[np.ndarray, List[LetterboxTransform]]:
    """Frames -> ((N, C, H, W) or (N, H, W, C) float32 batch as ``spec.layout`` says, transforms). Allocates.

    Example:
        >>> batch, ts = preprocess_batch([np.zeros((10, 20, 3), np.uint8)] * 2, PreprocessSpec(), (32, 32))
        >>> batch.shape, ts[0].pad_top
        ((2, 3, 32, 32), 8)
    """
    if len(frames) == 0:
        raise ConfigError("no frames given", hint="pass at least one BGR uint8 frame")
    pre = Preprocessor(spec, input_hw)
    batch = np.empty((len(frames),) + pre.out_shape(pre.input_hw), np.float32)
    transforms = [pre(f, out=batch[i]) for i, f in enumerate(frames)]
    return batch, transforms
