"""Checking an image folder before training, so a wrong layout fails with a picture of the right one.

Shared by the torch and Keras fine-tuning commands: both read ``root/train/<class>/*`` and
``root/val/<class>/*`` (torchvision's ImageFolder, keras' image_dataset_from_directory).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")
EXPECTED = (
    "expected an image folder laid out as DIR/train/<class_a>/*.png, DIR/train/<class_b>/*.png, "
    "DIR/val/<class_a>/*.png, "
    "DIR/val/<class_b>/*.png: two or more classes, the same class folders under train/ and val/ (python -m "
    "cnntoydata DIR writes one)"
)


class DataLayoutError(ValueError):
    """The data folder is not ``train/<class>/`` + ``val/<class>/`` with matching classes."""


def _classes(split: Path) -> list[str]:
    classes = sorted(p.name for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataLayoutError(f"{split} has no class folders; {EXPECTED}")
    empty = [c for c in classes if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in (split / c).iterdir())]
    if empty:
        raise DataLayoutError(f"class folders without images in {split}: {empty}; {EXPECTED}")
    return classes


@functools.lru_cache(maxsize=16)
def unreadable_images(split: str) -> dict[str, str]:
    """``{absolute path: reason}`` for the files under ``split/<class>/`` with an image suffix that
    PIL cannot open and verify (a text file named .png, a truncated PNG, an image past PIL's
    decompression-bomb limit). Scanned once per process; the loaders of both frameworks skip them."""
    from PIL import Image

    bad: dict[str, str] = {}
    for folder in sorted(p for p in Path(split).iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES or f.name.startswith("."):
                continue
            try:
                with Image.open(f) as image:
                    image.verify()  # header and, for PNG, every chunk's checksum: truncation shows here
            except Exception as err:
                bad[os.path.abspath(f)] = f"{type(err).__name__}: {err}"
    return bad


def is_usable_image(path: str | os.PathLike) -> bool:
    """An image file the loaders read: an image suffix, not hidden, not in :func:`unreadable_images`."""
    p = Path(path)
    return (
        p.suffix.lower() in IMAGE_SUFFIXES
        and not p.name.startswith(".")
        and os.path.abspath(p) not in unreadable_images(os.path.abspath(p.parent.parent))
    )


_WARNED: set = set()


def _skip_unreadable(split: Path, classes: list[str]) -> None:
    """Names the unreadable files in one warning line; a class left without images is an error."""
    bad = unreadable_images(os.path.abspath(split))
    for c in classes:  # the error first: a run that stops says one line, not a warning and then the error
        if not any(is_usable_image(f) for f in (split / c).iterdir()):
            raise DataLayoutError(
                f"class folder {split / c} has no readable image (unreadable: "
                f"{[Path(p).name for p in bad if Path(p).parent.name == c][:5]}); {EXPECTED}"
            )
    if bad and os.path.abspath(split) not in _WARNED:  # once per folder and process (both fine-tune paths check)
        _WARNED.add(os.path.abspath(split))
        shown = "; ".join(f"{path} ({reason})" for path, reason in list(bad.items())[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        print(f"warning: skipping {len(bad)} unreadable image file(s) in {split}: {shown}{more}", file=sys.stderr)


def check_layout(root: str | os.PathLike) -> list[str]:
    """The sorted class names of ``root``, after checking train/ and val/ agree and every class
    has at least one readable image (unreadable files are named in a warning and skipped)."""
    root = Path(root)
    if root.is_file():
        raise DataLayoutError(f"data folder {root} is a file, not a folder; {EXPECTED}")
    if not root.is_dir():
        raise DataLayoutError(f"data folder {root} does not exist; {EXPECTED}")
    missing = [s for s in ("train", "val") if not (root / s).is_dir()]
    if missing:
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DataLayoutError(
            f"{root} has no {' and no '.join(s + '/' for s in missing)} subfolder (found folders: {found}); {EXPECTED}"
        )
    train, val = _classes(root / "train"), _classes(root / "val")
    if train != val:
        only_train = sorted(set(train) - set(val))
        only_val = sorted(set(val) - set(train))
        raise DataLayoutError(
            f"{root}: train/ and val/ have different classes (only in train/: {only_train}, only in val/: "
            f"{only_val}); {EXPECTED}"
        )
    if len(train) < 2:
        raise DataLayoutError(f"{root} has one class ({train[0]!r}): a classifier needs two or more; {EXPECTED}")
    for split in ("train", "val"):
        _skip_unreadable(root / split, train)
    return train
