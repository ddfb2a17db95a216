"""Frame slots, the hub's drop/back-pressure policies and Triton-style micro-batching."""
from __future__ import annotations

import threading
import time

import pytest

from edgeinfer.errors import InternalError
from edgeinfer.pipeline.capture import ReconnectPolicy
from edgeinfer.pipeline.frames import FramePool
from edgeinfer.pipeline.hub import FrameHub
from edgeinfer.pipeline.results import DropQueue

pytestmark = pytest.mark.timeout(60)


def _frame(pool, sid, i):
    ref = pool.acquire(timeout=1.0)
    ref.source_id, ref.index, ref.capture_mono = sid, i, time.perf_counter()
    return ref


def test_slot_returns_to_pool_only_at_zero_references():
    pool = FramePool(shape=(2, 2, 3), slots=1)
    ref = pool.acquire(timeout=0)
    assert pool.acquire(timeout=0.05) is None  # the only slot is in use: never handed out twice
    ref.retain()
    ref.release()
    assert pool.free == 0
    ref.release()
    assert pool.free == 1
    with pytest.raises(InternalError):
        ref.release()


def test_live_channel_drops_oldest_and_counts():
    hub, pool = FrameHub(), FramePool(shape=(2, 2, 3), slots=8)
    hub.add_source("cam", live=True, capacity=2)
    for i in range(5):
        assert hub.put(_frame(pool, "cam", i))
    assert hub.drops("cam") == 3 and pool.free == 6  # dropped frames went back to the pool
    batch = hub.get_batch(max_batch=8, max_delay=0, timeout=0.1)
    assert [r.index for r in batch] == [3, 4] and [r.seq for r in batch] == [0, 1]


def test_file_channel_blocks_instead_of_dropping():
    hub, pool = FrameHub(), FramePool(shape=(2, 2, 3), slots=8)
    hub.add_source("file", live=False, capacity=2)
    assert hub.put(_frame(pool, "file", 0)) and hub.put(_frame(pool, "file", 1))
    t0 = time.perf_counter()
    assert not hub.put(_frame(pool, "file", 2), timeout=0.2)  # full: waited, did not drop
    assert time.perf_counter() - t0 >= 0.19 and hub.drops("file") == 0
    done = []
    t = threading.Thread(target=lambda: done.append(hub.put(_frame(pool, "file", 3), timeout=5)))
    t.start()
    time.sleep(0.1)
    assert not done
    hub.get_batch(max_batch=1, max_delay=0, timeout=1)
    t.join(5)
    assert done == [True]


def test_batch_leaves_when_full_or_after_max_delay():
    hub, pool = FrameHub(), FramePool(shape=(2, 2, 3), slots=16)
    hub.add_source("a", live=False, capacity=8)
    for i in range(4):
        hub.put(_frame(pool, "a", i))
    t0 = time.perf_counter()
    assert len(hub.get_batch(max_batch=4, max_delay=5.0, timeout=1)) == 4
    assert time.perf_counter() - t0 < 1.0  # full batch: no waiting for the delay
    hub.put(_frame(pool, "a", 4))
    t0 = time.perf_counter()
    batch = hub.get_batch(max_batch=4, max_delay=0.3, timeout=2)
    waited = time.perf_counter() - t0
    assert len(batch) == 1 and 0.25 <= waited < 1.5  # partial batch waits max_delay, then goes


def test_sources_are_served_round_robin_and_end_cleanly():
    hub, pool = FrameHub(), FramePool(shape=(2, 2, 3), slots=16)
    for sid in "ab":
        hub.add_source(sid, live=False, capacity=4)
        for i in range(3):
            hub.put(_frame(pool, sid, i))
        hub.source_done(sid)
    batch = hub.get_batch(max_batch=4, max_delay=10.0, timeout=1)
    assert [r.source_id for r in batch] == ["a", "b", "a", "b"]
    assert len(hub.get_batch(max_batch=4, max_delay=10.0, timeout=1)) == 2  # all done: no delay wait
    assert hub.get_batch(max_batch=4, max_delay=0, timeout=1) is None


def test_close_wakes_waiters_and_releases_frames():
    hub, pool = FrameHub(), FramePool(shape=(2, 2, 3), slots=4)
    hub.add_source("a", live=False, capacity=1)
    hub.put(_frame(pool, "a", 0))
    results = []
    t = threading.Thread(target=lambda: results.append(hub.put(_frame(pool, "a", 1), timeout=30)))
    t.start()
    time.sleep(0.1)
    hub.close()
    t.join(5)
    assert results == [False] and pool.free == 4 and hub.get_batch(max_batch=1, max_delay=0, timeout=1) is None


def test_drop_queue_policies():
    dropped = []
    q = DropQueue(capacity=2, on_drop=dropped.append)
    for i in range(4):
        q.put(i, lossless=False)
    assert dropped == [0, 1] and q.drops == 2
    assert not q.put(9, lossless=True, timeout=0.05)
    q.close()
    assert (q.get(timeout=0), q.get(timeout=0)) == (2, 3)
    with pytest.raises(EOFError):
        q.get(timeout=0)


def test_backoff_is_exponential_capped_and_jittered():
    import random

    policy = ReconnectPolicy(initial_s=1.0, max_s=10.0, factor=2.0, jitter=0.2)
    rng = random.Random(1)
    delays = [policy.delay(n, rng=rng) for n in range(8)]
    for n, d in enumerate(delays):
        base = min(10.0, 2.0 ** n)
        assert base * 0.8 <= d <= base * 1.2
    assert len({round(d, 6) for d in delays[4:]}) > 1  # jitter spreads capped delays


def test_bench_load_generator_measures_and_surfaces_model_errors(mean_onnx):
    import numpy as np
    from pipeline_helpers import FailingModel, OrtMeanModel

    from edgeinfer.errors import BackendError
    from edgeinfer.pipeline import bench

    frames = bench.synthetic_frames(4, size=(128, 96))
    res = bench.measure([OrtMeanModel(mean_onnx)], frames, batch=4, max_delay=0.05, arrivals=np.zeros(16))
    assert res["frames"] == 16 and res["mean_batch"] > 1 and res["p50_ms"] <= res["p99_ms"]
    t0 = time.perf_counter()
    with pytest.raises(BackendError, match="illegal memory access"):
        bench.measure([FailingModel(mean_onnx, ok_batches=1)], frames, batch=1, max_delay=0, arrivals=np.zeros(64), capacity=2)
    assert time.perf_counter() - t0 < 20
