"""Calibration images → (N, C, H, W) float32, pre-processed by the runtime's own code.

Sources: an image folder (searched recursively), a glob, a YOLO ``data.yaml`` (its ``train`` then
``val`` images), a video file (frames sampled evenly), or a ``.npy`` that is already (N,C,H,W)
float32 (shape checked against the model). Images are sent through
``edgeinfer.runtime.preprocess.preprocess_batch`` -- the exact letterbox/colour/scale the
device will apply -- because ranges computed on differently prepared pixels are wrong ranges.

Example:
    >>> calib = load_calibration_images("datasets/shapes/images/train", info, max_images=256)  # doctest: +SKIP
    >>> calib.shape                                                                            # doctest: +SKIP
    (200, 3, 320, 320)
"""
from __future__ import annotations

import glob
import logging
from pathlib import Path
from typing import Any, Callable, Iterator

from .._deps import require
from ..errors import QuantizeError

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")
_CHUNK = 16  # frames pre-processed at once: bounds the memory of decoded BGR frames

Progress = Callable[[str, int, int], None]


def _input_hw(info: Any, input_hw: tuple[int, int] | None) -> tuple[int, int]:
    hw = input_hw or info.imgsz
    if not hw:
        raise QuantizeError("calibration needs a static input size but the model's height/width are dynamic",
                            hint="ingest the model with imgsz (e.g. --imgsz 640) for INT8")
    return (int(hw[0]), int(hw[1]))


def _evenly(items: list, k: int) -> list:
    if len(items) <= k:
        return items
    np = require("numpy")
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def find_images(path: str | Path) -> list[Path]:
    """Image files of a folder (recursive), a glob pattern, or a YOLO data.yaml."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(text, recursive=True) if p.lower().endswith(IMAGE_EXTS))
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml") and p.is_file():
        return _yaml_images(p)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS and f.is_file())
    return []


def _yaml_images(path: Path) -> list[Path]:
    yaml = require("yaml")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except Exception as exc:
        raise QuantizeError(f"cannot read {path}: {exc}", hint="give a valid YOLO data.yaml") from exc
    root = Path(data.get("path") or path.parent)
    if not root.is_absolute():
        root = path.parent / root
    for split in ("train", "val"):
        entries = data.get(split)
        for entry in entries if isinstance(entries, list) else [entries] if entries else []:
            found = find_images(root / entry)
            if found:
                return found
    return []


def load_calibration_images(path: str | Path, info: Any, *, max_images: int = 256,
                            input_hw: tuple[int, int] | None = None, progress: Progress | None = None) -> Any:
    """Load up to ``max_images`` calibration inputs for the model described by ``info`` (ModelInfo).

    Example:
        >>> load_calibration_images("street.mp4", info, max_images=64).shape    # doctest: +SKIP
        (64, 3, 640, 640)
    """
    np = require("numpy")
    if max_images < 1:
        raise QuantizeError(f"max_images must be >= 1, got {max_images}", hint="use --calib-images 256")
    p = Path(path)
    if p.suffix.lower() == ".npy":
        return _load_npy(p, info, max_images, input_hw)
    hw = _input_hw(info, input_hw)
    if p.suffix.lower() in VIDEO_EXTS:
        frames: Iterator[Any] = _video_frames(p, max_images)
        total = max_images
    else:
        files = _evenly(find_images(path), max_images)
        if not files:
            raise QuantizeError(f"no calibration images found at {path}",
                                hint="give a folder/glob of .jpg/.png images, a video, a YOLO data.yaml or a .npy "
                                     "(a few hundred representative frames)")
        frames, total = _image_frames(files), len(files)
    out = _preprocess_all(frames, info, hw, total, progress)
    if len(out) == 0:
        raise QuantizeError(f"none of the calibration inputs at {path} could be decoded",
                            hint="check the files are readable images/video (OpenCV could not decode them)")
    log.info("calibration set: %d inputs from %s at %dx%d", len(out), path, hw[0], hw[1])
    return np.ascontiguousarray(out)


def _preprocess_all(frames: Iterator[Any], info: Any, hw: tuple[int, int], total: int,
                    progress: Progress | None) -> Any:
    np = require("numpy")
    from ..runtime.preprocess import preprocess_batch

    batches, pending, done = [], [], 0
    for frame in frames:
        pending.append(frame)
        if len(pending) == _CHUNK:
            batches.append(preprocess_batch(pending, info.preprocess, hw)[0])
            done += len(pending)
            pending = []
            if progress:
                progress("load calibration images", done, total)
    if pending:
        batches.append(preprocess_batch(pending, info.preprocess, hw)[0])
        if progress:
            progress("load calibration images", done + len(pending), total)
    return np.concatenate(batches) if batches else np.zeros((0, 3, hw[0], hw[1]), np.float32)


def _image_frames(files: list[Path]) -> Iterator[Any]:
    cv2 = require("cv2")
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("skipping unreadable calibration image %s", f)
            continue
        yield img


def _video_frames(path: Path, max_images: int) -> Iterator[Any]:
    """Frames spread evenly over the video: sequential reads keep only the chosen indices
    (seeking is unreliable across codecs/containers)."""
    cv2 = require("cv2")
    np = require("numpy")
    if not path.is_file():
        raise QuantizeError(f"calibration video not found: {path}", hint="check the path")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise QuantizeError(f"cannot open calibration video {path}", hint="convert it to H.264 .mp4 or extract frames")
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        wanted = set(np.linspace(0, count - 1, max_images).round().astype(int).tolist()) if count > 0 else None
        index = emitted = 0
        while emitted < max_images:
            ok, frame = cap.read()
            if not ok:
                break
            if wanted is None or index in wanted:
                emitted += 1
                yield frame
            index += 1
    finally:
        cap.release()


def _load_npy(path: Path, info: Any, max_images: int, input_hw: tuple[int, int] | None) -> Any:
    np = require("numpy")
    if not path.is_file():
        raise QuantizeError(f"calibration file not found: {path}", hint="check the path")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise QuantizeError(f"cannot read {path} as a .npy array: {exc}", hint="save it with numpy.save") from exc
    from ..runtime.preprocess import input_shape

    hw = _input_hw(info, input_hw)
    expected = input_shape(info.preprocess, hw)  # the model's own layout: (C,H,W) or (H,W,C)
    if arr.ndim != 4 or tuple(arr.shape[1:]) != expected or len(arr) == 0:
        raise QuantizeError(
            f"{path.name} has shape {tuple(arr.shape)}, expected (N, {expected[0]}, {expected[1]}, {expected[2]}) "
            f"({info.preprocess.layout}, the model's input layout)",
            hint=f"save pre-processed {info.preprocess.layout} float32 inputs at the model's size, "
                 "or give an image folder instead",
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise QuantizeError(f"{path.name} holds {arr.dtype}, expected float32 pre-processed inputs",
                            hint="apply the model's pre-processing (e.g. /255) before saving, or give images")
    return np.ascontiguousarray(arr[:max_images], dtype=np.float32)
