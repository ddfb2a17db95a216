"""Drawing of synthetic scenes: textured noisy backgrounds and filled shapes of three classes.

Everything is driven by one ``numpy.random.Generator`` so a scene is a pure function of its seed.
The label box of a shape is the bounding box of the very polygon that is filled, clipped to the
image, so labels and pixels can never disagree.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from .._deps import require

CLASS_NAMES = ("rect", "circle", "triangle")

# Base hue per class (OpenCV hue scale 0..179): blue rects, green circles, red/orange triangles.
# A share of shapes gets any hue so the detector has to learn geometry, not only colour.
_CLASS_HUES = (110, 60, 8)
_RANDOM_HUE_SHARE = 0.2
_SUBPIXEL_SHIFT = 4  # cv2.fillPoly fixed-point bits: vertices keep 1/16 px precision
_CIRCLE_VERTICES = 72


@dataclass(frozen=True)
class Shape:
    """One filled shape: its class, geometry (pixels, radians) and BGR colour."""

    class_id: int
    cx: float
    cy: float
    size: float  # circumscribed diameter (circle/triangle) or long side (rect)
    aspect: float  # short/long side ratio for rects; 1.0 otherwise
    angle: float
    color: Tuple[int, int, int]

    def polygon(self):
        """Vertices (N, 2) float64 in pixel coordinates."""
        np = require("numpy")
        if self.class_id == 0:
            hw, hh = self.size / 2.0, self.size * self.aspect / 2.0
            local = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]], dtype=np.float64)
        elif self.class_id == 1:
            t = np.linspace(0.0, 2.0 * math.pi, _CIRCLE_VERTICES, endpoint=False)
            local = np.stack([np.cos(t), np.sin(t)], axis=1) * (self.size / 2.0)
        else:
            t = np.array([0.0, 2.0 * math.pi / 3.0, 4.0 * math.pi / 3.0]) - math.pi / 2.0
            local = np.stack([np.cos(t), np.sin(t)], axis=1) * (self.size / 2.0)
        c, s = math.cos(self.angle), math.sin(self.angle)
        rot = np.array([[c, -s], [s, c]], dtype=np.float64)
        return local @ rot.T + np.array([self.cx, self.cy])

    def box(self, width: int, height: int) -> Tuple[float, float, float, float]:
        """Pixel box (x1, y1, x2, y2) of the drawn polygon, clipped to the image."""
        poly = self.polygon()
        x1, y1 = poly.min(axis=0)
        x2, y2 = poly.max(axis=0)
        return (float(max(x1, 0.0)), float(max(y1, 0.0)), float(min(x2, width)), float(min(y2, height)))


def random_color(rng, class_id: int) -> Tuple[int, int, int]:
    """A saturated BGR colour near the class hue (or any hue, for a share of shapes)."""
    cv2, np = require("cv2"), require("numpy")
    if rng.random() < _RANDOM_HUE_SHARE:
        hue = int(rng.integers(0, 180))
    else:
        hue = int((_CLASS_HUES[class_id] + rng.integers(-12, 13)) % 180)
    hsv = np.array([[[hue, int(rng.integers(150, 256)), int(rng.integers(140, 256))]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def random_shape(rng, width: int, height: int, *, min_size: float, max_size: float) -> Shape:
    """A shape placed anywhere, allowed to hang over the border (partial occlusion at edges)."""
    class_id = int(rng.integers(0, len(CLASS_NAMES)))
    size = float(rng.uniform(min_size, max_size))
    aspect = float(rng.uniform(0.45, 1.0)) if class_id == 0 else 1.0
    margin = size * 0.25  # centre may sit up to a quarter size outside: at most ~half is cut off
    return Shape(
        class_id=class_id,
        cx=float(rng.uniform(-margin, width + margin)),
        cy=float(rng.uniform(-margin, height + margin)),
        size=size,
        aspect=aspect,
        angle=float(rng.uniform(0.0, 2.0 * math.pi)),
        color=random_color(rng, class_id),
    )


def visible_enough(shape: Shape, width: int, height: int, *, min_fraction: float = 0.5,
                   min_side: float = 8.0) -> bool:
    """Whether enough of the shape's own area lies inside the image to deserve a label.

    Measured on the polygon, not its box: a triangle's box can be half inside while only its
    thin tip is.
    """
    cv2, np = require("cv2"), require("numpy")
    x1, y1, x2, y2 = shape.box(width, height)
    if x2 - x1 < min_side or y2 - y1 < min_side:
        return False
    poly = shape.polygon().astype(np.float32)
    frame = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    inside, _ = cv2.intersectConvexConvex(poly, frame)
    return inside >= min_fraction * cv2.contourArea(poly)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x1, y1, x2, y2) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_overlap_share(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over the *smaller* box: 1.0 when one box lies inside the other.

    IoU alone would let a small shape sit entirely under a big one drawn later (low IoU, yet
    invisible); bounding this share keeps most of every labelled shape in view.
    """
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller if smaller > 0 else 0.0


