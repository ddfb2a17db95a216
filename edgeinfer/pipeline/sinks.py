"""Sinks: on-screen display, annotated video file, null, Python callback; and the sink thread.

The sink thread owns drawing: it copies each frame into its own scratch buffer (the pooled
frame slot is shared and must stay unmodified), draws, and hands the picture to every sink.
Its input queue is bounded and drops the oldest item when full (counted), so a slow sink
never stalls capture or inference.

Example:
    >>> sink = make_sink("null://")
    >>> type(sink).__name__
    'NullSink'
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .._deps import require
from ..errors import SinkError
from ..telemetry.latency import LatencyRecorder
from ._atomic import temp_path_for
from .draw import draw_detections
from .results import DropQueue, FrameResult
from .uri import parse_sink

log = logging.getLogger(__name__)


class Sink:
    """Base class: ``write(image, result)`` gets the annotated BGR frame (None when frames are off)."""

    needs_frame = True
    name = "sink"

    def write(self, image: Optional[np.ndarray], result: FrameResult) -> None:
        raise SinkError(f"{type(self).__name__} cannot write")

    def close(self) -> None:
        """Flush and release."""


class NullSink(Sink):
    """Discards everything (for benchmarks and headless runs)."""

    needs_frame = False
    name = "null"

    def write(self, image: Optional[np.ndarray], result: FrameResult) -> None:
        return None


class CallbackSink(Sink):
    """Calls ``fn(result, annotated_frame)`` in the sink thread."""

    name = "callback"

    def __init__(self, fn: Callable[[FrameResult, Optional[np.ndarray]], Any]) -> None:
        self._fn = fn

    def write(self, image: Optional[np.ndarray], result: FrameResult) -> None:
        self._fn(result, image)


def gui_problem(build_info: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> Optional[str]:
    """Why ``cv2.imshow`` cannot work here (no GUI build, no display), or None."""
    if build_info is None:
        build_info = require("cv2", feature="display").getBuildInformation()
    env = os.environ if env is None else env
    gui_line = [line for line in build_info.splitlines() if line.strip().startswith("GUI:")]
    if not gui_line or gui_line[0].split(":", 1)[1].strip().upper() in ("NONE", "NO", ""):
        return "this OpenCV has no GUI support (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "no display: DISPLAY is not set (headless session or ssh without -X)"
    return None


class DisplaySink(Sink):
    """``display://0``: one window per source through ``cv2.imshow``; 'q' or Esc asks the pipeline to stop."""

    name = "display"

    def __init__(self, *, title: str = "edgeinfer", on_quit: Optional[Callable[[], None]] = None) -> None:
        problem = gui_problem()
        if problem:
            raise SinkError(f"display sink unavailable: {problem}",
                            hint="use --sink file://out.mp4 or null:// on headless devices, or install a GUI build of OpenCV")
        self._cv2 = require("cv2")
        self._title = title
        self.on_quit = on_quit

    def write(self, image: Optional[np.ndarray], result: FrameResult) -> None:
        self._cv2.imshow(f"{self._title} [{result.source_id}]", image)
        if self._cv2.waitKey(1) & 0xFF in (ord("q"), 27) and self.on_quit is not None:
            self.on_quit()

    def close(self) -> None:
        self._cv2.destroyAllWindows()


def per_source_path(path: str, source_id: str, *, multi: bool) -> str:
    """``out.mp4`` for one source; ``out_<source>.mp4`` when several sources share one file sink."""
    if not multi:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}_{source_id}{ext}"


