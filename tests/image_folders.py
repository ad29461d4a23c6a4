"""Tiny image folders the fine-tuning tests train on, and an interrupted run (framework-free)."""

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


def interrupted_after_first_epoch(finetune_module, adapter, options, monkeypatch, **overrides) -> dict:
    """Runs ``finetune_module.finetune`` and kills it (KeyboardInterrupt) while its adapter trains
    the second epoch; returns the checkpoint it left, the first epoch's."""
    import pytest

    first_epoch = adapter.epoch

    def epoch(self, number, seed, tag):
        if number == 2:
            raise KeyboardInterrupt
        return first_epoch(self, number, seed, tag)

    with monkeypatch.context() as patch:
        patch.setattr(adapter, "epoch", epoch)
        with pytest.raises(KeyboardInterrupt):
            finetune_module.finetune(options, **overrides)
    return finetune_module.read_checkpoint_info(overrides["out"])
