"""Where the committed demo detector lives (made by scripts/train_demo_model.py).

Example:
    >>> from edgeinfer.demo import demo_model_path
    >>> demo_model_path("pt").name
    'shapes-yolo11n.pt'
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, ModelError

DEMO_DIR = Path(__file__).resolve().parents[1] / "_data" / "demo"
_FILES = {"onnx": "shapes-yolo11n-320.onnx", "pt": "shapes-yolo11n.pt"}
DEMO_IMGSZ = 320


def demo_model_path(kind: str = "onnx") -> Path:
    """Path of the committed demo weights: ``"onnx"`` (320x320, opset 17) or ``"pt"`` (Ultralytics).

    The model detects rect / circle / triangle in scenes from :func:`edgeinfer.demo.make_dataset`
    and :func:`edgeinfer.demo.make_video`; see ``edgeinfer/_data/demo/MODEL_CARD.md``.

    Example:
        >>> demo_model_path("onnx").suffix
        '.onnx'
    """
    if kind not in _FILES:
        raise ConfigError(f"unknown demo model kind {kind!r}", hint="use 'onnx' or 'pt'")
    path = DEMO_DIR / _FILES[kind]
    if not path.is_file():
        raise ModelError(f"the demo model file {path} is missing from this installation",
                         hint="reinstall edgeinfer (the wheel ships it) or run scripts/train_demo_model.py "
                              "from a source checkout")
    return path
