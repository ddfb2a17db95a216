"""Open a :class:`~edgeinfer.pipeline.uri.SourceSpec` and read BGR frames from it.

Readers decode into a caller-supplied buffer when the shape matches (OpenCV's ``read(image=)``
writes in place), so capture into preallocated slots allocates nothing per frame.

Backends: video files and (off-Jetson) RTSP through OpenCV's FFmpeg backend with open/read
timeouts; ``csi://`` and ``gst://`` through OpenCV's GStreamer backend; RTSP through a GStreamer
pipeline with ``nvv4l2decoder`` on a Jetson whose OpenCV has GStreamer; V4L2 through OpenCV's
V4L2 backend. A pip OpenCV has no GStreamer: ``csi://``/``gst://`` then fail with a SourceError
that says so.

Example:
    >>> from edgeinfer.pipeline.uri import parse_source
    >>> reader = open_reader(parse_source("clip.mp4"))   # doctest: +SKIP
    >>> frame = reader.read()                            # doctest: +SKIP
"""
from __future__ import annotations

import logging
import os
import re
from typing import List, Optional, Tuple

import numpy as np

from .._deps import on_jetson, require
from ..errors import SourceError
from .uri import SourceSpec, csi_pipeline, describe_target, image_files, rtsp_pipeline, v4l2_pipeline

log = logging.getLogger(__name__)

GSTREAMER_HINT = ("this OpenCV was built without GStreamer (pip wheels never have it); on a Jetson use JetPack's "
                  "OpenCV (sudo apt install python3-opencv) and do not pip-install opencv over it")


class SourceUnavailable(SourceError):
    """The source exists in principle but cannot deliver now (camera unplugged, stream down): retry."""


def opencv_has_gstreamer(build_info: Optional[str] = None) -> bool:
    """Whether OpenCV's build information lists ``GStreamer: YES``."""
    if build_info is None:
        build_info = require("cv2", feature="video capture").getBuildInformation()
    match = re.search(r"^\s*GStreamer:\s*(\S+)", build_info, re.MULTILINE)
    return bool(match) and match.group(1).upper().startswith("YES")


class FrameReader:
    """An opened source. ``read(out)`` returns a BGR frame (``out`` itself when shapes match) or None."""

    live = False

    def read(self, out: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        raise SourceError(f"{type(self).__name__} cannot read frames")

    def rewind(self) -> bool:
        """Go back to the first frame (for looping); False when the source cannot."""
        return False

    def close(self) -> None:
        """Release the device or file."""


class CaptureReader(FrameReader):
    """A ``cv2.VideoCapture`` of any backend."""

    def __init__(self, cap, *, live: bool, name: str) -> None:
        self._cap = cap
        self.live = live
        self.name = name

    def read(self, out: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        ok, frame = self._cap.read(out) if out is not None else self._cap.read()
        if not ok or frame is None or frame.size == 0:
            return None
        return frame

    def rewind(self) -> bool:
        cv2 = require("cv2")
        return bool(self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0))

    @property
    def fps(self) -> float:
        cv2 = require("cv2")
        return float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)

    @property
    def frame_shape(self) -> Optional[Tuple[int, int, int]]:
        """(height, width, 3) as the backend reports it before the first read, or None when it cannot tell."""
        cv2 = require("cv2")
        w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        return (h, w, 3) if w > 0 and h > 0 else None

    def close(self) -> None:
        self._cap.release()


class ImageReader(FrameReader):
    """Images of a folder, a glob or a single file, in sorted order."""

    def __init__(self, paths: List[str]) -> None:
        self._paths = paths
        self._next = 0
        self.current_name = ""  # file name of the image last returned (results carry it)

    def read(self, out: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        cv2 = require("cv2", feature="image reading")
        while self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                log.warning("skipping unreadable image %s", path)
                continue
            self.current_name = os.path.basename(path)
            if out is not None and out.shape == img.shape:
                np.copyto(out, img)
                return out
            return img
        return None

    def rewind(self) -> bool:
        self._next = 0
        return True


def _int_option(spec: SourceSpec, key: str, default: Optional[int]) -> Optional[int]:
    value = spec.options.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SourceError(f"option {key}={value!r} of {spec.uri!r} is not an integer", hint=f"use e.g. {key}=30") from None


def _open_gstreamer(pipeline: str, spec: SourceSpec, *, timeout_s: float = 5.0) -> FrameReader:
    """OpenCV's GStreamer backend where OpenCV has it, else PyGObject's appsink, else a clear error.

    ``?backend=pygobject`` forces the PyGObject route (hardware decode whatever OpenCV was built with).
    """
    from . import gst

    cv2 = require("cv2", feature="video capture")
    use_gi = spec.options.get("backend") == "pygobject" or not opencv_has_gstreamer()
    if use_gi:
        if not gst.gst_available():
            raise SourceError(f"{spec.kind}:// sources need GStreamer: this OpenCV has none and PyGObject is missing",
                              hint=f"{GSTREAMER_HINT}; or {gst.PYGOBJECT_HINT}")
        return gst.GstAppsinkReader(pipeline, name=describe_target(spec), timeout_s=timeout_s)
    cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
    if not cap.isOpened():
        raise SourceUnavailable(f"GStreamer pipeline for {describe_target(spec)} did not start: {pipeline}",
                                hint="check the device/URL and run the same pipeline with gst-launch-1.0 to see why")
    return CaptureReader(cap, live=True, name=describe_target(spec))


def _ffmpeg_params(cv2, timeout_s: float) -> list:
    ms = int(max(0.1, timeout_s) * 1000)
    return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]


