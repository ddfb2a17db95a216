"""GStreamer through PyGObject: appsink sources, appsrc encoders and an RTSP server, without OpenCV.

OpenCV's GStreamer backend exists only in GStreamer builds of OpenCV (JetPack's has it, pip's
wheels never do). PyGObject reaches the same elements directly, so hardware decode
(``nvv4l2decoder``, ``nvarguscamerasrc``) and hardware encode (``nvv4l2h264enc``) work whatever
OpenCV was installed. On a Jetson PyGObject comes from JetPack (``python3-gi``).

Frames cross the boundary once: an appsink buffer is mapped and copied straight into the
caller's pooled slot; an annotated frame is copied once into a GStreamer buffer for appsrc.

Example:
    >>> gst_available() in (True, False)
    True
    >>> rtsp_launch(width=640, height=480, fps=30, hardware=False).split(" ! ")[-1]
    'rtph264pay name=pay0 pt=96 config-interval=1 )'
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Optional, Tuple

import numpy as np

from .._deps import is_available, require
from ..errors import SourceError

log = logging.getLogger(__name__)

PYGOBJECT_HINT = ("install PyGObject and GStreamer's typelibs: on a Jetson `sudo apt install python3-gi "
                  "gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0`; on a Debian/Ubuntu host the same packages, or "
                  "`pip install 'PyGObject<3.51'` in a venv (needs libgirepository1.0-dev and libcairo2-dev)")

_INIT_LOCK = threading.Lock()


def gst_available() -> bool:
    """Whether PyGObject and GStreamer's introspection data can be loaded here (imports nothing heavy if absent)."""
    if not is_available("gi"):
        return False
    try:
        _gst()
        return True
    except (SourceError, ValueError, ImportError):
        return False


def _gst():
    """Import and initialise Gst (once per process)."""
    gi = require("gi", feature="GStreamer through PyGObject")
    with _INIT_LOCK:
        try:
            gi.require_version("Gst", "1.0")
            gi.require_version("GstApp", "1.0")
        except ValueError as exc:
            raise SourceError(f"GStreamer introspection data is missing: {exc}", hint=PYGOBJECT_HINT) from None
        from gi.repository import Gst

        if not Gst.is_initialized():
            Gst.init(None)
    return Gst


def has_element(name: str) -> bool:
    """Whether a GStreamer element factory (e.g. ``x264enc``, ``nvv4l2h264enc``) is installed."""
    return gst_available() and _gst().ElementFactory.find(name) is not None


def h264_encoder(*, hardware: Optional[bool] = None) -> str:
    """The H.264 encoder chain: Jetson's ``nvv4l2h264enc`` where present, else software ``x264enc``."""
    use_hw = has_element("nvv4l2h264enc") if hardware is None else hardware
    if use_hw:
        return "nvvidconv ! video/x-raw(memory:NVMM),format=NV12 ! nvv4l2h264enc insert-sps-pps=true idrinterval=30"
    return "videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30"


def _appsrc_caps(width: int, height: int, fps: float) -> str:
    return f"video/x-raw,format=BGR,width={int(width)},height={int(height)},framerate={int(round(fps))}/1"


def rtsp_launch(*, width: int, height: int, fps: float, hardware: Optional[bool] = None) -> str:
    """The RTSP server's media pipeline: BGR appsrc → H.264 → RTP payloader ``pay0``."""
    return (f"( appsrc name=src is-live=true format=time do-timestamp=true caps={_appsrc_caps(width, height, fps)} "
            f"! {h264_encoder(hardware=hardware)} ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )")


def mp4_launch(path: str, *, width: int, height: int, fps: float, hardware: Optional[bool] = None) -> str:
    """A BGR appsrc → H.264 → MP4 file pipeline (``mp4mux`` finalises the file on EOS)."""
    return (f"appsrc name=src format=time caps={_appsrc_caps(width, height, fps)} ! "
            f"{h264_encoder(hardware=hardware)} ! h264parse ! mp4mux ! filesink location={path}")