class FileSink(Sink):
    """``file://out.mp4``: annotated video (mp4v), one file per source (``out_<source>.mp4`` with several).

    Written to a temporary file in the same folder and moved into place on close, so a crash
    never leaves a half-written file under the final name.
    """

    name = "file"

    def __init__(self, path: str, *, fps: float = 30.0, fourcc: str = "mp4v", multi_source: bool = False) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise SinkError(f"output folder {folder!r} does not exist", hint="create it first or pick another path")
        self._cv2 = require("cv2", feature="video writing")
        self._path = path
        self._fps = float(fps)
        self._fourcc = fourcc
        self._multi = multi_source
        self._writers: Dict[str, Tuple[Any, str, str]] = {}  # source -> (writer, tmp, final)
        self.frames = 0

    def _final_path(self, source_id: str) -> str:
        return per_source_path(self._path, source_id, multi=self._multi)

    def _writer(self, source_id: str, image: np.ndarray):
        entry = self._writers.get(source_id)
        if entry is None:
            final = self._final_path(source_id)
            tmp = temp_path_for(final)
            h, w = image.shape[:2]
            writer = self._cv2.VideoWriter(tmp, self._cv2.VideoWriter_fourcc(*self._fourcc), self._fps, (w, h))
            if not writer.isOpened():
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise SinkError(f"cannot open a {self._fourcc} video writer for {final}",
                                hint="use an .mp4 or .avi path (pip OpenCV has no H.264 encoder; mp4v and MJPG work)")
            entry = (writer, tmp, final)
            self._writers[source_id] = entry
        return entry[0]

    def write(self, image: Optional[np.ndarray], result: FrameResult) -> None:
        self._writer(result.source_id, image).write(image)
        self.frames += 1

    def close(self) -> None:
        for writer, tmp, final in self._writers.values():
            writer.release()
            os.replace(tmp, final)
        self._writers.clear()


class ImageFolderSink(Sink):
    """``images://out_dir``: one JPEG (or ``?ext=png``) per annotated frame.

    Named after the input image for image-folder sources, else ``<source>_<frame index>``; each
    file is written under a temporary name and renamed, so a reader never sees half a picture.
    """

    name = "images"

    def __init__(self, folder: str, *, ext: str = "jpg") -> None:
        ext = ext.lower().lstrip(".")
        if ext not in ("jpg", "jpeg", "png", "bmp", "webp"):
            raise SinkError(f"unsupported image format {ext!r} for the image sink", hint="use ?ext=jpg or ?ext=png")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create output folder {folder!r}: {exc.strerror}",
                            hint="pick a writable folder") from None
        self._cv2 = require("cv2", feature="image writing")
        self._folder = folder
        self._ext = ext
        self.frames = 0

    def path_for(self, result: FrameResult) -> str:
        """Where ``result``'s picture goes."""
        if result.frame_name:
            stem = os.path.splitext(result.frame_name)[0]
            return os.path.join(self._folder, f"{stem}.{self._ext}")
        return os.path.join(self._folder, f"{result.source_id}_{int(result.frame_index):06d}.{self._ext}")

    def write(self, image: Optional[np.ndarray], result: FrameResult) -> None:
        final = self.path_for(result)
        tmp = temp_path_for(final)
        try:
            if not self._cv2.imwrite(tmp, image):
                raise SinkError(f"cannot write {final}", hint="check disk space and permissions")
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.frames += 1


def _file_sink(spec, *, fps: float, multi_source: bool) -> Sink:
    """``codec=auto`` (default): H.264 through GStreamer where an encoder exists, else OpenCV's mp4v."""
    folder = os.path.dirname(os.path.abspath(spec.target))
    if not os.path.isdir(folder):
        raise SinkError(f"output folder {folder!r} does not exist", hint="create it first or pick another path")
    from ..fleet.signals import clean_stale_temps

    clean_stale_temps(spec.target)  # a killed run's hidden .tmp.mp4 (SIGKILL, power loss) is swept at start
    codec = spec.options.get("codec", spec.options.get("fourcc", "auto")).lower()
    is_mp4 = spec.target.lower().endswith((".mp4", ".mkv"))
    if codec in ("auto", "h264") and is_mp4:
        from . import gst

        if gst.has_element("nvv4l2h264enc") or gst.has_element("x264enc"):
            from .sinks_gst import GstFileSink

            return GstFileSink(spec.target, fps=fps, multi_source=multi_source)
        if codec == "h264":
            raise SinkError("no H.264 encoder here for file output",
                            hint=f"{gst.PYGOBJECT_HINT}; plus gstreamer1.0-plugins-ugly (x264enc); or use ?codec=mp4v")
        log.info("no H.264 encoder through GStreamer here: writing %s as MPEG-4 Part 2 (mp4v)", spec.target)
    fourcc = "mp4v" if codec in ("auto", "h264") else codec
    if len(fourcc) != 4:
        raise SinkError(f"codec {codec!r} is not auto, h264 or a four-character code", hint="use ?codec=mp4v or ?codec=MJPG")
    return FileSink(spec.target, fps=fps, fourcc=fourcc, multi_source=multi_source)


