"""Checking an image folder before training, so a wrong layout fails with a picture of the right one.

Shared by the torch and Keras fine-tuning commands: both read ``root/train/<class>/*`` and
``root/val/<class>/*`` (torchvision's ImageFolder, keras' image_dataset_from_directory).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Union

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")
EXPECTED = """expected an image folder laid out as
  DIR/train/<class_a>/*.png
  DIR/train/<class_b>/*.png
  DIR/val/<class_a>/*.png
  DIR/val/<class_b>/*.png
with the same class folders under train/ and val/ (python -m toydata DIR writes one)"""


class DataLayoutError(ValueError):
    """The data folder is not ``train/<class>/`` + ``val/<class>/`` with matching classes."""


def _classes(split: Path) -> List[str]:
    classes = sorted(p.name for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataLayoutError(f"{split} has no class folders; {EXPECTED}")
    empty = [c for c in classes if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in (split / c).iterdir())]
    if empty:
        raise DataLayoutError(f"class folders without images in {split}: {empty}; {EXPECTED}")
    return classes


def check_layout(root: Union[str, os.PathLike]) -> List[str]:
    """The sorted class names of ``root``, after checking train/ and val/ agree."""
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"data folder {root} does not exist; {EXPECTED}")
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DataLayoutError(f"{root} has no {' and no '.join(s + '/' for s in missing)} subfolder (found folders: {found}); {EXPECTED}")
    train, val = _classes(root / "train"), _classes(root / "val")
    if train != val:
        only_train = sorted(set(train) - set(val))
        only_val = sorted(set(val) - set(train))
        raise DataLayoutError(
            f"{root}: train/ and val/ have different classes (only in train/: {only_train}, only in val/: {only_val}); {EXPECTED}"
        )
    return train
