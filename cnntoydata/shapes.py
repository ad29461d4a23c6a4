"""Drawing one shape image: a pure function of a numpy Generator, so images are reproducible."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "cross",
    "star",
    "ring",
    "diamond",
    "hexagon",
    "frame",
    "halfmoon",
)
# Two disjoint halves for transfer learning: pretrain on one, transfer to the other. Each half has
# filled and outlined shapes, so what is learnt on one half (edges, corners, curvature) is useful on
# the other without the classes being the same.
PARTS: dict[str, tuple[str, ...]] = {"pretrain": SHAPES[:5], "target": SHAPES[5:]}

SUPERSAMPLE = 2  # draw at twice the size, then downsample: anti-aliased edges without per-shape work
MAX_TILT = 15.0  # degrees; small enough that a square never becomes a diamond, nor a cross an x


def _polygon(cx: float, cy: float, radii: list[float], angles: list[float], tilt: float) -> list[Point]:
    return [
        (cx + r * math.cos(math.radians(a + tilt)), cy + r * math.sin(math.radians(a + tilt)))
        for r, a in zip(radii, angles)
    ]


def _regular(n: int, start: float) -> Callable[[float, float, float, float], list[Point]]:
    def points(cx: float, cy: float, r: float, tilt: float) -> list[Point]:
        return _polygon(cx, cy, [r] * n, [start + 360.0 * k / n for k in range(n)], tilt)

    return points


def _star(cx: float, cy: float, r: float, tilt: float) -> list[Point]:
    return _polygon(cx, cy, [r, 0.45 * r] * 5, [-90.0 + 36.0 * k for k in range(10)], tilt)


def _cross(cx: float, cy: float, r: float, tilt: float) -> list[Point]:
    w = 0.32 * r  # half the arm width
    corners = [
        (w, -r),
        (w, -w),
        (r, -w),
        (r, w),
        (w, w),
        (w, r),
        (-w, r),
        (-w, w),
        (-r, w),
        (-r, -w),
        (-w, -w),
        (-w, -r),
    ]
    c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners]


_square = _regular(4, 45.0)
_diamond = _regular(4, 0.0)
_triangle = _regular(3, -90.0)
_hexagon = _regular(6, 0.0)


def _paint(
    draw: ImageDraw.ImageDraw,
    shape: str,
    cx: float,
    cy: float,
    r: float,
    tilt: float,
    colour: tuple[int, ...],
    width: int,
) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=width)
    elif shape == "halfmoon":
        draw.pieslice(box, start=tilt, end=tilt + 180.0, fill=colour)
    elif shape == "frame":
        draw.polygon(_square(cx, cy, r, tilt), outline=colour, width=width)
    else:
        points = {
            "square": _square,
            "diamond": _diamond,
            "triangle": _triangle,
            "hexagon": _hexagon,
            "star": _star,
            "cross": _cross,
        }[shape]
        draw.polygon(points(cx, cy, r, tilt), fill=colour)


def _contrasting(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A colour far enough from the background that the shape is always visible."""
    for _ in range(32):
        colour = rng.integers(0, 256, size=3)
        if np.abs(colour - background).sum() >= 200:
            return colour
    return 255 - background


def draw(shape: str, rng: np.random.Generator, size: int = 64, noise: float = 12.0) -> Image.Image:
    """One RGB image of ``shape`` with random colours, size, position and tilt, plus pixel noise."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    big = size * SUPERSAMPLE
    background = rng.integers(0, 256, size=3)
    colour = _contrasting(rng, background)
    r = rng.uniform(0.22, 0.42) * big
    cx, cy = rng.uniform(r, big - r, size=2)
    tilt = rng.uniform(-MAX_TILT, MAX_TILT)
    image = Image.new("RGB", (big, big), tuple(int(v) for v in background))
    _paint(ImageDraw.Draw(image), shape, cx, cy, r, tilt, tuple(int(v) for v in colour), width=max(2, int(0.22 * r)))
    pixels = np.asarray(image.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
    if noise > 0:
        pixels = pixels + rng.normal(0.0, noise, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
