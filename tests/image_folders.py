"""Tiny image folders the fine-tuning tests train on (framework-free: NumPy and Pillow)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def write_colours(root: Path, train: int = 8, val: int = 6, noise: float = 40.0, side: int = 32) -> Path:
    """Three classes told apart by colour alone, under heavy pixel noise: learnable by any
    backbone, even a random one, so a failure to learn is the training loop's fault."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("val", val)):
        for name, rgb in COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(np.array(rgb) + rng.normal(0, noise, (side, side, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root
