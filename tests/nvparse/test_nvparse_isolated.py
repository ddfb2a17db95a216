"""NVIDIA's parser runs in a child process during packaging and `edgeinfer inspect --verify`.

Regression: TensorRT-RTX crashes a process that has loaded GStreamer (PyGObject's ``Gst``) before it parses or
builds (SIGSEGV or SIGABRT in the parser or the builder's shape probe): pytest died inside the packager with no
message and the staging directory left behind. In a child the parser gets a fresh process whatever the caller
loaded. The scenario runs in its own interpreter here, so that loading GStreamer cannot poison the in-process
parser tests that share this pytest process."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from nvparse_helpers import NEEDS_PARSER, tiny_conv_model

pytestmark = NEEDS_PARSER

SCENARIO = textwrap.dedent('''
    import sys
    from edgeinfer.bundle import open_bundle
    from edgeinfer.packager import package_model
    from edgeinfer.pipeline.gst import gst_available
    from edgeinfer.pipeline.pipeline import Pipeline
    from edgeinfer.runtime.detections import Detections

    if not gst_available():
        sys.exit(77)

    class Recorder:
        backend_name = "recorder"

        def infer_batch(self, frames):
            return [Detections.empty({0: "frame"}) for _ in frames]

    uri = ("gst://videotestsrc num-buffers=12 ! video/x-raw,width=64,height=48 ! videoconvert ! "
           "video/x-raw,format=BGR ! appsink")
    with Pipeline(Recorder(), sources=[uri], telemetry=None, max_frames=12) as p:
        assert len(list(p)) == 12
    out = package_model(sys.argv[1], devices="orin-nano-8gb", precision="fp16", out=sys.argv[2], verify=True)
    verification = open_bundle(out).manifest["verification"]
    assert verification["ok"] and verification["engines_built_ahead_of_time"], verification
    assert verification["artifacts"] and all(a["built"] for a in verification["artifacts"]), verification
    print("verified", len(verification["artifacts"]))
''')


def test_packaging_verifies_after_gstreamer_pipelines_ran_in_the_same_process(tmp_path):
    model = tiny_conv_model(tmp_path / "tiny.onnx")
    proc = subprocess.run([sys.executable, "-c", SCENARIO, str(model), str(tmp_path / "tiny.bundle")],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode == 77:
        pytest.skip("needs PyGObject + GStreamer")
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert "verified" in proc.stdout
