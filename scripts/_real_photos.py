"""Real photos that ship inside PyPI packages, split into a calibration set and a check set that
share no source photo (used by scripts/bench_int8.py and the INT8 tests; nothing is downloaded).

Sources: scikit-image's ``skimage.data`` photos (astronaut, coffee, chelsea, rocket, stereo
motorcycle, Hubble deep field, immunohistochemistry, camera), its ``lfw_subset`` (100 real
25x25 face crops, laid out here as mosaics of upscaled faces) and Ultralytics' ``bus.jpg`` and
``zidane.jpg`` (in the ``ultralytics`` wheel).

* calibration: random crops (30-100 % of a side, any aspect), horizontal flips and brightness
  changes of ``CALIB_SOURCES`` plus mosaics of lfw faces 0-49;
* check: the same kind of crops of ``CHECK_SOURCES`` (photos with people: bus, astronaut) plus
  mosaics of lfw faces 50-99, and each check photo whole.

Example:
    >>> frames = calibration_frames(4, seed=0)          # doctest: +SKIP
    >>> [f.shape[2] for f in frames]                    # doctest: +SKIP
    [3, 3, 3, 3]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CALIB_SOURCES = ("zidane", "coffee", "chelsea", "rocket", "motorcycle", "hubble", "ihc", "camera")
CHECK_SOURCES = ("bus", "astronaut")


def _bgr(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    return np.ascontiguousarray(rgb[..., :3][..., ::-1]).astype(np.uint8)


def source_photo(name: str) -> np.ndarray:
    """One named source photo as a BGR uint8 array (OpenCV's order, what the runtime is given)."""
    import cv2

    if name in ("bus", "zidane"):
        import ultralytics

        img = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / f"{name}.jpg"), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"{name}.jpg is not in this ultralytics wheel")
        return img
    from skimage import data

    getters = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea, "rocket": data.rocket,
               "motorcycle": lambda: data.stereo_motorcycle()[0], "hubble": data.hubble_deep_field,
               "ihc": data.immunohistochemistry, "camera": data.camera}
    return _bgr(getters[name]())


def face_mosaic(indices: range | list[int], *, rng: np.random.Generator, tile: int = 96, grid: int = 3) -> np.ndarray:
    """A grid x grid mosaic of lfw_subset faces (25x25 grey, upscaled to ``tile``) on a grey background."""
    import cv2
    from skimage import data

    faces = data.lfw_subset()[:100]  # the first 100 are faces, the last 100 are not
    side = tile * grid + 16 * (grid + 1)
    out = np.full((side, side, 3), int(rng.integers(60, 200)), np.uint8)
    picks = rng.choice(list(indices), size=grid * grid, replace=False)
    for k, idx in enumerate(picks):
        face = cv2.resize((faces[idx] * 255).astype(np.uint8), (tile, tile), interpolation=cv2.INTER_CUBIC)
        y, x = 16 + (k // grid) * (tile + 16), 16 + (k % grid) * (tile + 16)
        out[y:y + tile, x:x + tile] = face[..., None]
    return out


def _augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = int(h * rng.uniform(0.3, 1.0)), int(w * rng.uniform(0.3, 1.0))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = img[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    gain = rng.uniform(0.7, 1.3)
    return np.clip(crop.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _frames(sources: tuple[str, ...], faces: range, n: int, seed: int, whole: bool) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    photos = [source_photo(s) for s in sources]
    out = [p.copy() for p in photos] if whole else []
    while len(out) < n:
        if rng.random() < 0.25:
            out.append(face_mosaic(faces, rng=rng))
        else:
            out.append(_augment(photos[int(rng.integers(len(photos)))], rng))
    return out[:n]


def calibration_frames(n: int, *, seed: int = 0) -> list[np.ndarray]:
    """``n`` BGR calibration frames from ``CALIB_SOURCES`` and lfw faces 0-49."""
    return _frames(CALIB_SOURCES, range(0, 50), n, seed, whole=False)


def check_frames(n: int, *, seed: int = 1) -> list[np.ndarray]:
    """``n`` BGR check frames from ``CHECK_SOURCES`` (each whole once) and lfw faces 50-99."""
    return _frames(CHECK_SOURCES, range(50, 100), n, seed, whole=True)


def write_frames(frames: list[np.ndarray], folder: Path) -> Path:
    """Save frames as PNGs (what ``edgeinfer package --calib DIR`` reads)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), f)
    return folder
