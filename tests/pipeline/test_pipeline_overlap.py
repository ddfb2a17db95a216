"""The overlapped inference path (pre / engine / post in three threads, pipeline/overlap.py) on real models and
real videos: the same results as the serial path, order kept, hot swap and failover between two frames, stages
that really overlap, and capture that decodes into the frame slots inference reads."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pipeline_helpers import build_mean_onnx, level, write_levels_video

import edgeinfer
from edgeinfer.demo.video import make_video
from edgeinfer.pipeline.pipeline import Pipeline
from edgeinfer.runtime.detections import Detections

pytestmark = pytest.mark.timeout(120)
STRETCH = "resize=stretch"  # no letterbox padding: the model's output is the frame's own grey level
DEMO_ONNX = Path(edgeinfer.__file__).parent / "_data" / "demo" / "shapes-yolo11n-320.onnx"


@pytest.fixture(scope="module")
def demo_video(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("demo") / "shapes.mp4", frames=24, size=(320, 240), seed=3)


def _boxes(results):
    return {(r.source_id, r.frame_index): (np.round(r.detections.xyxy, 3).tolist(), r.detections.class_id.tolist())
            for r in results}


def _run(model, sources, **kw):
    with Pipeline(model, sources=sources, telemetry=None, **kw) as p:
        results = list(p)
        overlapped = [w.overlapped for w in p._workers]
    return results, overlapped


def test_overlapped_path_gives_the_serial_results_on_a_real_detector(demo_video):
    sources = {"a": str(demo_video), "b": str(demo_video)}
    serial, flags = _run(str(DEMO_ONNX), sources, batch=3, overlap=False, load_kwargs={"device": "cpu"})
    assert flags == [False]
    overlapped, flags = _run(str(DEMO_ONNX), sources, batch=3, load_kwargs={"device": "cpu"})
    assert flags == [True]
    for sid in sources:  # every frame once, in capture order, per source
        assert [r.frame_index for r in overlapped if r.source_id == sid] == list(range(24))
    assert sum(len(r.detections) for r in serial) > 24  # the detector sees the shapes (not a vacuous comparison)
    assert _boxes(overlapped) == _boxes(serial)


def _mean(result) -> float:
    return float(np.asarray(result.detections["output0"]).ravel()[0]) * 255.0


@pytest.mark.parametrize("batch_axis", ["N", 1])
def test_order_and_frame_identity_with_batches_and_two_sources(tmp_path, batch_axis):
    """Dynamic batch (one chunk per hub batch) and a static batch-1 model (each batch split into chunks)."""
    onnx = build_mean_onnx(tmp_path / "mean.onnx", batch=batch_axis)
    videos = {"x": write_levels_video(tmp_path / "x.mp4", 30), "y": write_levels_video(tmp_path / "y.mp4", 30)}
    with edgeinfer.load(onnx, device="cpu", preprocess=STRETCH) as model:
        results, flags = _run(model, {k: str(v) for k, v in videos.items()}, batch=4, max_delay_ms=20)
    assert flags == [True]
    for sid in videos:
        mine = [r for r in results if r.source_id == sid]
        assert [r.frame_index for r in mine] == list(range(30))
        assert all(abs(_mean(r) - level(r.frame_index)) < 12 for r in mine)  # each result is its own frame
    assert max(r.batch_size for r in results) > 1


class BreaksAfter:
    """A stand-in engine over the real ONNX Runtime backend that raises after ``ok`` runs (a lost GPU/DLA)."""

    def __init__(self, backend, ok: int) -> None:
        self._be, self.ok, self.runs = backend, ok, 0

    def __getattr__(self, name):
        return getattr(self._be, name)

    def infer(self, *, slot: int = 0):
        self.runs += 1
        if self.runs > self.ok:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return self._be.infer(slot=slot)


class AsyncBreaksAfter(BreaksAfter):
    """The same over an asynchronous engine (submit, later wait: TensorRT's shape): the run happens at wait time,
    from the slot's own input buffer, and the failure surfaces there, as a CUDA error does at the stream sync."""

    def __init__(self, backend, ok: int) -> None:
        super().__init__(backend, ok)
        self.submitted, self.ahead = set(), 0

    def submit(self, *, slot: int = 0, skip_h2d=()):
        self.ahead += bool(self.submitted)  # another slot still on the "device"
        self.submitted.add(slot)

    def wait(self, *, slot: int = 0):
        time.sleep(0.005)  # device time: lets the pre thread get the next chunk ready, as on a real engine
        self.submitted.discard(slot)
        return self.infer(slot=slot)


def _named(model, model_id):
    model.model_id, model.model_version = model_id, model_id[-1]
    return model


def _swap_run(onnx, video, new_model, policy, *, before=15, after=15):
    results, lock, got, want = [], threading.Lock(), threading.Event(), [before]

    def on_result(r):
        with lock:
            results.append(r)
            if len(results) >= want[0]:
                got.set()

    old = _named(edgeinfer.load(onnx, device="cpu", preprocess=STRETCH), "mean@aaaa")
    p = Pipeline(old, sources=[str(video)], loop=True, telemetry=None, on_result=on_result)
    with p:
        assert got.wait(60)
        assert p._workers[0].overlapped
        report = p.swap_model(new_model, policy=policy)
        with lock:
            want[0] = len(results) + after
            got.clear()
        assert got.wait(60)
    old.close()
    return results, report


def _switches(results):
    return [(a.model_id, b.model_id) for a, b in zip(results, results[1:]) if a.model_id != b.model_id]


def _every_frame_once(results, n=40):
    assert [r.frame_index for r in results] == list(range(len(results)))
    assert all(abs(_mean(r) - level(r.frame_index % n)) < 12 for r in results)


@pytest.mark.parametrize("engine", [BreaksAfter, AsyncBreaksAfter])
def test_hot_swap_and_rollback_switch_between_two_frames_when_overlapped(tmp_path, engine):
    from edgeinfer.fleet import HealthPolicy

    onnx, video = build_mean_onnx(tmp_path / "m.onnx"), write_levels_video(tmp_path / "v.mp4", 40)
    new = _named(edgeinfer.load(onnx, device="cpu", preprocess=STRETCH), "mean@bbbb")
    results, report = _swap_run(onnx, video, new, HealthPolicy(frames=10))
    assert report.status == "committed", report.reason
    _every_frame_once(results)
    assert _switches(results) == [("mean@aaaa", "mean@bbbb")]

    bad = _named(edgeinfer.load(onnx, device="cpu", preprocess=STRETCH), "mean@cccc")
    bad.backend = engine(bad.backend, ok=3)
    results, report = _swap_run(onnx, video, bad, HealthPolicy(frames=30))
    assert report.status == "rolled_back" and "failed at run time" in report.reason
    _every_frame_once(results)  # the failing chunk and those prepared after it re-ran on the old model
    assert _switches(results) == [("mean@aaaa", "mean@cccc"), ("mean@cccc", "mean@aaaa")]
    assert sum(r.model_id == "mean@cccc" for r in results) == 3


@pytest.mark.parametrize("engine", [BreaksAfter, AsyncBreaksAfter])
def test_failover_to_the_fallback_keeps_every_frame_when_overlapped(tmp_path, engine):
    onnx, video = build_mean_onnx(tmp_path / "m.onnx"), write_levels_video(tmp_path / "v.mp4", 40)
    broken = edgeinfer.load(onnx, device="cpu", preprocess=STRETCH)
    broken.backend = engine(broken.backend, ok=5)
    assert broken.asynchronous == (engine is AsyncBreaksAfter)
    with Pipeline(broken, sources=[str(video)], telemetry=None, fallback=lambda: edgeinfer.load(onnx, device="cpu", preprocess=STRETCH)) as p:
        results = list(p)
        stats = p.stats()
        assert p._workers[0].overlapped
    _every_frame_once(results)  # each frame's own grey level: no slot was reused while its run was pending
    assert len(results) == 40 and stats["failover"]["active"] and len(stats["failover"]["events"]) == 1


class TimedStages:
    """The staged protocol with real work (resize into a slot, a real ONNX Runtime run plus a 4 ms wait that
    releases the GIL like a CUDA sync, decode) recording when each step enters and leaves."""

    stage_slots = (1, 2, 3)
    stage_batch = 1

    def __init__(self, onnx) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        self.inputs = {s: np.zeros((1, 3, 32, 32), np.float32) for s in self.stage_slots}
        self.events = {"pre": [], "engine": [], "post": []}
        self.backend_name = "stand-in"

    def _timed(self, stage, fn):
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.events[stage].append((t0, time.perf_counter()))

    def prepare(self, frames, *, slot):
        import cv2

        def pre():
            self.inputs[slot][0] = cv2.resize(frames[0], (32, 32)).transpose(2, 0, 1) / 255.0
            return {"slot": slot, "shape": frames[0].shape}
        return self._timed("pre", pre)

    def execute(self, prepared):
        def engine():
            prepared["out"] = self.session.run(None, {"images": self.inputs[prepared["slot"]]})[0]
            time.sleep(0.004)
            return prepared
        return self._timed("engine", engine)

    def finish(self, prepared):
        h, w = prepared["shape"][:2]
        return self._timed("post", lambda: [Detections([[0, 0, w - 1, h - 1]], [float(prepared["out"][0, 0])], [0],
                                                       {0: "frame"}, (h, w))])

    def infer_batch(self, frames):  # the serial path: the same three steps in turn
        slot = self.stage_slots[0]
        return [self.finish(self.execute(self.prepare([f], slot=slot)))[0] for f in frames]


def _overlaps(events, stage, later):
    """How many engine runs had ``stage`` of a later chunk (later=True: pre of N+1, N+2...) or of an earlier one
    (later=False: post of N-1...) running at the same time."""
    def meet(a, b):
        return a[0] < b[1] and b[0] < a[1]
    other, engine = events[stage], events["engine"]
    return sum(1 for k, run in enumerate(engine)
               if any(meet(run, other[j]) for j in (range(k + 1, len(other)) if later else range(k))))


def test_pre_and_post_processing_overlap_the_engine(tmp_path):
    onnx, video = build_mean_onnx(tmp_path / "m.onnx"), write_levels_video(tmp_path / "v.mp4", 30)
    counts = {}
    for overlap in (False, True):
        model = TimedStages(onnx)
        results, flags = _run(model, [str(video)], overlap=overlap)
        assert flags == [overlap] and [r.frame_index for r in results] == list(range(30))
        assert len(model.events["engine"]) == 30
        counts[overlap] = (_overlaps(model.events, "pre", True), _overlaps(model.events, "post", False))
    assert counts[False] == (0, 0)  # the serial path never overlaps: the check can fail
    assert min(counts[True]) >= 1, counts


class _Recorder:
    """A model that keeps the frame arrays it was given (to check they are the capture slots themselves)."""

    backend_name = "recorder"

    def __init__(self) -> None:
        self.seen = []

    def infer_batch(self, frames):
        self.seen.extend(frames)
        return [Detections.empty({0: "frame"}) for _ in frames]


def test_capture_decodes_in_place_into_the_slots_inference_reads(tmp_path):
    video = write_levels_video(tmp_path / "v.mp4", 20)
    recorder = _Recorder()
    seen = recorder.seen

    with Pipeline(recorder, sources=[str(video)], telemetry=None) as p:
        results = list(p)
        capture = p._captures[0]
        slots = capture._pool.arrays
    assert len(results) == 20 and len(seen) == 20
    assert capture.slot_copies.value == 0  # even the first frame was decoded into a slot, none copied in
    assert all(any(f is s and np.shares_memory(f, s) for s in slots) for f in seen)
    assert len({id(f) for f in seen}) <= len(slots)  # slots are reused, nothing allocated per frame


@pytest.mark.skipif(not __import__("edgeinfer.pipeline.gst", fromlist=["gst_available"]).gst_available(),
                    reason="needs PyGObject + GStreamer")
def test_gstreamer_appsink_frames_land_in_slots_without_an_extra_copy():
    """appsink caps are known once the pipeline prerolls: the slots are sized before the first read and each
    mapped buffer is copied once, straight into a slot."""
    recorder = _Recorder()
    seen = recorder.seen

    uri = ("gst://videotestsrc num-buffers=12 ! video/x-raw,width=64,height=48 ! videoconvert ! "
           "video/x-raw,format=BGR ! appsink")  # pip OpenCV has no GStreamer: PyGObject reads it
    with Pipeline(recorder, sources=[uri], telemetry=None, max_frames=12) as p:
        results = list(p)
        capture = p._captures[0]
        slots = capture._pool.arrays
    assert len(results) == 12 and capture.slot_copies.value == 0
    assert all(any(f is s for s in slots) for f in seen)


@pytest.mark.parametrize("asynchronous", [True, False])
def test_an_asynchronous_engine_gets_the_next_chunk_before_the_last_one_is_collected(demo_video, asynchronous):
    """TensorRT-shaped engine (submit on a stream, then wait): the engine thread queues chunk N+1 behind N, so the
    device runs them back to back; a synchronous engine (or the serial path) leaves the device idle between runs."""
    from edgeinfer.runtime.standin import StandInEngine

    counts = {}
    for overlap in (False, True):
        model = edgeinfer.load(str(DEMO_ONNX), device="cpu", warmup=0)
        engine = model.backend = StandInEngine(model.backend, engine_ms=25.0, asynchronous=asynchronous)
        assert model.asynchronous == asynchronous
        results, flags = _run(model, [str(demo_video)], overlap=overlap)
        model.close()
        assert flags == [overlap] and [r.frame_index for r in results] == list(range(24))
        assert sum(len(r.detections) for r in results) > 0  # the one real run's boxes, decoded for every frame
        counts[overlap] = (engine.jobs, engine.queued_behind, engine.device_busy)
    assert counts[False][:2] == (24, 0), counts  # one job at a time: none ever waits behind another
    if asynchronous:
        # pre-processing a 320x240 frame takes ~1 ms of a 25 ms run: all but the first few start back to back
        assert counts[True][0] == 24 and counts[True][1] >= 16, counts
        assert counts[True][2] > counts[False][2], counts
    else:
        assert counts[True][:2] == (24, 0), counts
