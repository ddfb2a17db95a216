"""CPU pre-processing: agreement with Ultralytics' LetterBox, round-trip of boxes, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from edgeinfer.errors import ConfigError
from edgeinfer.model.info import PreprocessSpec
from edgeinfer.runtime.preprocess import Preprocessor, letterbox_geometry, preprocess_batch

SHAPES = [
    ((480, 640), (320, 320), False),
    ((1080, 1920), (640, 640), False),
    ((1080, 1920), (640, 640), True),
    ((333, 517), (640, 480), False),
    ((7, 3000), (320, 320), False),
    ((640, 640), (640, 640), False),
    ((500, 375), (640, 640), True),
    ((101, 99), (64, 96), False),
]


@pytest.fixture(scope="module")
def ultralytics_letterbox(ultralytics_offline):
    return pytest.importorskip("ultralytics.data.augment").LetterBox


@pytest.mark.parametrize("src_hw,dst_hw,auto", SHAPES)
def test_matches_ultralytics_letterbox(ultralytics_letterbox, src_hw, dst_hw, auto):
    rng = np.random.default_rng(sum(src_hw))
    frame = rng.integers(0, 256, (*src_hw, 3), dtype=np.uint8)
    ref = ultralytics_letterbox(dst_hw, auto=auto, stride=32)(image=frame)
    ref = ref[..., ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
    pre = Preprocessor(PreprocessSpec(), dst_hw, dynamic=auto)
    out = np.full((3, *pre.geometry(src_hw).dst_hw), np.nan, np.float32)  # poisoned: every element must be written
    pre(frame, out=out)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_boxes_round_trip_and_clip():
    t = letterbox_geometry((1080, 1920), (640, 640))
    boxes = np.array([[100, 200, 400, 800], [0, 0, 1920, 1080]], np.float32)
    back = t.to_original(t.to_input(boxes))
    np.testing.assert_allclose(back, boxes, atol=1e-3)
    outside = t.to_input(np.array([[-50, -50, 2500, 1500]], np.float32))
    np.testing.assert_allclose(t.to_original(outside), [[0, 0, 1920, 1080]])


def test_mean_std_and_bgr_order():
    spec = PreprocessSpec(color="BGR", scale=1.0, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    frame = np.zeros((4, 4, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 50, 60, 70
    out = np.empty((3, 4, 4), np.float32)
    Preprocessor(spec, (4, 4))(frame, out=out)
    np.testing.assert_allclose(out[:, 0, 0], [(50 - 10) / 2, (60 - 20) / 4, (70 - 30) / 5])


def test_no_new_scratch_after_first_frame():
    pre = Preprocessor(PreprocessSpec(), (320, 320))
    out = np.empty((3, 320, 320), np.float32)
    frame = np.zeros((480, 640, 3), np.uint8)
    pre(frame, out=out)
    scratch = {k: id(v) for k, v in pre._scratch.items()}
    pre(frame, out=out)
    assert {k: id(v) for k, v in pre._scratch.items()} == scratch


def test_preprocess_batch_shapes():
    batch, ts = preprocess_batch([np.zeros((10, 20, 3), np.uint8), np.zeros((20, 10, 3), np.uint8)],
                                 PreprocessSpec(), (32, 32))
    assert batch.shape == (2, 3, 32, 32)
    assert (ts[0].pad_top, ts[0].pad_left, ts[1].pad_top, ts[1].pad_left) == (8, 0, 0, 8)


@pytest.mark.parametrize("frame,match", [
    (np.zeros((10, 10, 3), np.float32), "dtype is float32"),
    (np.zeros((10, 10), np.uint8), r"shape is \(10, 10\)"),
    (np.zeros((10, 10, 4), np.uint8), "expected \\(height, width, 3\\)"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    ([[1, 2, 3]], "numpy array"),
])
def test_bad_frames_raise_clear_errors(frame, match):
    pre = Preprocessor(PreprocessSpec(), (32, 32))
    with pytest.raises(ConfigError, match=match) as info:
        pre(frame, out=np.empty((3, 32, 32), np.float32))
    assert info.value.hint


def test_wrong_output_buffer():
    pre = Preprocessor(PreprocessSpec(), (32, 32))
    with pytest.raises(ConfigError, match="output buffer"):
        pre(np.zeros((8, 8, 3), np.uint8), out=np.empty((3, 16, 16), np.float32))
