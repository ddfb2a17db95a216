"""Sinks that need GStreamer through PyGObject: an RTSP server, and H.264 MP4 files.

``rtsp://@:8554/live`` serves the annotated stream the way jetson-inference's ``videoOutput``
does: GStreamer's RTSP server on this device (``@`` = every interface, or a given address),
Jetson's hardware H.264 encoder where present, software x264 elsewhere. A client connects with
any RTSP player (``ffplay rtsp://DEVICE:8554/live``). Frames are pushed only while a client
watches, and never block the sink thread: a congested client loses frames, the pipeline none.

Example:
    >>> RtspServerSink.parse_bind("rtsp://@:8554/live")
    ('0.0.0.0', 8554, '/live')
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import numpy as np

from ..errors import SinkError
from .gst import PYGOBJECT_HINT, _gst, has_element, mp4_launch, push_frame, rtsp_launch
from .sinks import Sink

log = logging.getLogger(__name__)


def _rtsp_server_module():
    gi = __import__("gi")
    try:
        gi.require_version("GstRtspServer", "1.0")
    except ValueError:
        raise SinkError("GStreamer's RTSP server library is not installed",
                        hint="sudo apt install gir1.2-gst-rtsp-server-1.0 (Debian/Ubuntu/JetPack)") from None
    from gi.repository import GstRtspServer

    return GstRtspServer


class RtspServerSink(Sink):
    """Serve annotated frames at ``rtsp://HOST:PORT/PATH``; one mount per source with several sources."""

    name = "rtsp"

    def __init__(self, uri: str, *, fps: float = 30.0, multi_source: bool = False,
                 hardware: Optional[bool] = None) -> None:
        self._Gst = _gst()
        server_mod = _rtsp_server_module()
        from gi.repository import GLib

        self.address, self.port, self.path = self.parse_bind(uri)
        self._fps = float(fps)
        self._hardware = has_element("nvv4l2h264enc") if hardware is None else hardware
        if not self._hardware and not has_element("x264enc"):
            raise SinkError("no H.264 encoder for the RTSP output (neither nvv4l2h264enc nor x264enc)",
                            hint="sudo apt install gstreamer1.0-plugins-ugly (x264enc), or run on a Jetson")
        self._multi = multi_source
        self._server = server_mod.RTSPServer()
        self._server.set_address(self.address)
        self._server.set_service(str(self.port))
        self._server_mod = server_mod
        self._mounts: Dict[str, Tuple[Any, Tuple[int, int]]] = {}  # source -> (factory, (w, h))
        self._appsrcs: Dict[str, list] = {}
        self._lock = threading.Lock()
        self._context = GLib.MainContext.new()
        self._loop = GLib.MainLoop.new(self._context, False)
        self._source_id = self._server.attach(self._context)
        if self._source_id == 0:
            raise SinkError(f"cannot listen on {self.address}:{self.port} for the RTSP output",
                            hint="pick a free port (rtsp://@:8555/live) or stop whatever uses it")
        self._thread = threading.Thread(target=self._loop.run, name="rtsp-server", daemon=True)
        self._thread.start()
        self.frames = 0
        self.dropped = 0
        log.info("RTSP output at rtsp://%s:%d%s", self.address, self.port, self.path)

    @staticmethod
    def parse_bind(uri: str) -> Tuple[str, int, str]:
        """``rtsp://@:8554/live`` → ('0.0.0.0', 8554, '/live')."""
        parts = urlsplit(uri)
        host = parts.netloc.rsplit(":", 1)[0] if ":" in parts.netloc else parts.netloc
        host = host.lstrip("@") or "0.0.0.0"
        try:
            port = parts.port or 8554
        except ValueError:
            raise SinkError(f"bad port in RTSP output {uri!r}", hint="use rtsp://@:8554/live") from None
        path = parts.path if parts.path not in ("", "/") else "/live"
        return host, port, path

    def url(self, source_id: Optional[str] = None) -> str:
        """Where a client connects (for ``@``/0.0.0.0, 127.0.0.1 from this machine)."""
        host = "127.0.0.1" if self.address == "0.0.0.0" else self.address
        return f"rtsp://{host}:{self.port}{self._mount_path(source_id or '')}"

    def _mount_path(self, source_id: str) -> str:
        return f"{self.path}/{source_id}" if self._multi and source_id else self.path

    def _mount(self, source_id: str, width: int, height: int) -> None:
        factory = self._server_mod.RTSPMediaFactory()
        factory.set_launch(rtsp_launch(width=width, height=height, fps=self._fps, hardware=self._hardware))
        factory.set_shared(True)
        factory.connect("media-configure", self._on_media, source_id)
        self._server.get_mount_points().add_factory(self._mount_path(source_id), factory)
        self._mounts[source_id] = (factory, (width, height))

    def _on_media(self, _factory, media, source_id: str) -> None:
        appsrc = media.get_element().get_child_by_name("src")
        with self._lock:
            self._appsrcs.setdefault(source_id, []).append(appsrc)
        media.connect("unprepared", self._on_unprepared, source_id, appsrc)

    def _on_unprepared(self, _media, source_id: str, appsrc) -> None:
        with self._lock:
            if appsrc in self._appsrcs.get(source_id, []):
                self._appsrcs[source_id].remove(appsrc)

    def write(self, image: Optional[np.ndarray], result) -> None:
        h, w = image.shape[:2]
        sid = result.source_id
        entry = self._mounts.get(sid)
        if entry is None:
            self._mount(sid, w, h)
        elif entry[1] != (w, h):
            raise SinkError(f"source {sid} changed resolution to {w}x{h} mid-stream",
                            hint="the RTSP output keeps the first frame's size; restart the run")
        with self._lock:
            targets = list(self._appsrcs.get(sid, []))
        for appsrc in targets:
            if not push_frame(appsrc, image, self._Gst):
                self.dropped += 1
        self.frames += 1

    def close(self) -> None:
        with self._lock:
            for srcs in self._appsrcs.values():
                for appsrc in srcs:
                    appsrc.emit("end-of-stream")
            self._appsrcs.clear()
        self._loop.quit()
        self._thread.join(2.0)


