"""The SLA tuner on real models run by real ONNX Runtime: the knee search on the tiny mean model (a
YOLO needs multi-second samples on a loaded 2-core host), batch limits on the committed demo YOLO ONNX.

The SLA is derived from this machine's measured single-frame latency, so no figure is hard-coded.
"""
from __future__ import annotations

import pytest
from pipeline_helpers import build_mean_onnx

import edgeinfer
from edgeinfer.demo import demo_model_path
from edgeinfer.errors import ConfigError
from edgeinfer.pipeline import bench
from edgeinfer.pipeline.tune import TuneSettings, batch_limit, check_batches, find_knee, tune

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def demo_model():
    with edgeinfer.load(demo_model_path("onnx"), device="cpu", warmup=1) as model:
        yield model


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    path = build_mean_onnx(tmp_path_factory.mktemp("tune") / "mean-b1.onnx", batch=1)
    with edgeinfer.load(path, device="cpu", warmup=1) as model:
        yield model


def test_knee_meets_the_sla_and_a_higher_rate_breaks_it(small_model):
    frames = bench.synthetic_frames(4, size=(320, 240))
    single = bench.measure([small_model], frames, batch=1, max_delay=0.0, closed_loop_n=50)
    sla = 3.0 * single["p95_ms"] + 5.0
    # samples long enough that a queue growing past the capacity shows up as P95 above the SLA
    settings = TuneSettings(sla_p95_ms=sla, duration=max(0.4, 6 * sla / 1000.0), k=2, tolerance=0.3, max_repeats=3,
                            resolution=0.15, max_steps=3)
    seen = []
    result = tune([(None, [small_model])], frames, batches=[1], delays_ms=[0.0], settings=settings,
                  progress=lambda kind, info: seen.append(kind))
    (cand,) = result["candidates"]
    knee, brk = cand["knee"], cand["breaking"]
    assert knee is not None and brk is not None, cand["note"]
    assert knee["p95_ms"] <= sla < brk["p95_ms"] and brk["offered_fps"] > knee["offered_fps"]
    assert knee["meets_sla"] and not brk["meets_sla"] and result["best"] is cand
    for p in cand["points"]:  # every rate is a median over its samples, with their spread
        assert 1 <= p["repeats"] == len(p["p95_samples_ms"]) <= 3
        assert p["p95_spread_ms"][0] <= p["p95_ms"] <= p["p95_spread_ms"][1]
    assert {p["offered_fps"] for p in cand["points"]} >= {knee["offered_fps"], brk["offered_fps"]}
    assert seen[0] == "capacity" and "point" in seen and seen[-1] == "knee"


def test_static_batch_engine_refuses_larger_batches(demo_model):
    limit, engine = batch_limit([demo_model])
    assert limit == 1 and "static batch 1" in engine and "[1, 3, 320, 320]" in engine
    frames = bench.synthetic_frames(2, size=(128, 96))
    settings = TuneSettings(sla_p95_ms=100.0, duration=0.1)
    with pytest.raises(ConfigError, match="cannot benchmark batch 2.*at most 1 frame") as exc:
        tune([(None, [demo_model])], frames, batches=[2], delays_ms=[0.0], settings=settings)
    assert "--batch 1" in exc.value.hint
    usable, skipped = check_batches([1, 2, 4], limit=limit, engine=engine)
    assert usable == [1] and len(skipped) == 2 and skipped[0].startswith("batch 2: ")
    assert check_batches([1, 8], limit=None, engine="dynamic") == ([1, 8], [])


def test_unreachable_sla_reports_no_knee(demo_model):
    frames = bench.synthetic_frames(2, size=(320, 240))
    settings = TuneSettings(sla_p95_ms=0.001, duration=0.3, max_repeats=2, min_frames=3)
    res = find_knee([demo_model], frames, batch=1, max_delay_ms=0.0, settings=settings, capacity=20.0)
    assert res["knee"] is None and res["breaking"]["p95_ms"] > 0.001 and "light load" in res["note"]
    assert len(res["points"]) == 1  # nothing higher is tried once a light load misses


def test_stability_rule():
    assert bench.is_stable([100.0, 20.0, 21.0, 20.5], k=3, tolerance=0.1)
    assert not bench.is_stable([20.0, 21.0], k=3)
    assert not bench.is_stable([20.0, 60.0, 21.0], k=3, tolerance=0.15)
    assert bench.is_stable([0.2, 0.9, 0.5], k=3, tolerance=0.1, floor_ms=1.0)  # sub-millisecond jitter is noise


def test_each_instance_set_is_a_candidate_of_its_own(tmp_path):
    from edgeinfer.pipeline.config import engine_line

    path = build_mean_onnx(tmp_path / "mean-dyn.onnx")  # dynamic batch: no limit
    models = [edgeinfer.load(path, device="cpu", warmup=1) for _ in range(3)]
    try:
        assert batch_limit(models) == (None, "the engine")
        assert engine_line(models[1:]) == "2 x onnxruntime (CPUExecutionProvider) on cpu"
        frames = bench.synthetic_frames(2, size=(128, 96))
        settings = TuneSettings(sla_p95_ms=0.001, duration=0.1, max_repeats=2, min_frames=2)  # unreachable: one rate each
        res = tune([("1", models[:1]), ("2", models[1:])], frames, batches=[1, 2], delays_ms=[0.0], settings=settings)
        got = sorted((c["instances"], c["batch"]) for c in res["candidates"])
        assert got == [("1", 1), ("1", 2), ("2", 1), ("2", 2)] and res["best"] is None and res["skipped"] == []
        assert all(p["instances"] == c["instances"] for c in res["candidates"] for p in c["points"])
    finally:
        for m in models:
            m.close()
