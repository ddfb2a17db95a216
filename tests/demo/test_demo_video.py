"""The demo video: readable by OpenCV, right frame count, and truth that matches the pixels."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgeinfer.demo import load_video_truth, make_video, truth_path
from edgeinfer.errors import ConfigError

FRAMES, SIZE = 24, (320, 240)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("vid") / "demo.mp4", frames=FRAMES, size=SIZE, fps=15, seed=0)


def _read_all(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return frames, fps


def test_video_is_readable_with_the_right_frames(video):
    frames, fps = _read_all(video)
    assert len(frames) == FRAMES
    assert frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert fps == pytest.approx(15, abs=0.01)
    assert not np.array_equal(frames[0], frames[-1])  # things move


def test_truth_sidecar_describes_every_frame(video):
    truth = load_video_truth(video)
    assert truth_path(video).name == "demo.truth.json"
    assert truth["frames"] == FRAMES == len(truth["boxes"])
    assert (truth["width"], truth["height"]) == SIZE
    assert truth["names"] == ["rect", "circle", "triangle"]
    for per_frame in truth["boxes"]:
        assert per_frame, "every frame shows at least one shape"
        for b in per_frame:
            x1, y1, x2, y2 = b["xyxy"]
            assert 0 <= x1 < x2 <= SIZE[0] and 0 <= y1 < y2 <= SIZE[1]
            assert b["class_id"] in (0, 1, 2) and 0.0 <= b["visible"] <= 1.0
    first = {b["track_id"]: b["xyxy"] for b in truth["boxes"][0]}
    last = {b["track_id"]: b["xyxy"] for b in truth["boxes"][-1]}
    assert any(first[k] != last[k] for k in first.keys() & last.keys()), "shapes must move"


def test_truth_boxes_sit_on_flat_shape_colour(video):
    """Inside a fully visible truth box the centre is a flat fill, unlike a box shifted away from it."""
    frames, _ = _read_all(video)
    truth = load_video_truth(video)
    inside, shifted = [], []
    for frame, boxes in zip(frames[::4], truth["boxes"][::4]):
        for b in boxes:
            if b["visible"] < 0.99 or b["class_id"] == 2:  # triangle box centres can sit on an edge
                continue
            x1, y1, x2, y2 = (int(v) for v in b["xyxy"])
            cx, cy, w = (x1 + x2) // 2, (y1 + y2) // 2, x2 - x1
            inside.append(frame[cy - 3:cy + 4, cx - 3:cx + 4].reshape(-1, 3).astype(np.float32).std(axis=0).max())
            sx = cx + w if cx + w + 4 < SIZE[0] else cx - w
            if 4 <= sx:
                crop = frame[cy - 3:cy + 4, sx - 3:sx + 4].reshape(-1, 3).astype(np.float32)
                shifted.append(np.abs(crop.mean(axis=0) - frame[cy, cx].astype(np.float32)).max())
    assert len(inside) >= 5
    assert np.median(inside) < 12  # flat fill + sensor noise + codec
    assert np.median(shifted) > 20  # one box-width away is not the same colour


def test_same_seed_same_truth_other_seed_differs(video, tmp_path):
    again = make_video(tmp_path / "again.mp4", frames=FRAMES, size=SIZE, fps=15, seed=0)
    other = make_video(tmp_path / "other.mp4", frames=FRAMES, size=SIZE, fps=15, seed=1)
    assert load_video_truth(again)["boxes"] == load_video_truth(video)["boxes"]
    assert load_video_truth(other)["boxes"] != load_video_truth(video)["boxes"]
    json.loads(truth_path(other).read_text())  # valid JSON on disk


@pytest.mark.parametrize("kwargs", [{"frames": 0}, {"size": (100, 31)}, {"fps": 0}])
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        make_video(tmp_path / "x.mp4", **kwargs)


def test_wrong_suffix_and_missing_truth_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="must end in"):
        make_video(tmp_path / "x.txt", frames=2)
    with pytest.raises(ConfigError, match="no ground truth"):
        load_video_truth(tmp_path / "nothing.mp4")
    assert not list(tmp_path.iterdir())  # nothing half-written