class GstFileSink(Sink):
    """``file://out.mp4?codec=h264``: H.264 MP4 through GStreamer (hardware encoder on a Jetson).

    Written to a hidden temporary name and renamed on close, like the OpenCV file sink.
    """

    name = "file"

    def __init__(self, path: str, *, fps: float = 30.0, multi_source: bool = False,
                 hardware: Optional[bool] = None) -> None:
        from ._atomic import temp_path_for

        self._Gst = _gst()
        self._temp_path_for = temp_path_for
        self._path = path
        self._fps = float(fps)
        self._multi = multi_source
        self._hardware = has_element("nvv4l2h264enc") if hardware is None else hardware
        if not self._hardware and not has_element("x264enc"):
            raise SinkError("no H.264 encoder (neither nvv4l2h264enc nor x264enc)",
                            hint="sudo apt install gstreamer1.0-plugins-ugly, or use ?codec=mp4v")
        self._writers: Dict[str, Tuple[Any, Any, str, str]] = {}
        self._counts: Dict[str, int] = {}
        self.frames = 0

    def _open(self, source_id: str, image: np.ndarray):
        from .sinks import per_source_path

        final = per_source_path(self._path, source_id, multi=self._multi)
        tmp = self._temp_path_for(final)
        h, w = image.shape[:2]
        pipeline = self._Gst.parse_launch(mp4_launch(tmp, width=w, height=h, fps=self._fps, hardware=self._hardware))
        appsrc = pipeline.get_by_name("src")
        pipeline.set_state(self._Gst.State.PLAYING)
        entry = (pipeline, appsrc, tmp, final)
        self._writers[source_id] = entry
        return entry

    def write(self, image: Optional[np.ndarray], result) -> None:
        entry = self._writers.get(result.source_id) or self._open(result.source_id, image)
        self._counts[result.source_id] = count = self._counts.get(result.source_id, -1) + 1
        if not push_frame(entry[1], image, self._Gst, index=count, fps=self._fps):
            raise SinkError(f"the H.264 encoder refused a frame for {entry[3]}", hint=PYGOBJECT_HINT)
        self.frames += 1

    def close(self) -> None:
        Gst = self._Gst
        failed = []
        for pipeline, appsrc, tmp, final in self._writers.values():
            appsrc.emit("end-of-stream")
            # mp4mux writes its index on EOS: wait for it to reach the sink before renaming.
            msg = pipeline.get_bus().timed_pop_filtered(30 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
            pipeline.set_state(Gst.State.NULL)
            if msg is not None and msg.type == Gst.MessageType.EOS:
                os.replace(tmp, final)
                continue
            if os.path.exists(tmp):
                os.unlink(tmp)
            failed.append(final if msg is None else f"{final}: {msg.parse_error()[0].message}")
        self._writers.clear()
        if failed:
            raise SinkError(f"H.264 file not finished: {failed[0]}", hint="check disk space, or use ?codec=mp4v")
