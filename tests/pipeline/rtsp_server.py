"""A tiny RTSP server on 127.0.0.1 for reconnect tests (GStreamer's gst-rtsp-server through PyGObject).

Runs under the *system* Python (``/usr/bin/python3``, which has Debian's ``gi`` + GStreamer RTSP
server; a venv does not): ``/usr/bin/python3 rtsp_server.py PORT [WIDTHxHEIGHT] [FPS]``.
Prints ``ready`` once it listens; serves ``rtsp://127.0.0.1:PORT/test`` until killed.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port = sys.argv[1]
width, height = (sys.argv[2] if len(sys.argv) > 2 else "320x240").split("x")
fps = sys.argv[3] if len(sys.argv) > 3 else "15"
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 "
    f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/test", factory)
if server.attach(None) == 0:
    print("bind failed", flush=True)
    sys.exit(1)
print("ready", flush=True)
GLib.MainLoop().run()
