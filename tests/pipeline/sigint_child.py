"""Child process for the Ctrl-C test: iterate a looping file source until SIGINT arrives.

Prints ``running`` once results flow; on KeyboardInterrupt (raised in the main thread by the
default SIGINT handler) the ``with`` block closes the pipeline; then prints the leaked-thread
list and the live thread names as JSON, and exits 130.
"""
import json
import signal
import sys
import threading
from pathlib import Path

# A parent started as a background job (`cmd &` in a script) ignores SIGINT, and an ignored signal stays
# ignored across exec: Python then never installs its KeyboardInterrupt handler. This test sends the
# signal on purpose, so the child takes Ctrl-C as an interactive process does.
signal.signal(signal.SIGINT, signal.default_int_handler)

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_helpers import OrtMeanModel, build_mean_onnx, write_levels_video  # noqa: E402

from edgeinfer.pipeline.pipeline import Pipeline  # noqa: E402

work = Path(sys.argv[1])
model = OrtMeanModel(build_mean_onnx(work / "m.onnx"))
video = write_levels_video(work / "v.mp4", 20)
p = Pipeline(model, sources=[video], loop=True, sink="null://", telemetry=None, join_timeout=5)
try:
    with p:
        for i, _ in enumerate(p):
            if i == 5:
                print("running", flush=True)
except KeyboardInterrupt:
    alive = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(json.dumps({"leaked": p.stats()["leaked_threads"], "alive": alive, "frames": p.stats()["frames_out"]}), flush=True)
    sys.exit(130)
