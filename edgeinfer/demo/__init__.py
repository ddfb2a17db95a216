"""Demo data and model: synthetic shapes scenes, a moving-shapes video and the committed weights.

Example:
    >>> from edgeinfer.demo import make_dataset, make_video, demo_model_path
    >>> demo_model_path("onnx").name
    'shapes-yolo11n-320.onnx'
"""
from __future__ import annotations

from .synthetic import CLASS_NAMES, make_dataset, read_yolo_labels, render_scene
from .video import load_video_truth, make_video, truth_path
from .weights import DEMO_IMGSZ, demo_model_path

__all__ = ["CLASS_NAMES", "DEMO_IMGSZ", "demo_model_path", "load_video_truth", "make_dataset", "make_video",
           "read_yolo_labels", "render_scene", "truth_path"]
