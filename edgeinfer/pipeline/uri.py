"""Source and sink URIs: parsing, and the capture strings each source kind turns into.

Pure functions (no OpenCV import) so that every pipeline string can be unit-tested on a
machine without a camera, a Jetson or a GStreamer build of OpenCV.

Example:
    >>> spec = parse_source("csi://0?width=1280&height=720&fps=60")
    >>> spec.kind, spec.live, spec.options["width"]
    ('csi', True, '1280')
    >>> csi_pipeline(0, width=1280, height=720, fps=60).split(" ! ")[0]
    'nvarguscamerasrc sensor-id=0'
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from typing import Dict, Optional
from urllib.parse import parse_qsl, urlsplit

from ..errors import SinkError, SourceError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SOURCE_KINDS = ("file", "images", "v4l2", "csi", "rtsp", "http", "gst")
SINK_KINDS = ("display", "file", "null", "rtsp", "images")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".ts")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source URI. ``live`` sources drop old frames; others are read losslessly."""

    uri: str
    kind: str  # one of SOURCE_KINDS
    target: str  # path, device, sensor id, URL or GStreamer pipeline
    live: bool
    options: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SinkSpec:
    """A parsed sink URI."""

    uri: str
    kind: str  # one of SINK_KINDS
    target: str
    options: Dict[str, str] = field(default_factory=dict)


def _split_query(rest: str):
    if "?" not in rest:
        return rest, {}
    path, query = rest.split("?", 1)
    return path, dict(parse_qsl(query, keep_blank_values=True))


def parse_source(uri) -> SourceSpec:
    """Turn a source URI (or a camera index) into a :class:`SourceSpec`.

    Accepted: ``video.mp4``, ``file://video.mp4``, an image folder or glob, ``0`` / ``/dev/video0`` /
    ``v4l2:///dev/video0``, ``csi://0``, ``rtsp://host/path``, ``http(s)://`` (MJPEG camera streams, HLS
    ``.m3u8`` playlists, video files over HTTP), ``gst://<pipeline ending in appsink>``.
    """
    if isinstance(uri, int):
        return SourceSpec(str(uri), "v4l2", str(uri), True)
    text = str(uri).strip()
    if not text:
        raise SourceError("empty source URI", hint="pass a video file, image folder, rtsp://, csi://0 or v4l2:///dev/video0")
    if text.isdigit():
        return SourceSpec(text, "v4l2", text, True)
    lower = text.lower()
    if lower.startswith("gst://"):
        pipeline = text[len("gst://"):].strip()
        if "appsink" not in pipeline:
            raise SourceError(f"GStreamer source {text!r} has no appsink",
                              hint="end the pipeline with '! videoconvert ! video/x-raw,format=BGR ! appsink'")
        return SourceSpec(text, "gst", pipeline, True)
    if lower.startswith(("rtsp://", "rtsps://")):
        options = dict(parse_qsl(urlsplit(text).query, keep_blank_values=True))
        return SourceSpec(text, "rtsp", text, True, options)
    if lower.startswith(("http://", "https://")):
        return _http_source(text)
    if lower.startswith("/dev/video"):
        device, options = _split_query(text)
        return SourceSpec(text, "v4l2", device, True, options)
    if lower.startswith("csi://"):
        sensor, options = _split_query(text[len("csi://"):])
        if not sensor.isdigit():
            raise SourceError(f"CSI source {text!r} needs a sensor number", hint="use csi://0 (or csi://1 for the second sensor)")
        return SourceSpec(text, "csi", sensor, True, options)
    if lower.startswith("v4l2://"):
        device, options = _split_query(text[len("v4l2://"):])
        if not device:
            raise SourceError(f"V4L2 source {text!r} names no device", hint="use v4l2:///dev/video0 or a camera index such as 0")
        return SourceSpec(text, "v4l2", device, True, options)
    if "://" in text and not lower.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise SourceError(f"unknown source scheme {scheme!r} in {text!r}",
                          hint="use a file path, file://, rtsp://, http(s)://, csi://N, /dev/videoN or gst://")
    path, options = _split_query(text[len("file://"):] if lower.startswith("file://") else text)
    return _file_like(text, path, options)


def _http_source(text: str) -> SourceSpec:
    """MJPEG streams and HLS playlists are live (newest frame wins); a video file over HTTP is read losslessly.

    ``?live=1`` / ``?live=0`` overrides the guess made from the path's extension.
    """
    parts = urlsplit(text)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    live_opt = options.get("live", "")
    if live_opt not in ("", "0", "1"):
        raise SourceError(f"live={live_opt!r} in {text!r} must be 0 or 1", hint="use ?live=1 for a stream, ?live=0 for a file")
    if live_opt:
        live = live_opt == "1"
    else:
        live = not parts.path.lower().endswith(VIDEO_EXTENSIONS)
    return SourceSpec(text, "http", text, live, options)


