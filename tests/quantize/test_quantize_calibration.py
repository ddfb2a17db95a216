"""Calibration inputs from folders, globs, data.yaml, video and .npy; bad sets are clear QuantizeErrors."""
from __future__ import annotations

import numpy as np
import pytest

from edgeinfer.demo import make_dataset, make_video
from edgeinfer.errors import EdgeInferError, QuantizeError
from edgeinfer.model import ModelInfo, PreprocessSpec, TensorSpec
from edgeinfer.quantize import load_calibration_images
from edgeinfer.runtime.preprocess import preprocess_batch

INFO = ModelInfo(inputs=[TensorSpec("images", [1, 3, 64, 64])], outputs=[TensorSpec("output0", [1, 7, 84])],
                 task="detect", output_layout="yolov8", names={0: "a", 1: "b", 2: "c"}, preprocess=PreprocessSpec())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds"), n_train=12, n_val=4, n_test=0, imgsz=96, seed=1)


def test_folder_glob_and_yaml_match_the_runtime_preprocessing(dataset):
    import cv2

    folder = load_calibration_images(dataset / "images" / "train", INFO, max_images=5)
    assert folder.shape == (5, 3, 64, 64) and folder.dtype == np.float32
    assert 0.0 <= folder.min() and folder.max() <= 1.0
    files = sorted((dataset / "images" / "train").iterdir())
    expected, _ = preprocess_batch([cv2.imread(str(files[0]))], INFO.preprocess, (64, 64))
    np.testing.assert_array_equal(folder[0], expected[0])  # same code path as the device
    assert len(load_calibration_images(str(dataset / "images" / "**" / "*.*"), INFO, max_images=100)) == 16
    assert len(load_calibration_images(dataset / "data.yaml", INFO)) == 12  # the train split


def test_video_frames_are_sampled_evenly(tmp_path):
    video = make_video(tmp_path / "v.mp4", frames=30, size=(160, 120), fps=10, seed=0)
    calib = load_calibration_images(video, INFO, max_images=6)
    assert calib.shape == (6, 3, 64, 64)
    assert not np.array_equal(calib[0], calib[-1])  # first and last sampled frames differ


def test_npy_is_validated(tmp_path):
    good = tmp_path / "c.npy"
    np.save(good, np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32))
    assert load_calibration_images(good, INFO, max_images=2).shape == (2, 3, 64, 64)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 64, 64, 3), np.float32))  # NHWC: wrong
    with pytest.raises(QuantizeError, match=r"expected \(N, 3, 64, 64\)"):
        load_calibration_images(bad, INFO)
    ints = tmp_path / "ints.npy"
    np.save(ints, np.zeros((2, 3, 64, 64), np.uint8))
    with pytest.raises(QuantizeError, match="float32"):
        load_calibration_images(ints, INFO)


def test_npy_follows_the_model_layout(tmp_path, dataset):
    """An NHWC model (MTCNN's O-Net style, [N,48,48,3]) takes NHWC .npy inputs and refuses NCHW ones;
    image folders come out in its layout too."""
    nhwc = ModelInfo(inputs=[TensorSpec("input", [1, 48, 48, 3])], outputs=[TensorSpec("prob", [1, 2])],
                     task="generic", output_layout="generic", names={}, preprocess=PreprocessSpec(layout="NHWC"))
    good = tmp_path / "nhwc.npy"
    np.save(good, np.random.default_rng(0).random((4, 48, 48, 3), dtype=np.float32))
    assert load_calibration_images(good, nhwc).shape == (4, 48, 48, 3)
    nchw = tmp_path / "nchw.npy"
    np.save(nchw, np.zeros((4, 3, 48, 48), np.float32))
    with pytest.raises(QuantizeError, match=r"expected \(N, 48, 48, 3\) \(NHWC"):
        load_calibration_images(nchw, nhwc)
    assert load_calibration_images(dataset / "images" / "train", nhwc, max_images=3).shape == (3, 48, 48, 3)


def test_empty_missing_and_undecodable_sets(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(QuantizeError, match="no calibration images found") as err:
        load_calibration_images(tmp_path / "empty", INFO)
    assert err.value.hint
    with pytest.raises(QuantizeError, match="no calibration images found"):
        load_calibration_images(tmp_path / "missing_dir", INFO)
    with pytest.raises(QuantizeError, match="not found"):
        load_calibration_images(tmp_path / "missing.npy", INFO)
    with pytest.raises(QuantizeError, match="not found"):
        load_calibration_images(tmp_path / "missing.mp4", INFO)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"not an image")
    with pytest.raises(QuantizeError, match="could be decoded"):
        load_calibration_images(junk, INFO)
    dynamic = ModelInfo(inputs=[TensorSpec("images", [1, 3, "h", "w"])], outputs=[TensorSpec("o", [1, 5])])
    with pytest.raises(EdgeInferError, match="dynamic"):
        load_calibration_images(tmp_path / "empty", dynamic)
