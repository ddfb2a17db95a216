"""Output-layout recognition for YOLOv8/11, YOLOv5, end-to-end, EfficientNMS and generic shapes."""
from __future__ import annotations

import pytest

from edgeinfer.model.layout import detect_layout, grid_cells, parse_imgsz, parse_names

NAMES80 = {i: f"c{i}" for i in range(80)}


def test_grid_cells_matches_ultralytics_anchor_counts():
    assert grid_cells((640, 640), (8, 16, 32)) == 8400
    assert grid_cells((320, 320), (8, 16, 32)) == 2100
    assert grid_cells((64, 96), (8, 16, 32)) == 8 * 12 + 4 * 6 + 2 * 3


@pytest.mark.parametrize(
    "shapes, imgsz, names, end2end, expected",
    [
        ([[1, 84, 8400]], (640, 640), NAMES80, False, "yolov8"),
        ([[1, 7, 2100]], (320, 320), {}, False, "yolov8"),  # nc from the channel count
        ([[1, 84, "anchors"]], None, NAMES80, False, "yolov8"),
        ([[1, 25200, 85]], (640, 640), NAMES80, False, "yolov5"),
        ([[1, 25200, 6]], (640, 640), {0: "one"}, False, "yolov5"),  # 1-class v5, not NMS output
        ([[1, 300, 6]], (640, 640), NAMES80, True, "end2end"),
        ([[1, 100, 6]], (640, 640), {}, False, "end2end"),
        ([[1, 1], [1, 100, 4], [1, 100], [1, 100]], (640, 640), {}, False, "efficient_nms"),
        ([[1, 116, 8400]], (640, 640), NAMES80, False, "generic"),  # segmentation head: 4+80+32
        ([[1, 1, 320, 320]], (320, 320), {}, False, "generic"),
        ([[1, 1000]], (224, 224), {}, False, "generic"),
        ([[1, 84, 8400], [1, 32, 160, 160]], (640, 640), NAMES80, False, "generic"),
    ],
)
def test_detect_layout(shapes, imgsz, names, end2end, expected):
    task, layout = detect_layout(shapes, imgsz=imgsz, names=names, end2end=end2end)
    assert layout == expected
    assert task == ("generic" if expected == "generic" else "detect")


def test_non_detect_task_metadata_is_generic():
    assert detect_layout([[1, 84, 8400]], imgsz=(640, 640), names=NAMES80, task="pose") == ("generic", "generic")


def test_parse_ultralytics_metadata():
    assert parse_names("{0: 'person', 1: 'car'}") == {0: "person", 1: "car"}
    assert parse_names("not a dict") == {}
    assert parse_imgsz("[384, 640]") == (384, 640)
    assert parse_imgsz("320") == (320, 320)
    assert parse_imgsz(None) is None