def _file_like(uri: str, path: str, options: Dict[str, str]) -> SourceSpec:
    if os.path.isdir(path):
        return SourceSpec(uri, "images", path, False, options)
    if any(ch in path for ch in "*?["):
        if not glob.glob(path):
            raise SourceError(f"no files match {path!r}", hint="check the glob pattern and the folder")
        return SourceSpec(uri, "images", path, False, options)
    if not os.path.exists(path):
        raise SourceError(f"source file {path!r} does not exist", hint="check the path (relative paths are from the working directory)")
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return SourceSpec(uri, "images", path, False, options)
    return SourceSpec(uri, "file", path, False, options)


def image_files(target: str):
    """Sorted image paths of a folder, a glob, or a single image."""
    if os.path.isdir(target):
        names = sorted(os.listdir(target))
        paths = [os.path.join(target, n) for n in names]
    elif any(ch in target for ch in "*?["):
        paths = sorted(glob.glob(target))
    else:
        paths = [target]
    found = [p for p in paths if p.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(p)]
    if not found:
        raise SourceError(f"no images found in {target!r}", hint=f"supported extensions: {', '.join(IMAGE_EXTENSIONS)}")
    return found


def appsink(*, live: bool) -> str:
    """The appsink tail: live sources keep only the newest buffer and never block the streaming thread."""
    if live:
        return "appsink drop=true max-buffers=1 sync=false"
    return "appsink max-buffers=4 drop=false sync=false"


def csi_pipeline(sensor_id: int, *, width: int = 1920, height: int = 1080, fps: int = 30, flip: int = 0) -> str:
    """nvarguscamerasrc → NVMM NV12 → nvvidconv → BGR appsink (Jetson CSI cameras)."""
    return (
        f"nvarguscamerasrc sensor-id={int(sensor_id)} ! "
        f"video/x-raw(memory:NVMM),width={int(width)},height={int(height)},framerate={int(fps)}/1,format=NV12 ! "
        f"nvvidconv flip-method={int(flip)} ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        + appsink(live=True)
    )


def v4l2_pipeline(device: str, *, width: Optional[int] = None, height: Optional[int] = None, fps: Optional[int] = None) -> str:
    """v4l2src → BGR appsink, used when OpenCV has GStreamer (otherwise OpenCV's V4L2 backend reads the device)."""
    caps = ["video/x-raw"]
    if width and height:
        caps.append(f"width={int(width)},height={int(height)}")
    if fps:
        caps.append(f"framerate={int(fps)}/1")
    return (f"v4l2src device={device} do-timestamp=true ! {','.join(caps)} ! videoconvert ! "
            f"video/x-raw,format=BGR ! " + appsink(live=True))


def rtsp_pipeline(url: str, *, codec: str = "h264", latency_ms: int = 200, hardware: bool = True) -> str:
    """rtspsrc over TCP → depay → parse → decoder → BGR appsink.

    ``hardware=True`` uses Jetson's nvv4l2decoder + nvvidconv; otherwise libav's software decoder.
    """
    codec = codec.lower()
    if codec not in ("h264", "h265"):
        raise SourceError(f"unsupported RTSP codec {codec!r}", hint="use codec=h264 or codec=h265")
    depay = "rtph264depay ! h264parse" if codec == "h264" else "rtph265depay ! h265parse"
    if hardware:
        decode = "nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert"
    else:
        decode = f"avdec_{codec} ! videoconvert"
    return (f"rtspsrc location={url} protocols=tcp latency={int(latency_ms)} ! application/x-rtp,media=video ! "
            f"{depay} ! {decode} ! video/x-raw,format=BGR ! " + appsink(live=True))


def parse_sink(uri) -> SinkSpec:
    """``display://0``, ``file://out.mp4`` (or a bare ``*.mp4``/``*.avi`` path), ``null://``,
    ``rtsp://@:8554/live`` (serve an RTSP stream from this device), ``images://out_dir`` (one JPEG per frame)."""
    text = str(uri).strip()
    lower = text.lower()
    if lower.startswith("rtsp://"):
        path, options = _split_query(text)
        return SinkSpec(text, "rtsp", path, options)
    if lower.startswith("images://"):
        path, options = _split_query(text[len("images://"):])
        if not path:
            raise SinkError(f"image sink {text!r} names no folder", hint="use images://out_dir")
        return SinkSpec(text, "images", path, options)
    if lower.startswith("display://"):
        return SinkSpec(text, "display", text[len("display://"):] or "0")
    if lower.startswith("null://") or lower == "null":
        return SinkSpec(text, "null", "")
    if lower.startswith("file://"):
        path, options = _split_query(text[len("file://"):])
        return SinkSpec(text, "file", path, options)
    if "://" not in text and lower.endswith((".mp4", ".avi", ".mkv")):
        return SinkSpec(text, "file", text)
    raise SinkError(f"unknown sink {text!r}",
                    hint="use display://0, file://out.mp4, rtsp://@:8554/live, images://DIR, null:// or a Python callable")


def describe_target(spec: SourceSpec) -> str:
    """A log-safe name for the source (RTSP credentials removed)."""
    if spec.kind in ("rtsp", "http"):
        parts = urlsplit(spec.target)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
    return spec.target
