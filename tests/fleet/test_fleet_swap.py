"""Pipeline.swap_model on real ONNX Runtime models and a real video: one switch frame, no frame lost or
repeated, automatic rollback on run-time errors and on latency, refusal by shadow comparison."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from pipeline_helpers import FailingModel, OrtMeanModel, build_mean_onnx, level, mean_of, write_levels_video  # noqa: E402

from edgeinfer.fleet import HealthPolicy  # noqa: E402
from edgeinfer.pipeline.pipeline import Pipeline  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("swap")
    return build_mean_onnx(d / "mean.onnx"), write_levels_video(d / "levels.mp4", 40)


def _named(model, model_id):
    model.model_id, model.model_version = model_id, model_id[-1]
    return model


def _run_with_swap(assets, new_model, policy, *, before=15, after=15, **kw):
    onnx, video = assets
    results, lock, got = [], threading.Lock(), threading.Event()

    def on_result(r):
        with lock:
            results.append(r)
            if len(results) >= want[0]:
                got.set()

    want = [before]
    old = _named(OrtMeanModel(onnx), "mean@aaaa")
    p = Pipeline(old, sources=[video], loop=True, telemetry=None, on_result=on_result, **kw)
    with p:
        assert got.wait(60)
        report = p.swap_model(new_model, policy=policy)
        with lock:
            want[0] = len(results) + after
            got.clear()
        assert got.wait(60)
        assert p.error is None
    return results, report, p.stats()


def _check_every_frame_once_in_order(results):
    idx = [r.frame_index for r in results]
    assert idx == list(range(len(idx))), "a frame was dropped, repeated or reordered"
    assert all(abs(mean_of(r) - level(r.frame_index % 40)) < 12 for r in results)  # each result is its own frame


def _switches(results):
    return [(a.model_id, b.model_id, b.frame_index) for a, b in zip(results, results[1:]) if a.model_id != b.model_id]


def test_swap_switches_between_two_frames(assets):
    new = _named(OrtMeanModel(assets[0]), "mean@bbbb")
    results, report, stats = _run_with_swap(assets, new, HealthPolicy(frames=10))
    assert report.status == "committed", report.reason
    _check_every_frame_once_in_order(results)
    assert _switches(results) == [("mean@aaaa", "mean@bbbb", report.first_frames["0"])]
    assert stats["model"]["model_id"] == "mean@bbbb"
    assert [s["status"] for s in stats["model"]["swaps"]] == ["committed"]
    assert all(r.to_record()["model_id"] == r.model_id for r in results)


def test_new_model_failing_at_run_time_rolls_back_without_losing_a_frame(assets):
    bad = _named(FailingModel(assets[0], ok_batches=3), "mean@cccc")
    results, report, _ = _run_with_swap(assets, bad, HealthPolicy(frames=30))
    assert report.status == "rolled_back" and "failed at run time" in report.reason
    _check_every_frame_once_in_order(results)  # the failing batch re-ran on the old model
    switches = _switches(results)
    assert [(a, b) for a, b, _ in switches] == [("mean@aaaa", "mean@cccc"), ("mean@cccc", "mean@aaaa")]
    assert sum(r.model_id == "mean@cccc" for r in results) == 3


def test_slow_new_model_rolls_back_on_latency(assets):
    slow = _named(OrtMeanModel(assets[0], delay=0.6), "mean@dddd")
    results, report, _ = _run_with_swap(assets, slow, HealthPolicy(frames=3, latency_ratio=2.0, latency_slack_ms=5))
    assert report.status == "rolled_back" and "latency P95" in report.reason, report
    _check_every_frame_once_in_order(results)
    assert results[-1].model_id == "mean@aaaa"


def test_shadow_comparison_refuses_a_model_that_disagrees(assets):
    class Blind(OrtMeanModel):  # runs fine, sees nothing
        def infer_batch(self, frames):
            from edgeinfer.runtime.detections import Detections

            return [Detections.empty({0: "frame"}) for _ in frames]

    blind = _named(Blind(assets[0]), "mean@eeee")
    results, report, _ = _run_with_swap(assets, blind, HealthPolicy(frames=5, shadow_frames=8), shadow_frames=8)
    assert report.status == "refused" and "agree" in report.reason
    assert report.health["shadow_agreement"] == 0.0
    assert {r.model_id for r in results} == {"mean@aaaa"}
    _check_every_frame_once_in_order(results)


def test_swap_event_goes_to_the_uplink(assets):
    class ListUplink:
        def __init__(self):
            self.records = []

        def put(self, record):
            self.records.append(record)
            return True

        def stats(self):
            return {}

    up = ListUplink()
    new = _named(OrtMeanModel(assets[0]), "mean@ffff")
    results, report, _ = _run_with_swap(assets, new, HealthPolicy(frames=5), uplink=up)
    events = [r for r in up.records if r.get("event") == "model_swap"]
    assert len(events) == 1 and events[0]["status"] == "committed" and events[0]["model_id"] == "mean@ffff"
    assert events[0]["first_frames"] == report.first_frames
    frames = [r for r in up.records if "frame_index" in r]
    assert {r["model_id"] for r in frames} == {"mean@aaaa", "mean@ffff"}
