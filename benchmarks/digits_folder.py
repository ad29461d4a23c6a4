"""scikit-learn's handwritten digits as an image folder: a small, real, offline dataset for
fine-tuning benchmarks (the embedded cnntoydata shapes are synthetic; these are 1,797 scanned digits).

    python benchmarks/digits_folder.py /tmp/digits          # -> /tmp/digits/{train,val}/<digit>/<i>.png

Needs scikit-learn (``pip install scikit-learn``: the digits ship in its wheel), which is not a
dependency of the project.

Layout: ``DIR/train/<digit>/<i>.png`` and ``DIR/val/<digit>/<i>.png``, where ``i`` is the image's
index in ``sklearn.datasets.load_digits()``; a stratified 80/20 split drawn with ``seed``; 8x8
8-bit grayscale PNGs (mode ``L``), the 0-16 values scaled to 0-255. The folder is written into a
temp folder beside DIR and renamed into place, so a killed run never leaves half a dataset; a
``digits.json`` written last records the seed and counts, and a DIR that has it is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

MARKER = "digits.json"
VAL_FRACTION = 0.2


def load_pixels() -> tuple[np.ndarray, np.ndarray]:
    """The digits as uint8 (N, 8, 8) images scaled 0-16 -> 0-255, and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return images, digits.target.astype(int)


def split_indices(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """A stratified, seeded train/val split, so every digit keeps its share in both halves."""
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(np.arange(len(labels)), test_size=VAL_FRACTION, stratify=labels, random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val)}


def _write_split(folder: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> dict[str, int]:
    """Writes one split's PNGs; returns images per class (recorded in the marker)."""
    counts: dict[str, int] = {}
    for i in indices:
        digit = str(labels[i])
        (folder / digit).mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(folder / digit / f"{i}.png")
        counts[digit] = counts.get(digit, 0) + 1
    return dict(sorted(counts.items()))


def read_marker(root: Path) -> dict | None:
    """The marker of a complete dataset at ``root``, or None when there is none."""
    try:
        return json.loads((root / MARKER).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def _reuse(root: Path, seed: int) -> bool:
    """True when ``root`` already holds this dataset with this seed; an error when it holds
    something else (never overwritten: it may be someone's data)."""
    marker = read_marker(root)
    if marker is not None and marker.get("source") == "sklearn.datasets.load_digits":
        if marker.get("seed") != seed:
            raise FileExistsError(
                f"{root} holds the digits split with seed {marker.get('seed')}, not {seed}; choose another folder"
            )
        return True
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and is not a digits folder written by this script; choose another folder")
    return False


def write_digits(root: str | os.PathLike, seed: int = 0) -> Path:
    """Writes the digits image folder at ``root`` (or reuses it) and returns ``root``."""
    root = Path(root)
    if _reuse(root, seed):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        images, labels = load_pixels()
        counts = {
            split: _write_split(tmp / split, images, labels, idx) for split, idx in split_indices(labels, seed).items()
        }
        marker = {
            "source": "sklearn.datasets.load_digits",
            "seed": seed,
            "val_fraction": VAL_FRACTION,
            "image": "8x8 L, 0-16 scaled to 0-255",
            "counts": counts,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=1))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the dataset is not
        _move_into_place(tmp, root, seed)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root


def _move_into_place(tmp: Path, root: Path, seed: int) -> None:
    """Renames ``tmp`` onto ``root`` (an absent or empty folder); if a concurrent run got there
    first with the same dataset, keeps theirs."""
    try:
        os.replace(tmp, root)
    except OSError:
        if not _reuse(root, seed):
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write scikit-learn's digits as DIR/{train,val}/<digit>/<i>.png (reused if present)."
    )
    parser.add_argument("dir", metavar="DIR", help="folder to create (or reuse)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified 80/20 split (default 0)")
    args = parser.parse_args(argv)
    try:
        root = write_digits(args.dir, seed=args.seed)
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = read_marker(root)["counts"]
    print(
        f"{root}: {sum(counts['train'].values())} train / {sum(counts['val'].values())} val images, "
        f"{len(counts['train'])} classes"
    )
    return 0


if __name__ == "__main__":
    from cnnbase import cli

    sys.exit(cli.run("benchmarks/digits_folder.py", lambda argv: main(argv)))  # one-line errors, --debug (cnnbase.cli)
