"""A deterministic demo video: shapes moving over a textured background, with ground truth.

The video is written with OpenCV's ``mp4v`` codec (the one software encoder every OpenCV wheel
has), and its per-frame truth boxes go to a JSON sidecar next to it, so pipelines and tests can
check detections against what was really drawn.

Example:
    >>> from edgeinfer.demo import make_video, load_video_truth
    >>> path = make_video("/tmp/demo.mp4", frames=60, seed=0)  # doctest: +SKIP
    >>> load_video_truth(path)["frames"]  # doctest: +SKIP
    60
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

from .._deps import require
from ..errors import ConfigError
from . import _scene
from ._io import atomic_write_text, default_file_mode

log = logging.getLogger(__name__)

_VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
_TRUTH_SUFFIX = ".truth.json"


def truth_path(video_path: Union[str, Path]) -> Path:
    """Where :func:`make_video` puts the ground truth of ``video_path`` (``x.mp4`` -> ``x.truth.json``)."""
    return Path(video_path).with_suffix(_TRUTH_SUFFIX)


def load_video_truth(video_path: Union[str, Path]) -> Dict[str, Any]:
    """The ground-truth sidecar of a video made by :func:`make_video`.

    Keys: ``fps``, ``width``, ``height``, ``frames``, ``names``, ``seed`` and ``boxes``: one list
    per frame of ``{"track_id", "class_id", "xyxy": [x1, y1, x2, y2], "visible"}`` where
    ``visible`` is the share of the shape's pixels not hidden by shapes drawn over it.
    """
    path = truth_path(video_path)
    if not path.is_file():
        raise ConfigError(f"no ground truth next to {video_path} (looked for {path})",
                          hint="make the video with edgeinfer.demo.make_video, which writes the sidecar")
    return json.loads(path.read_text())


def _check_video_args(out_path: Path, frames: int, size: Sequence[int], fps: float, seed: int) -> Tuple[int, int]:
    if out_path.suffix.lower() not in _VIDEO_SUFFIXES:
        raise ConfigError(f"video path {out_path} must end in one of {', '.join(_VIDEO_SUFFIXES)}",
                          hint="use e.g. demo.mp4 (written with the mp4v codec)")
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise ConfigError(f"frames must be a positive integer, got {frames!r}", hint="pass e.g. frames=150")
    if len(size) != 2 or any(not isinstance(v, int) or v < 64 or v % 2 for v in size):
        raise ConfigError(f"size must be (width, height), even integers >= 64, got {size!r}",
                          hint="pass e.g. size=(640, 480)")
    if not fps > 0:
        raise ConfigError(f"fps must be positive, got {fps!r}", hint="pass e.g. fps=30")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}", hint="pass e.g. seed=0")
    return int(size[0]), int(size[1])


@dataclasses.dataclass
class _Mover:
    shape: _scene.Shape
    vx: float
    vy: float
    spin: float

    def step(self, width: int, height: int) -> None:
        s = self.shape
        # Bounce when the centre reaches the border: shapes go up to half out of view (edge occlusion).
        if not 0.0 <= s.cx + self.vx <= width:
            self.vx = -self.vx
        if not 0.0 <= s.cy + self.vy <= height:
            self.vy = -self.vy
        self.shape = dataclasses.replace(s, cx=s.cx + self.vx, cy=s.cy + self.vy, angle=s.angle + self.spin)


def _movers(rng, width: int, height: int, background) -> List[_Mover]:
    side = min(width, height)
    shapes = _scene.place_shapes(rng, width, height, count=int(rng.integers(4, 7)),
                                 min_size=0.12 * side, max_size=0.3 * side, max_overlap=0.0)
    shapes = _scene.with_contrast(rng, shapes, background)
    movers = []
    for shape in shapes:
        speed, heading = float(rng.uniform(1.5, 5.0)), float(rng.uniform(0, 2 * math.pi))
        movers.append(_Mover(shape, speed * math.cos(heading), speed * math.sin(heading),
                             float(rng.uniform(-0.03, 0.03))))
    return movers


def _visible_shares(shapes: Sequence[_scene.Shape], width: int, height: int) -> List[float]:
    """Share of each shape's in-image pixels left uncovered by the shapes drawn after it."""
    cv2, np = require("cv2"), require("numpy")
    owner = np.full((height, width), -1, dtype=np.int16)
    totals = []
    for i, shape in enumerate(shapes):
        mask = np.zeros((height, width), dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(shape.polygon()).astype(np.int32).reshape(-1, 1, 2)], 1)
        totals.append(int(mask.sum()))
        owner[mask.astype(bool)] = i
    counts = np.bincount(owner[owner >= 0].ravel(), minlength=len(shapes))
    return [float(counts[i]) / t if t else 0.0 for i, t in enumerate(totals)]


def make_video(out_path: Union[str, Path], *, frames: int = 150, size: Tuple[int, int] = (640, 480),
               fps: float = 30, seed: int = 0) -> Path:
    """Write a video of shapes moving over a textured background (mp4v) plus its truth sidecar.

    ``size`` is (width, height). Shapes bounce off the borders (half out of view at most), spin,
    and may pass over each other. Ground truth: :func:`load_video_truth`. Same seed ⇒ same frames.

    Example:
        >>> make_video("/tmp/demo.mp4", frames=150, size=(640, 480), fps=30, seed=0)  # doctest: +SKIP
        PosixPath('/tmp/demo.mp4')
    """
    out_path = Path(out_path).expanduser().resolve()
    width, height = _check_video_args(out_path, frames, size, fps, seed)
    cv2, np = require("cv2", feature="demo video writing"), require("numpy")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1000])  # a stream apart from make_dataset's
    background = _scene.render_background(rng, width, height)
    movers = _movers(rng, width, height, background)
    fd, tmp = tempfile.mkstemp(dir=str(out_path.parent), prefix="." + out_path.stem + ".", suffix=out_path.suffix)
    os.close(fd)
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    try:
        if not writer.isOpened():
            raise ConfigError(f"OpenCV cannot write {out_path.suffix} video with the mp4v codec",
                              hint="use a .mp4 path and an OpenCV build with FFMPEG (opencv-python-headless has it)")
        per_frame = []
        for _ in range(frames):
            shapes = [m.shape for m in movers]
            img = background.copy()
            _scene.draw_shapes(img, shapes)
            writer.write(_scene.add_sensor_noise(rng, img, sigma=4.0))
            per_frame.append(_frame_truth(shapes, width, height))
            for m in movers:
                m.step(width, height)
        writer.release()
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, str(out_path))
    finally:
        writer.release()
        if os.path.exists(tmp):
            os.unlink(tmp)
    truth = {"video": out_path.name, "fps": float(fps), "width": width, "height": height, "frames": frames,
             "seed": seed, "names": list(_scene.CLASS_NAMES), "boxes": per_frame}
    atomic_write_text(truth_path(out_path), json.dumps(truth, separators=(",", ":")))
    log.info("wrote demo video %s (%d frames, %dx%d @ %g fps, seed %d)", out_path, frames, width, height, fps, seed)
    return out_path


def _frame_truth(shapes: Sequence[_scene.Shape], width: int, height: int) -> List[Dict[str, Any]]:
    shares = _visible_shares(shapes, width, height)
    boxes = []
    for track_id, (shape, share) in enumerate(zip(shapes, shares)):
        if _scene.visible_enough(shape, width, height):
            boxes.append({"track_id": track_id, "class_id": shape.class_id,
                          "xyxy": [round(v, 2) for v in shape.box(width, height)], "visible": round(share, 3)})
    return boxes
