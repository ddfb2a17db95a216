"""Model.prepare / execute / finish (the staged API a pipeline overlaps) on real ONNX Runtime: the same results as
``model(frame)`` with slots interleaved, each slot's buffers its own, and clear errors for misuse."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeinfer
from edgeinfer.errors import ConfigError

DEMO_ONNX = Path(edgeinfer.__file__).parent / "_data" / "demo" / "shapes-yolo11n-320.onnx"


@pytest.fixture(scope="module")
def demo_frames(tmp_path_factory):
    import cv2

    from edgeinfer.demo.video import make_video

    video = make_video(tmp_path_factory.mktemp("v") / "shapes.mp4", frames=6, size=(640, 480), seed=5)
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames.append(frame)


def test_interleaved_slots_give_the_results_of_single_calls(demo_frames):
    with edgeinfer.load(DEMO_ONNX, device="cpu", warmup=0) as model:
        expected = [model(f) for f in demo_frames]
        a, b, c, d = model.stage_slots
        # the pipeline's order: prepare N+2 while N runs and N+1 is submitted behind it, finish N-1 meanwhile
        p0 = model.prepare([demo_frames[0]], slot=a)
        p1 = model.prepare([demo_frames[1]], slot=b)
        model.submit(p0)
        model.submit(p1)
        p2 = model.prepare([demo_frames[2]], slot=c)
        model.collect(p0)
        model.submit(p2)
        p3 = model.prepare([demo_frames[3]], slot=d)
        got = [model.finish(p0)[0]]
        model.collect(p1)
        model.execute(p3)
        got += [model.finish(p1)[0], model.finish(model.collect(p2))[0], model.finish(p3)[0]]
        n = len(model.stage_slots)
        for i, frame in enumerate(demo_frames[4:], start=4):  # slots reused round-robin
            got.append(model.finish(model.execute(model.prepare([frame], slot=model.stage_slots[i % n])))[0])
        inputs = [model.backend.input_buffer(slot=s) for s in model.stage_slots]
    assert sum(len(d) for d in expected) > 0
    for want, have in zip(expected, got):
        np.testing.assert_array_equal(want.xyxy, have.xyxy)
        np.testing.assert_array_equal(want.class_id, have.class_id)
    assert not any(np.shares_memory(x, y) for i, x in enumerate(inputs) for y in inputs[i + 1:])


def test_outputs_of_a_slot_survive_a_run_of_another_slot(demo_frames):
    with edgeinfer.load(DEMO_ONNX, device="cpu", warmup=0) as model:
        a, b = model.stage_slots[:2]
        pa = model.execute(model.prepare([demo_frames[0]], slot=a))
        kept = {k: v.copy() for k, v in pa.outputs.items()}
        model.execute(model.prepare([demo_frames[3]], slot=b))  # a different frame through slot b
        for name, arr in pa.outputs.items():
            np.testing.assert_array_equal(arr, kept[name])


def test_staged_misuse_is_a_clear_error(demo_frames):
    with edgeinfer.load(DEMO_ONNX, device="cpu", warmup=0) as model:
        with pytest.raises(ConfigError, match="not a staging slot"):
            model.prepare([demo_frames[0]], slot=0)  # slot 0 belongs to model(frame) / infer_batch
        with pytest.raises(ConfigError, match="frames"):
            model.prepare(demo_frames[:2], slot=model.stage_slots[0])  # a static batch-1 model takes one
        with pytest.raises(ConfigError, match="execute"):
            model.finish(model.prepare([demo_frames[0]], slot=model.stage_slots[0]))
