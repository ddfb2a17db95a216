"""Session fixtures for pipeline tests: a tiny real ONNX model and a real mp4v video (see pipeline_helpers)."""
from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_helpers import build_mean_onnx, write_levels_video


@pytest.fixture(scope="session")
def mean_onnx(tmp_path_factory) -> Path:
    return build_mean_onnx(tmp_path_factory.mktemp("model") / "mean.onnx")


@pytest.fixture(scope="session")
def levels_video(tmp_path_factory) -> Path:
    return write_levels_video(tmp_path_factory.mktemp("video") / "levels.mp4", 60)