class GstAppsinkReader:
    """Frames from a GStreamer pipeline that ends in ``appsink`` (BGR), read through PyGObject.

    ``read(out)`` copies the mapped buffer into ``out`` when shapes match (no per-frame allocation).
    """

    live = True

    def __init__(self, pipeline: str, *, name: str, timeout_s: float = 5.0) -> None:
        Gst = _gst()
        self._Gst = Gst
        self.name = name
        self._timeout_ns = int(max(0.05, timeout_s) * 1e9)
        try:
            self._pipeline = Gst.parse_launch(pipeline)
        except Exception as exc:  # GLib.Error: a bad element name or caps string
            raise SourceError(f"bad GStreamer pipeline {pipeline!r}: {exc}",
                              hint="check it with gst-launch-1.0 and end it in '! video/x-raw,format=BGR ! appsink'") from None
        self._sink = self._find_appsink()
        self._pipeline.set_state(Gst.State.PLAYING)
        state = self._pipeline.get_state(self._timeout_ns)[0]
        if state == Gst.StateChangeReturn.FAILURE:
            self.close()
            from .sources import SourceUnavailable

            raise SourceUnavailable(f"GStreamer pipeline for {name} did not start",
                                    hint="run the same pipeline with gst-launch-1.0 to see why")

    def _find_appsink(self):
        it = self._pipeline.iterate_sinks()
        while True:
            ok, element = it.next()
            if ok != self._Gst.IteratorResult.OK:
                break
            if element.get_factory().get_name() == "appsink":
                return element
        self._pipeline.set_state(self._Gst.State.NULL)
        raise SourceError("the GStreamer pipeline has no appsink", hint="end it with '! video/x-raw,format=BGR ! appsink'")

    @staticmethod
    def _shape(caps) -> Tuple[int, int, str]:
        s = caps.get_structure(0)
        return s.get_value("height"), s.get_value("width"), s.get_value("format")

    @property
    def frame_shape(self) -> Optional[Tuple[int, int, int]]:
        """(height, width, 3) once the appsink's caps are negotiated (prerolled), else None: capture then sizes
        its frame slots before the first read, and every buffer is copied once, from the mapping into a slot."""
        pad = self._sink.get_static_pad("sink")
        caps = pad.get_current_caps() if pad is not None else None
        if caps is None or caps.get_size() == 0:
            return None
        h, w, fmt = self._shape(caps)
        return (int(h), int(w), 3) if fmt == "BGR" and h and w else None

    def read(self, out: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        sample = self._sink.emit("try-pull-sample", self._timeout_ns)
        if sample is None:
            return None  # EOS or no frame within the timeout
        h, w, fmt = self._shape(sample.get_caps())
        if fmt != "BGR":
            raise SourceError(f"appsink delivers {fmt}, not BGR",
                              hint="put 'videoconvert ! video/x-raw,format=BGR' before appsink")
        buf = sample.get_buffer()
        ok, info = buf.map(self._Gst.MapFlags.READ)
        if not ok:
            return None
        try:
            view = np.frombuffer(info.data, dtype=np.uint8, count=h * w * 3).reshape(h, w, 3)
            if out is None or out.shape != (h, w, 3):
                out = np.empty((h, w, 3), np.uint8)
            np.copyto(out, view)
        finally:
            buf.unmap(info)
        return out

    def rewind(self) -> bool:
        Gst = self._Gst
        return bool(self._pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0))

    def close(self) -> None:
        self._pipeline.set_state(self._Gst.State.NULL)


def push_frame(appsrc: Any, image: np.ndarray, Gst: Any, *, index: Optional[int] = None, fps: float = 30.0) -> bool:
    """Copy one BGR frame into a new buffer on ``appsrc``; False when the pipeline refused it.

    ``index`` stamps the buffer at ``index / fps`` (files need timestamps; live appsrcs stamp themselves).
    """
    # tobytes() is the one copy: the annotated scratch frame is reused for the next picture.
    buf = Gst.Buffer.new_wrapped(np.ascontiguousarray(image).tobytes())
    if index is not None:
        period = int(Gst.SECOND / fps)
        buf.pts = index * period
        buf.duration = period
    return appsrc.emit("push-buffer", buf) == Gst.FlowReturn.OK
