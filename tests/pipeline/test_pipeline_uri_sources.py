"""Source/sink URIs, capture pipeline strings and the errors users see (no camera or Jetson needed)."""
from __future__ import annotations

import numpy as np
import pytest

from edgeinfer.errors import SinkError, SourceError
from edgeinfer.pipeline import sinks as sinks_mod
from edgeinfer.pipeline.sources import SourceUnavailable, open_reader, opencv_has_gstreamer
from edgeinfer.pipeline.uri import (
    csi_pipeline,
    describe_target,
    parse_sink,
    parse_source,
    rtsp_pipeline,
    v4l2_pipeline,
)

pytestmark = pytest.mark.timeout(60)


def test_parse_source_kinds(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(b"x")
    assert parse_source(str(video)).kind == "file" and not parse_source(str(video)).live
    assert parse_source(f"file://{video}").target == str(video)
    assert parse_source(str(tmp_path / "imgs")).kind == "images"
    assert parse_source(str(tmp_path / "imgs" / "*.jpg")).kind == "images"
    assert (parse_source(0).kind, parse_source("1").target, parse_source("v4l2:///dev/video2").target) == ("v4l2", "1", "/dev/video2")
    csi = parse_source("csi://1?width=1280&height=720")
    assert csi.kind == "csi" and csi.target == "1" and csi.live and csi.options == {"width": "1280", "height": "720"}
    assert parse_source("rtsp://user:pw@10.0.0.5:554/stream").live
    assert parse_source("gst://videotestsrc ! videoconvert ! appsink").target == "videotestsrc ! videoconvert ! appsink"


@pytest.mark.parametrize("uri, message", [
    ("", "empty source"),
    ("rtmp://x/y", "unknown source scheme 'rtmp'"),
    ("csi://front", "needs a sensor number"),
    ("v4l2://", "names no device"),
    ("gst://videotestsrc ! fakesink", "has no appsink"),
    ("/no/such/video.mp4", "does not exist"),
    ("/no/such/*.jpg", "no files match"),
])
def test_parse_source_errors_name_the_problem_and_fix(uri, message):
    with pytest.raises(SourceError, match=message) as info:
        parse_source(uri)
    assert info.value.hint


def test_pipeline_strings():
    csi = csi_pipeline(0, width=1280, height=720, fps=60, flip=2)
    assert csi.startswith("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=60/1,format=NV12")
    assert "nvvidconv flip-method=2" in csi and csi.endswith("appsink drop=true max-buffers=1 sync=false")
    hw = rtsp_pipeline("rtsp://cam/1", hardware=True)
    assert "protocols=tcp" in hw and "rtph264depay ! h264parse ! nvv4l2decoder" in hw and "drop=true" in hw
    sw = rtsp_pipeline("rtsp://cam/1", codec="h265", hardware=False)
    assert "rtph265depay ! h265parse ! avdec_h265" in sw and "nvv4l2decoder" not in sw
    with pytest.raises(SourceError, match="codec"):
        rtsp_pipeline("rtsp://cam/1", codec="mjpeg")
    v4l2 = v4l2_pipeline("/dev/video0", width=640, height=480, fps=30)
    assert v4l2.startswith("v4l2src device=/dev/video0") and "width=640,height=480,framerate=30/1" in v4l2
    assert describe_target(parse_source("rtsp://admin:secret@10.0.0.5:554/s1")) == "rtsp://10.0.0.5:554/s1"


def test_rtsp_backend_choice():
    from edgeinfer.pipeline.sources import _without_edgeinfer_options, rtsp_backend

    assert rtsp_backend("", jetson=True, has_gstreamer=True) == "gstreamer"  # hardware decode on Jetson
    assert rtsp_backend("", jetson=True, has_gstreamer=False) == "ffmpeg"  # pip OpenCV on a Jetson
    assert rtsp_backend("", jetson=False, has_gstreamer=True) == "ffmpeg"
    assert rtsp_backend("gstreamer", jetson=False, has_gstreamer=True) == "gstreamer"
    with pytest.raises(SourceError, match="unknown RTSP backend"):
        rtsp_backend("vlc", jetson=False, has_gstreamer=False)
    assert parse_source("rtsp://h/s?backend=ffmpeg&codec=h265").options == {"backend": "ffmpeg", "codec": "h265"}
    assert _without_edgeinfer_options("rtsp://h/s?channel=1&backend=ffmpeg") == "rtsp://h/s?channel=1"
    assert _without_edgeinfer_options("rtsp://h/s?backend=ffmpeg") == "rtsp://h/s"


def test_gstreamer_detection_reads_build_information():
    assert opencv_has_gstreamer("  Video I/O:\n    GStreamer:                   YES (1.20.3)\n")
    assert not opencv_has_gstreamer("  Video I/O:\n    GStreamer:                   NO\n")


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer; the error path is for builds without it")
@pytest.mark.parametrize("uri", ["csi://0", "gst://videotestsrc ! videoconvert ! appsink"])
def test_gstreamer_sources_without_gstreamer_say_so(uri, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_gi(name, *args, **kwargs):  # this machine without PyGObject, as on a plain pip install
        if name == "gi" or name.startswith("gi."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gi)
    monkeypatch.setattr("edgeinfer.pipeline.gst.is_available", lambda module: False)
    with pytest.raises(SourceError, match="need GStreamer: this OpenCV has none and PyGObject is missing") as info:
        open_reader(parse_source(uri))
    assert "JetPack" in info.value.hint and "PyGObject" in info.value.hint
    assert not isinstance(info.value, SourceUnavailable)


def test_missing_camera_is_retryable_with_a_hint():
    with pytest.raises(SourceUnavailable, match="/dev/video97 does not exist") as info:
        open_reader(parse_source("v4l2:///dev/video97"))
    assert "v4l2-ctl" in info.value.hint
    with pytest.raises(SourceError, match="not an integer"):
        open_reader(parse_source("csi://0?width=wide"))


def test_rtsp_unreachable_is_retryable():
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        open_reader(parse_source("rtsp://127.0.0.1:9/none?backend=ffmpeg"), timeout_s=1.0)


def test_sink_uris_and_display_errors(tmp_path):
    assert parse_sink("display://0").kind == "display"
    assert parse_sink("file://out.mp4").target == "out.mp4" and parse_sink("out.avi").kind == "file"
    assert parse_sink("null://").kind == "null"
    with pytest.raises(SinkError, match="unknown sink"):
        parse_sink("rtmp://x")
    assert "no GUI" in sinks_mod.gui_problem("  GUI:   NONE\n", env={})
    assert "DISPLAY" in sinks_mod.gui_problem("  GUI:   QT5\n", env={})
    assert sinks_mod.gui_problem("  GUI:   GTK3\n", env={"DISPLAY": ":0"}) is None
    with pytest.raises(SinkError, match="does not exist"):
        sinks_mod.make_sink(f"file://{tmp_path}/missing/out.mp4")


def test_display_sink_on_this_headless_machine_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="display sink unavailable") as info:
        sinks_mod.make_sink("display://0")
    assert "file://out.mp4" in info.value.hint


def test_image_reader_reads_into_the_given_buffer(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.full((8, 8, 3), 77, np.uint8))
    reader = open_reader(parse_source(str(tmp_path)))
    out = np.zeros((8, 8, 3), np.uint8)
    assert reader.read(out) is out and out[0, 0, 0] == 77 and reader.read(out) is None