def open_reader(spec: SourceSpec, *, timeout_s: float = 5.0) -> FrameReader:
    """Open ``spec``; SourceUnavailable for transient failures, SourceError for configuration errors."""
    if spec.kind == "images":
        return ImageReader(image_files(spec.target))
    cv2 = require("cv2", feature="video capture")
    if spec.kind == "file":
        cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise SourceError(f"cannot decode video file {spec.target!r}",
                              hint="check that it is a video OpenCV's FFmpeg can read (mp4/avi/mkv with H.264, MPEG-4, MJPEG)")
        return CaptureReader(cap, live=False, name=spec.target)
    if spec.kind == "csi":
        pipeline = csi_pipeline(int(spec.target), width=_int_option(spec, "width", 1920),
                                height=_int_option(spec, "height", 1080), fps=_int_option(spec, "fps", 30),
                                flip=_int_option(spec, "flip", 0))
        return _open_gstreamer(pipeline, spec)
    if spec.kind == "gst":
        return _open_gstreamer(spec.target, spec)
    if spec.kind == "rtsp":
        return _open_rtsp(spec, timeout_s=timeout_s)
    if spec.kind == "http":
        return _open_http(spec, timeout_s=timeout_s)
    if spec.kind == "v4l2":
        return _open_v4l2(spec)
    raise SourceError(f"unknown source kind {spec.kind!r}", hint="use a file, images, rtsp://, csi://, v4l2:// or gst://")


def rtsp_backend(requested: str, *, jetson: bool, has_gstreamer: bool) -> str:
    """``gstreamer`` (hardware nvv4l2decoder) on a Jetson whose OpenCV has GStreamer, else ``ffmpeg``.

    ``requested`` (the URI's ``?backend=``) overrides: ``ffmpeg`` or ``gstreamer``.
    """
    if requested not in ("", "ffmpeg", "gstreamer", "pygobject"):
        raise SourceError(f"unknown RTSP backend {requested!r}", hint="use ?backend=ffmpeg, gstreamer or pygobject")
    if requested:
        return "gstreamer" if requested == "pygobject" else requested
    return "gstreamer" if jetson and has_gstreamer else "ffmpeg"


def _open_rtsp(spec: SourceSpec, *, timeout_s: float) -> CaptureReader:
    cv2 = require("cv2", feature="RTSP capture")
    jetson = on_jetson()
    backend = rtsp_backend(spec.options.get("backend", ""), jetson=jetson, has_gstreamer=opencv_has_gstreamer())
    if backend == "gstreamer":
        pipeline = rtsp_pipeline(_without_edgeinfer_options(spec.target), codec=spec.options.get("codec", "h264"), hardware=jetson)
        return _open_gstreamer(pipeline, spec)
    # RTSP over TCP: UDP needs large kernel buffers and breaks behind NAT (roboflow/inference's Jetson
    # producer, jetson_producer.py, defaults to TCP for the same reason).
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    cap = cv2.VideoCapture(_without_edgeinfer_options(spec.target), cv2.CAP_FFMPEG, _ffmpeg_params(cv2, timeout_s))
    if not cap.isOpened():
        raise SourceUnavailable(f"cannot connect to {describe_target(spec)}",
                                hint="check that the stream is up (ffprobe / VLC) and reachable from this device")
    return CaptureReader(cap, live=True, name=describe_target(spec))


def _open_http(spec: SourceSpec, *, timeout_s: float) -> CaptureReader:
    """MJPEG (multipart/x-mixed-replace), HLS playlists and HTTP video files through OpenCV's FFmpeg."""
    cv2 = require("cv2", feature="HTTP capture")
    url = _without_edgeinfer_options(spec.target)
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, _ffmpeg_params(cv2, timeout_s))
    if not cap.isOpened():
        error = SourceUnavailable if spec.live else SourceError
        raise error(f"cannot open {describe_target(spec)}",
                    hint="check the URL in a browser or with ffprobe; MJPEG, HLS (.m3u8) and mp4/mkv over HTTP are read")
    return CaptureReader(cap, live=spec.live, name=describe_target(spec))


def _without_edgeinfer_options(url: str) -> str:
    """Drop our own query options (backend=, codec=) from an RTSP URL; keep the camera's own query."""
    if "?" not in url:
        return url
    base, query = url.split("?", 1)
    kept = [kv for kv in query.split("&") if kv.split("=", 1)[0] not in ("backend", "codec", "live")]
    return base + ("?" + "&".join(kept) if kept else "")


def _open_v4l2(spec: SourceSpec) -> CaptureReader:
    cv2 = require("cv2", feature="camera capture")
    target = spec.target
    device = int(target) if target.isdigit() else target
    if isinstance(device, str) and not os.path.exists(device):
        raise SourceUnavailable(f"camera device {device} does not exist",
                                hint="list cameras with `v4l2-ctl --list-devices` (or ls /dev/video*) and check the cable")
    width, height, fps = _int_option(spec, "width", None), _int_option(spec, "height", None), _int_option(spec, "fps", None)
    if spec.options.get("backend") in ("gstreamer", "pygobject"):
        dev = f"/dev/video{device}" if isinstance(device, int) else device
        return _open_gstreamer(v4l2_pipeline(dev, width=width, height=height, fps=fps), spec)
    cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
    if not cap.isOpened():
        raise SourceUnavailable(f"cannot open camera {target}",
                                hint="check that the camera is connected, not used by another process, and that you are in the 'video' group")
    for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height), (cv2.CAP_PROP_FPS, fps)):
        if value:
            cap.set(prop, value)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the newest frame only; latency lives in the driver queue otherwise
    return CaptureReader(cap, live=True, name=target)
