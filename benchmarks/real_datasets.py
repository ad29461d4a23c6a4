"""Real image datasets that installed packages ship (nothing is downloaded), written as image folders
(``DIR/train/<class>/<i>.png`` and ``DIR/val/<class>/<i>.png``) for the fine-tuning recipe study
(benchmarks/recipe_study.py). Each writer is seeded and reuses a folder it wrote before (a
``dataset.json`` marker, written last, records the source, seed and counts).

``digits``
    scikit-learn's handwritten digits (``sklearn.datasets.load_digits``): 1,797 scanned digits,
    8x8 grayscale, 10 classes; a stratified 80/20 split: 1,437 train / 360 val (written by
    benchmarks/digits_folder.py, the layout its docstring describes).
``faces``
    scikit-image's ``skimage.data.lfw_subset()``: 100 face crops from Labeled Faces in the Wild and
    100 non-face crops of the same photos, 25x25 grayscale, 2 classes (``face``, ``nonface``); a
    stratified 70/30 split: 140 train / 60 val (70/30 per class).
``textures``
    Patches cut from six of scikit-image's bundled photos (``skimage.data``: ``brick``, ``grass``,
    ``gravel``, ``moon`` (lunar surface), ``immunohistochemistry`` (stained tissue, as grayscale),
    ``hubble_deep_field`` (star field, as grayscale)), each photo's histogram equalised first so a
    class is not told by its brightness alone: non-overlapping 32x32 grayscale patches of the top
    512x512 (or smaller) square, one class per photo. The split is by region, so no patch of val/
    touches a patch of train/: the top three quarters of the rows give train/, the bottom quarter
    val/: 192 train / 64 val per class, 1,152 train / 384 val in all. The seed only orders the files.

    python -m benchmarks.real_datasets /tmp/real          # -> /tmp/real/{digits,faces,textures}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .digits_folder import write_digits

MARKER = "dataset.json"
TEXTURE_PHOTOS = ("brick", "grass", "gravel", "moon", "immunohistochemistry", "hubble_deep_field")
TEXTURE_PATCH = 32
TEXTURE_SIDE = 512  # the square of each photo that is cut
TEXTURE_VAL_ROWS = 0.25  # the bottom quarter of the patch rows is val/
FACES_VAL_FRACTION = 0.3

# name -> (train images, val images, classes): what the writers produce (tested)
SIZES = {"digits": (1437, 360, 10), "faces": (140, 60, 2), "textures": (1152, 384, 6)}


def _gray(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W): RGB averaged with the ITU-R 601 luma weights, as PIL's ``convert("L")``."""
    if image.ndim == 3:
        return np.asarray(Image.fromarray(image[..., :3]).convert("L"))
    return image


def texture_patches(seed: int = 0) -> dict[str, dict[str, list[np.ndarray]]]:
    """{split: {photo: [32x32 uint8 patches]}}: each photo equalised, cut into a grid of
    non-overlapping patches, the top rows to train and the bottom rows to val."""
    import skimage.data
    from skimage import exposure

    del seed  # the regions fix the split
    out: dict[str, dict[str, list[np.ndarray]]] = {"train": {}, "val": {}}
    for name in TEXTURE_PHOTOS:
        photo = _gray(getattr(skimage.data, name)())[:TEXTURE_SIDE, :TEXTURE_SIDE]
        photo = np.rint(exposure.equalize_hist(photo) * 255).astype(np.uint8)
        rows, cols = photo.shape[0] // TEXTURE_PATCH, photo.shape[1] // TEXTURE_PATCH
        val_from = rows - int(round(rows * TEXTURE_VAL_ROWS))
        for r in range(rows):
            split = "val" if r >= val_from else "train"
            for c in range(cols):
                patch = photo[r * TEXTURE_PATCH : (r + 1) * TEXTURE_PATCH, c * TEXTURE_PATCH : (c + 1) * TEXTURE_PATCH]
                out[split].setdefault(name, []).append(patch)
    return out


def face_images(seed: int = 0) -> dict[str, dict[str, list[np.ndarray]]]:
    """{split: {"face" | "nonface": [25x25 uint8]}}: lfw_subset's first 100 images are faces, the
    last 100 not; a seeded 70/30 split of each class."""
    import skimage.data

    images = np.rint(skimage.data.lfw_subset() * 255).clip(0, 255).astype(np.uint8)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, list[np.ndarray]]] = {"train": {}, "val": {}}
    for name, block in (("face", images[:100]), ("nonface", images[100:])):
        order = rng.permutation(len(block))
        n_val = int(round(len(block) * FACES_VAL_FRACTION))
        out["val"][name] = [block[i] for i in order[:n_val]]
        out["train"][name] = [block[i] for i in order[n_val:]]
    return out


def _write_folder(root: Path, source: str, seed: int, make: Callable[[int], dict]) -> Path:
    """Writes ``make(seed)``'s images at ``root`` through a temp folder renamed into place (or
    reuses a folder this wrote before with the same seed)."""
    marker_path = root / MARKER
    if marker_path.is_file():
        marker = json.loads(marker_path.read_text())
        if marker.get("source") == source and marker.get("seed") == seed:
            return root
        raise FileExistsError(f"{root} holds {marker.get('source')} with seed {marker.get('seed')}; choose another")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists and was not written by benchmarks.real_datasets; choose another folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        counts: dict[str, dict[str, int]] = {}
        for split, classes in make(seed).items():
            for name, images in classes.items():
                (tmp / split / name).mkdir(parents=True, exist_ok=True)
                for i, image in enumerate(images):
                    Image.fromarray(image).save(tmp / split / name / f"{i:04d}.png")
                counts.setdefault(split, {})[name] = len(images)
        (tmp / MARKER).write_text(json.dumps({"source": source, "seed": seed, "counts": counts}, indent=1))
        os.chmod(tmp, 0o755)
        if root.exists():
            root.rmdir()
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root


def write_faces(root: str | os.PathLike, seed: int = 0) -> Path:
    return _write_folder(Path(root), "skimage.data.lfw_subset", seed, face_images)


def write_textures(root: str | os.PathLike, seed: int = 0) -> Path:
    return _write_folder(Path(root), f"skimage.data {', '.join(TEXTURE_PHOTOS)} patches", seed, texture_patches)


WRITERS: dict[str, Callable[..., Path]] = {"digits": write_digits, "faces": write_faces, "textures": write_textures}


def write_all(root: str | os.PathLike, seed: int = 0, names=tuple(WRITERS)) -> dict[str, Path]:
    """Every dataset under ``root/<name>``."""
    return {name: WRITERS[name](Path(root) / name, seed=seed) for name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the packaged real datasets as image folders.")
    parser.add_argument("dir", metavar="DIR", help="parent folder: DIR/digits, DIR/faces, DIR/textures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, path in write_all(args.dir, args.seed).items():
        train, val, classes = SIZES[name]
        print(f"{name}: {path} ({train} train / {val} val, {classes} classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
