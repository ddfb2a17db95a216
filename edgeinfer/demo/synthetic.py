"""Deterministic synthetic detection data: a YOLO-format dataset of filled shapes.

The project cannot download real detector weights or datasets, so it makes its own: scenes of
rectangles, circles and triangles on textured, noisy backgrounds. Every image is a pure function
of ``(seed, split, index)``, so the same seed gives byte-identical label files on any machine.

Example:
    >>> from edgeinfer.demo import make_dataset
    >>> root = make_dataset("/tmp/shapes", n_train=8, n_val=2, n_test=2, seed=0)  # doctest: +SKIP
    >>> (root / "data.yaml").exists()  # doctest: +SKIP
    True
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Sequence, Tuple, Union

from .._deps import require
from ..errors import ConfigError
from . import _scene
from ._io import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

CLASS_NAMES = _scene.CLASS_NAMES
SPLITS = ("train", "val", "test")
_JPEG_QUALITY = 92

# (class_id, x1, y1, x2, y2) in pixels
PixelBox = Tuple[int, float, float, float, float]


def render_scene(seed: Sequence[int], *, imgsz: int = 320) -> Tuple["object", List[PixelBox]]:
    """One square BGR uint8 scene and its pixel boxes, fully determined by ``seed``.

    Example:
        >>> img, boxes = render_scene([0, 0, 7], imgsz=320)  # doctest: +SKIP
    """
    np = require("numpy")
    rng = np.random.default_rng(list(seed))
    img = _scene.render_background(rng, imgsz, imgsz)
    shapes = _scene.place_shapes(
        rng, imgsz, imgsz, count=int(rng.integers(1, 7)), min_size=0.09 * imgsz, max_size=0.32 * imgsz,
    )
    shapes = _scene.with_contrast(rng, shapes, img)
    _scene.draw_shapes(img, shapes)
    img = _scene.add_sensor_noise(rng, img, sigma=float(rng.uniform(2.0, 9.0)))
    boxes = [(s.class_id,) + s.box(imgsz, imgsz) for s in shapes]
    return img, boxes


def yolo_label_text(boxes: Sequence[PixelBox], *, width: int, height: int) -> str:
    """YOLO txt lines ``class cx cy w h`` (normalised, 6 decimals) for pixel boxes."""
    lines = []
    for cls, x1, y1, x2, y2 in boxes:
        cx, cy = (x1 + x2) / 2.0 / width, (y1 + y2) / 2.0 / height
        w, h = (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{int(cls)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return "".join(line + "\n" for line in lines)


def read_yolo_labels(path: Union[str, Path], *, width: int, height: int) -> List[PixelBox]:
    """Parse a YOLO txt label file back to pixel boxes ``(class, x1, y1, x2, y2)``."""
    boxes: List[PixelBox] = []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        cls, cx, cy, w, h = line.split()
        cxf, cyf, wf, hf = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
        boxes.append((int(cls), cxf - wf / 2, cyf - hf / 2, cxf + wf / 2, cyf + hf / 2))
    return boxes


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}",
                              hint=f"pass e.g. {name}=50")
    if counts.get("n_train", 0) < 1:
        raise ConfigError("n_train must be at least 1", hint="pass e.g. n_train=200")


def _data_yaml(root: Path) -> str:
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(CLASS_NAMES))
    return (
        "# Synthetic shapes dataset made by edgeinfer.demo.make_dataset\n"
        f"path: {root}\n"
        "train: images/train\n"
        "val: images/val\n"
        "test: images/test\n"
        f"nc: {len(CLASS_NAMES)}\n"
        f"names:\n{names}"
    )


def make_dataset(out_dir: Union[str, Path], *, n_train: int = 200, n_val: int = 50, n_test: int = 50,
                 imgsz: int = 320, seed: int = 0) -> Path:
    """Write a YOLO-layout dataset (images/, labels/, data.yaml) and return its root.

    Layout: ``images/{train,val,test}/NNNNN.jpg``, ``labels/{train,val,test}/NNNNN.txt`` and a
    ``data.yaml`` with the absolute root path and names ``0 rect, 1 circle, 2 triangle``.
    Same arguments ⇒ byte-identical label files; a different seed ⇒ different scenes.

    Example:
        >>> make_dataset("/tmp/shapes", n_train=200, n_val=50, n_test=50, seed=0)  # doctest: +SKIP
        PosixPath('/tmp/shapes')
    """
    _check_counts(n_train=n_train, n_val=n_val, n_test=n_test, seed=seed)
    if not isinstance(imgsz, int) or isinstance(imgsz, bool) or not 64 <= imgsz <= 4096:
        raise ConfigError(f"imgsz must be an integer in 64..4096, got {imgsz!r}", hint="pass e.g. imgsz=320")
    cv2 = require("cv2", feature="synthetic dataset generation")
    root = Path(out_dir).expanduser().resolve()
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for split_index, split in enumerate(SPLITS):
        img_dir, lbl_dir = root / "images" / split, root / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        for i in range(counts[split]):
            img, boxes = render_scene([seed, split_index, i], imgsz=imgsz)
            ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
            if not ok:
                raise ConfigError(f"OpenCV could not encode image {split}/{i:05d} as JPEG",
                                  hint="check that opencv-python-headless is installed correctly")
            atomic_write_bytes(img_dir / f"{i:05d}.jpg", jpg.tobytes())
            atomic_write_text(lbl_dir / f"{i:05d}.txt", yolo_label_text(boxes, width=imgsz, height=imgsz))
    atomic_write_text(root / "data.yaml", _data_yaml(root))
    log.info("wrote synthetic dataset to %s (train %d, val %d, test %d, seed %d)",
             root, n_train, n_val, n_test, seed)
    return root
