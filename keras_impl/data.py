"""Image folders as ``keras.utils.PyDataset``: PIL decoding and NumPy, no TensorFlow, so the Keras
fine-tuning runs on the jax and torch backends in an environment without TensorFlow.

Files are listed like torchvision's ``ImageFolder`` (classes sorted, files sorted within each
class), decoded with PIL (grayscale for one-channel specs, RGB otherwise), resized to
``size`` x ``size`` (antialiased bilinear) and normalised with the spec's mean/std. Decoded,
resized images are kept in memory after they are first read when the folder fits in
``cache_bytes`` (default 2 GB), so later epochs do not decode again. Augmentation (horizontal flip
and a random zoom-in crop, about torchvision's ``RandomResizedCrop(scale=(0.7, 1))``) draws from a
NumPy generator seeded by (seed, sample index): the same images for the same seed, in any order.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import keras
import numpy as np

import cnnspec
from toydata.layout import IMAGE_SUFFIXES

ZOOM_IN = 0.16  # keep 84-100% of the side, ~70-100% of the area
DEFAULT_CACHE_BYTES = 2 * 1024**3


def list_images(folder: Union[str, os.PathLike], classes: Sequence[str]) -> Tuple[List[str], np.ndarray]:
    """(file paths, int labels) in ImageFolder's order: classes in the given order, files sorted."""
    paths, labels = [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (Path(folder) / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        paths += [str(p) for p in files]
        labels += [index] * len(files)
    return paths, np.asarray(labels, dtype="int32")


class DecodedImages:
    """Decodes and resizes images once; keeps them (uint8) while they fit in the memory budget."""

    def __init__(self, size: int, channels: int, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.size, self.channels = size, channels
        self.budget = cache_bytes
        self.store: Dict[str, np.ndarray] = {}

    def __call__(self, path: str) -> np.ndarray:
        image = self.store.get(path)
        if image is None:
            from PIL import Image

            try:
                with Image.open(path) as raw:
                    raw = raw.convert("L" if self.channels == 1 else "RGB")
                    image = np.asarray(raw.resize((self.size, self.size), Image.BILINEAR), dtype=np.uint8)
            except OSError as err:
                raise ValueError(f"cannot read image {path}: {err}") from None
            if image.ndim == 2:
                image = image[:, :, None]
            if self.budget >= image.nbytes:
                self.store[path] = image
                self.budget -= image.nbytes
        return image


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random zoom-in crop resized back, and a horizontal flip half of the time."""
    size = image.shape[0]
    side = int(round(size * rng.uniform(1.0 - ZOOM_IN, 1.0)))
    top, left = rng.integers(0, size - side + 1), rng.integers(0, size - side + 1)
    crop = image[top:top + side, left:left + side]
    if side != size:
        from PIL import Image

        squeeze = crop.shape[2] == 1
        pil = Image.fromarray(crop[:, :, 0] if squeeze else crop)
        crop = np.asarray(pil.resize((size, size), Image.BILINEAR), dtype=np.uint8)
        crop = crop[:, :, None] if squeeze else crop
    return crop[:, ::-1] if rng.random() < 0.5 else crop


class ImageFolderDataset(keras.utils.PyDataset):
    """Batches ``(normalised NHWC float32 images, int32 labels)`` of an image folder's files.

    ``shuffle_seed`` shuffles the order (and seeds the augmentation); ``drop_last`` drops a last
    batch of a single sample (BatchNorm cannot train on it); ``workers`` > 1 decodes in threads.
    """

    def __init__(self, paths: Sequence[str], labels: np.ndarray, spec: cnnspec.ModelSpec, size: int, batch_size: int, *,
                 images: Optional[DecodedImages] = None, shuffle_seed: Optional[int] = None, augment: bool = False,
                 drop_last: bool = False, workers: int = 0) -> None:
        super().__init__(workers=max(1, workers), use_multiprocessing=False)  # threads: PIL decodes without the GIL
        self.paths, self.labels = list(paths), np.asarray(labels, dtype="int32")
        self.batch_size = batch_size
        self.images = images or DecodedImages(size, spec.input_size[0])
        self.seed, self.augment = shuffle_seed, augment
        self.order = np.arange(len(self.paths)) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(len(self.paths))
        if drop_last and len(self.order) % batch_size == 1 and len(self.order) > 1:
            self.order = self.order[:-1]
        self.mean = np.asarray(spec.mean, np.float32) * 255.0
        self.std = np.asarray(spec.std, np.float32) * 255.0

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, index: int):
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        batch = []
        for i in chosen:
            image = self.images(self.paths[i])
            if self.augment:
                image = _augment(image, np.random.default_rng((self.seed or 0, int(i))))
            batch.append(image)
        x = (np.stack(batch).astype(np.float32) - self.mean) / self.std
        return x, self.labels[chosen]
