"""ByteTrack: stable ids through crossings and occlusions (MOTA / IDF1 / ID switches with motmetrics)."""
from __future__ import annotations

import numpy as np
import pytest
from scenes import make_scene, score

from edgeinfer.analytics import ByteTrackConfig, ByteTracker, make_tracker
from edgeinfer.errors import ConfigError
from edgeinfer.runtime.detections import Detections
from edgeinfer.runtime.task_results import Poses

pytest.importorskip("motmetrics")


def _run(tracker, dets):
    out = []
    for boxes, scores, cls in dets:
        r = tracker.update(Detections(boxes, scores, cls, {0: "obj"}))
        out.append((r.track_id, r.xyxy))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_bytetrack_keeps_ids_through_crossings_and_occlusions(seed):
    gt, dets = make_scene(seed=seed)
    crossings = sum(1 for f in gt for i, (_, a) in enumerate(f) for _, b in f[i + 1:]
                    if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]))
    assert crossings > 50  # the scene really has objects passing each other
    m = score(gt, _run(ByteTracker(frame_rate=30), dets))
    assert m["mota"] > 0.95 and m["idf1"] > 0.95 and m["id_switches"] <= 3, m


def test_low_score_boxes_keep_occluded_tracks():
    """One object walks behind another: its score drops to 0.15 for 10 frames. ByteTrack's second
    association keeps its id; a tracker that ignores low boxes would start a new one."""
    t = ByteTracker(frame_rate=30)
    ids = []
    for f in range(40):
        a = [100 + 3 * f, 100, 140 + 3 * f, 180]
        score_a = 0.15 if 15 <= f < 25 else 0.9
        r = t.update(Detections([a, [200, 100, 240, 180]], [score_a, 0.9], [0, 0]))
        ids.append(dict(zip(r.track_id.tolist(), r.xyxy[:, 0].tolist())))
    first = [k for k, x in ids[0].items() if x < 150][0]
    assert all(first in frame for frame in ids), "the occluded object lost its id"


def test_lost_track_lifetime_follows_frame_rate():
    """track_buffer is 30 frames at 30 FPS: ~1 s. At 10 FPS the same second is 10 frames."""
    for rate, gap, same in ((30, 20, True), (10, 20, False), (10, 8, True)):
        t = ByteTracker(frame_rate=rate)
        first = t.update(Detections([[0, 0, 40, 80]], [0.9], [0])).track_id[0]
        for _ in range(gap):
            t.update(Detections.empty())
        again = t.update(Detections([[0, 0, 40, 80]], [0.9], [0]))
        again = t.update(Detections([[0, 0, 40, 80]], [0.9], [0]))  # a new track is confirmed on its 2nd hit
        assert (again.track_id[0] == first) == same, (rate, gap)


def test_task_extras_follow_their_rows_and_per_class_tracks_never_merge():
    t = ByteTracker(config=ByteTrackConfig(per_class=True))
    kp = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    for _ in range(3):
        r = t.update(Poses([[0, 0, 50, 90], [2, 0, 52, 90]], [0.9, 0.8], [0, 1], keypoints=kp))
    assert isinstance(r, Poses) and len(set(r.track_id.tolist())) == 2
    order = np.argsort(r.class_id)
    np.testing.assert_array_equal(r.keypoints[order], kp)
    assert [d["track_id"] for d in r.to_dict()["detections"]] == r.track_id.tolist()


def test_class_flicker_keeps_the_track():
    """The detector calls the same box class 0, then 2, then 0: one track, not three (default matching)."""
    t = ByteTracker()
    ids = [t.update(Detections([[10 + 2 * f, 10, 60 + 2 * f, 90]], [0.9], [c])).track_id.tolist()
           for f, c in enumerate([0, 0, 2, 0, 2, 0])]
    assert ids == [[1]] * 6


def test_bad_tracker_options():
    with pytest.raises(ConfigError, match="unknown tracker"):
        make_tracker("sort")
    with pytest.raises(ConfigError, match="outside 0..1"):
        ByteTrackConfig(match_thresh=3)
    with pytest.raises(ConfigError, match="bad tracker option"):
        make_tracker("bytetrack", buffer=3)
