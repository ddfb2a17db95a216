"""The synthetic dataset: deterministic, well-formed YOLO labels that match the drawn pixels."""
from __future__ import annotations

import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edgeinfer.demo import CLASS_NAMES, make_dataset, read_yolo_labels, render_scene
from edgeinfer.errors import ConfigError

SMALL = {"n_train": 4, "n_val": 2, "n_test": 2, "imgsz": 320}


def _label_bytes(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / "labels").rglob("*.txt"))}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("ds0"), seed=0, **SMALL)


def test_layout_and_data_yaml(dataset):
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        assert len(list((dataset / "images" / split).glob("*.jpg"))) == n
        assert len(list((dataset / "labels" / split).glob("*.txt"))) == n
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    assert Path(data["path"]).is_absolute() and Path(data["path"]) == dataset
    assert data["names"] == {0: "rect", 1: "circle", 2: "triangle"}
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val", "images/test")
    # Files are readable by others (mkstemp alone would leave them 0600).
    assert (dataset / "labels" / "train" / "00000.txt").stat().st_mode & stat.S_IRGRP


def test_same_seed_gives_byte_identical_labels_and_other_seed_differs(dataset, tmp_path):
    again = make_dataset(tmp_path / "again", seed=0, **SMALL)
    other = make_dataset(tmp_path / "other", seed=1, **SMALL)
    assert _label_bytes(again) == _label_bytes(dataset)
    assert (again / "images/train/00000.jpg").read_bytes() == (dataset / "images/train/00000.jpg").read_bytes()
    assert _label_bytes(other) != _label_bytes(dataset)
    # Splits are different scenes, not copies of each other.
    assert (dataset / "labels/val/00000.txt").read_bytes() != (dataset / "labels/train/00000.txt").read_bytes()


def test_labels_are_in_range_and_cover_all_classes(tmp_path):
    root = make_dataset(tmp_path, n_train=20, n_val=1, n_test=1, imgsz=320, seed=3)
    classes = set()
    for path in (root / "labels" / "train").glob("*.txt"):
        rows = [line.split() for line in path.read_text().splitlines()]
        assert 1 <= len(rows) <= 6
        for cls, *vals in rows:
            classes.add(int(cls))
            cx, cy, w, h = map(float, vals)
            assert 0 < w <= 1 and 0 < h <= 1
            assert -1e-6 <= cx - w / 2 and cx + w / 2 <= 1 + 1e-6
            assert -1e-6 <= cy - h / 2 and cy + h / 2 <= 1 + 1e-6
            assert w * 320 >= 8 and h * 320 >= 8
    assert classes == set(range(len(CLASS_NAMES)))


def test_label_files_agree_with_render_scene(dataset):
    _, boxes = render_scene([0, 0, 1], imgsz=320)
    parsed = read_yolo_labels(dataset / "labels/train/00001.txt", width=320, height=320)
    assert [b[0] for b in parsed] == [b[0] for b in boxes]
    np.testing.assert_allclose([b[1:] for b in parsed], [b[1:] for b in boxes], atol=1e-3)


def _shape_extent(img: np.ndarray, box) -> tuple:
    """Bounding box of the flat-coloured blob at the centre of ``box``, found from pixels alone."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    patch = img[cy - 2:cy + 3, cx - 2:cx + 3].reshape(-1, 3).astype(np.float32)
    if patch.std(axis=0).max() > 15:  # centre not on a flat fill (occluded or a thin triangle corner)
        return None
    colour = np.median(patch, axis=0)
    pad = 6
    ox, oy = max(x1 - pad, 0), max(y1 - pad, 0)
    crop = cv2.GaussianBlur(img[oy:y2 + pad, ox:x2 + pad], (5, 5), 0).astype(np.float32)
    mask = (np.abs(crop - colour).max(axis=2) < 28).astype(np.uint8)
    _, comp = cv2.connectedComponents(mask)
    blob = comp == comp[cy - oy, cx - ox]
    ys, xs = np.nonzero(blob)
    return (xs.min() + ox, ys.min() + oy, xs.max() + 1 + ox, ys.max() + 1 + oy)


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_labelled_boxes_match_the_drawn_shapes():
    """A box found from the pixels (flat blob at the label centre) must coincide with the label."""
    checked, good = 0, 0
    for i in range(12):
        img, boxes = render_scene([7, 0, i], imgsz=320)
        for j, (_, *box) in enumerate(boxes):
            if any(_iou(box, other[1:]) > 0 for k, other in enumerate(boxes) if k != j):
                continue  # overlapping shapes: the pixel blob is legitimately not the whole label
            found = _shape_extent(img, box)
            if found is None:
                continue
            checked += 1
            good += _iou(box, found) > 0.85
    assert checked >= 15
    assert good / checked >= 0.9, (good, checked)


@pytest.mark.parametrize("kwargs", [{"n_train": 0}, {"n_val": -1}, {"imgsz": 10}, {"seed": -3},
                                    {"n_test": 1.5}])
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        make_dataset(tmp_path, **kwargs)


def test_scenes_have_some_overlap_and_border_cuts_but_no_hidden_shapes():
    overlaps, border_cuts = [], 0
    for i in range(30):
        _, boxes = render_scene([11, 0, i], imgsz=320)
        for j, a in enumerate(boxes):
            border_cuts += min(a[1], a[2]) <= 0.0 or max(a[3], a[4]) >= 320.0
            for b in boxes[j + 1:]:
                iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
                ih = max(0.0, min(a[4], b[4]) - max(a[2], b[2]))
                smaller = min((a[3] - a[1]) * (a[4] - a[2]), (b[3] - b[1]) * (b[4] - b[2]))
                overlaps.append(iw * ih / smaller)
    assert border_cuts >= 5
    assert any(o > 0.05 for o in overlaps), "shapes should sometimes overlap"
    # A shape drawn later may cover at most a fifth of an earlier one's box: nothing labelled is hidden.
    assert max(overlaps) <= 0.2 + 1e-6