def place_shapes(rng, width: int, height: int, *, count: int, min_size: float, max_size: float,
                 max_overlap: float = 0.2) -> List[Shape]:
    """Up to ``count`` shapes; boxes overlap by at most ``max_overlap`` of the smaller one."""
    shapes: List[Shape] = []
    for _ in range(count * 20):
        if len(shapes) == count:
            break
        cand = random_shape(rng, width, height, min_size=min_size, max_size=max_size)
        if not visible_enough(cand, width, height):
            continue
        box = cand.box(width, height)
        if all(box_overlap_share(box, s.box(width, height)) <= max_overlap for s in shapes):
            shapes.append(cand)
    return shapes


def with_contrast(rng, shapes: Sequence[Shape], background, *, min_diff: float = 60.0,
                  tries: int = 8) -> List[Shape]:
    """Re-roll the colour of any shape too close to the background under it (a labelled shape
    nobody could see would only teach the detector noise)."""
    np = require("numpy")
    height, width = background.shape[:2]
    out = []
    for shape in shapes:
        x1, y1, x2, y2 = (int(v) for v in shape.box(width, height))
        under = background[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)].reshape(-1, 3).mean(axis=0)
        for _ in range(tries):
            if np.abs(np.asarray(shape.color, dtype=np.float64) - under).max() >= min_diff:
                break
            shape = dataclasses.replace(shape, color=random_color(rng, shape.class_id))
        out.append(shape)
    return out


def render_background(rng, width: int, height: int):
    """A textured, noisy BGR uint8 background: gradient + blurred noise blobs + random lines."""
    cv2, np = require("cv2"), require("numpy")
    c0 = rng.uniform(40, 200, size=3)
    c1 = rng.uniform(40, 200, size=3)
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (xx * math.cos(theta) + yy * math.sin(theta))
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    img = c0[None, None, :] * (1 - ramp[..., None]) + c1[None, None, :] * ramp[..., None]
    # Low-frequency texture: coarse noise upsampled and blurred, per channel.
    cell = int(rng.integers(4, 16))
    coarse = rng.normal(0.0, 1.0, size=(height // cell + 2, width // cell + 2, 3)).astype(np.float32)
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    texture = cv2.GaussianBlur(texture, (0, 0), sigmaX=float(rng.uniform(1.0, 4.0)))
    img = img + texture * float(rng.uniform(10.0, 35.0))
    out = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 14))):
        grey = int(rng.integers(0, 256))
        tint = rng.integers(-30, 31, size=3)
        color = tuple(int(v) for v in np.clip(grey + tint, 0, 255))
        p1 = (int(rng.integers(-20, width + 20)), int(rng.integers(-20, height + 20)))
        p2 = (int(rng.integers(-20, width + 20)), int(rng.integers(-20, height + 20)))
        cv2.line(out, p1, p2, color, int(rng.integers(1, 4)), cv2.LINE_AA)
    return out


def draw_shapes(img, shapes: Sequence[Shape]) -> None:
    """Fill ``shapes`` into ``img`` in order (later ones occlude earlier ones), anti-aliased."""
    cv2, np = require("cv2"), require("numpy")
    scale = float(1 << _SUBPIXEL_SHIFT)
    for shape in shapes:
        pts = np.round(shape.polygon() * scale).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(img, [pts], shape.color, cv2.LINE_AA, _SUBPIXEL_SHIFT)


def add_sensor_noise(rng, img, *, sigma: float):
    """Gaussian pixel noise over the whole frame (shapes included), like a camera sensor."""
    np = require("numpy")
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, size=img.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)