def make_sink(uri_or_callable: Any, *, multi_source: bool = False, on_quit: Optional[Callable[[], None]] = None) -> Sink:
    """A Sink from a URI (``display://0``, ``file://out.mp4``, ``rtsp://@:8554/live``, ``images://DIR``,
    ``null://``), a callable or a Sink."""
    if isinstance(uri_or_callable, Sink):
        return uri_or_callable
    if callable(uri_or_callable):
        return CallbackSink(uri_or_callable)
    spec = parse_sink(uri_or_callable)
    if spec.kind == "null":
        return NullSink()
    if spec.kind == "display":
        return DisplaySink(on_quit=on_quit)
    try:
        fps = float(spec.options.get("fps", 30))
    except ValueError:
        raise SinkError(f"fps={spec.options.get('fps')!r} in {spec.uri!r} is not a number", hint="use e.g. ?fps=30") from None
    if spec.kind == "images":
        return ImageFolderSink(spec.target, ext=spec.options.get("ext", "jpg"))
    if spec.kind == "rtsp":
        from .sinks_gst import RtspServerSink

        return RtspServerSink(spec.target, fps=fps, multi_source=multi_source)
    return _file_sink(spec, fps=fps, multi_source=multi_source)


class SinkRunner:
    """The sink thread: draw once per frame, feed every sink, never block the producer."""

    def __init__(self, sinks: List[Sink], *, capacity: int, on_error: Callable[[BaseException], None], draw: bool = True) -> None:
        self.sinks = sinks
        self.queue = DropQueue(capacity=capacity, on_drop=self._release_item)
        self.latency = LatencyRecorder()
        self.written = 0
        self._draw = draw
        self._on_error = on_error
        self._scratch: Optional[np.ndarray] = None
        self._thread = threading.Thread(target=self._run, name="sink", daemon=True)
        self.needs_frame = any(s.needs_frame for s in sinks)

    @staticmethod
    def _release_item(item) -> None:
        ref = item[1]
        if ref is not None:
            ref.release()

    def start(self) -> None:
        self._thread.start()

    def offer(self, result: FrameResult, ref, *, lossless: bool = False, stop: Optional[threading.Event] = None) -> None:
        """Queue a result (with a retained frame slot, or None).

        Default: drop the oldest when full (a slow sink never stalls inference). ``lossless``
        waits for space instead (offline file → file jobs that must write every frame).
        """
        item = (result, ref)
        if not lossless:
            if not self.queue.put(item, lossless=False):
                self._release_item(item)
            return
        # At least one bounded attempt even when stopping: a graceful stop (Ctrl-C, SIGTERM) still writes
        # every frame that has a result, so the MP4 and the uplink records agree.
        while True:
            if self.queue.put(item, lossless=True, timeout=0.25):
                return
            if self.queue.closed or (stop is not None and stop.is_set()):
                break
        self._release_item(item)

    def close(self) -> None:
        self.queue.close()

    def join(self, timeout: float) -> bool:
        if self._thread.ident is None:  # never started (start-up failed)
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _picture(self, result: FrameResult, ref) -> Optional[np.ndarray]:
        if ref is None:
            return None
        try:
            if self._scratch is None or self._scratch.shape != ref.array.shape:
                self._scratch = np.empty_like(ref.array)
            np.copyto(self._scratch, ref.array)
        finally:
            ref.release()
        if self._draw:
            draw_detections(self._scratch, result.detections, label=f"{result.source_id} #{result.frame_index}",
                            overlay=getattr(result, "overlay", None))
        return self._scratch

    def _run(self) -> None:
        try:
            while True:
                try:
                    result, ref = self.queue.get(timeout=0.5)
                except TimeoutError:
                    continue
                except EOFError:
                    return
                t0 = time.perf_counter()
                image = self._picture(result, ref)
                for sink in self.sinks:
                    sink.write(image, result)
                self.written += 1
                self.latency.record(time.perf_counter() - t0)
        except BaseException as exc:  # a failing sink must stop the pipeline with its error, not die silently
            for item in self.queue.drain():
                self._release_item(item)
            self._on_error(exc)

    def close_sinks(self) -> None:
        for item in self.queue.drain():
            self._release_item(item)
        errors = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # close every sink even if one fails; report the first failure
                errors.append(exc)
        if errors:
            raise SinkError(f"closing sink failed: {errors[0]}", hint="check disk space and permissions") from errors[0]
