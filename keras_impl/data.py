"""Image folders as ``keras.utils.PyDataset``: PIL decoding and NumPy, no TensorFlow, so the Keras
fine-tuning runs on the jax and torch backends in an environment without TensorFlow.

Files are listed like torchvision's ``ImageFolder`` (classes sorted, files sorted within each
class), decoded with PIL (grayscale for one-channel specs, RGB otherwise), resized to
``size`` x ``size`` (antialiased bilinear) and normalised with the spec's mean/std. Decoded,
resized images are kept in memory after they are first read when the folder fits in
``cache_bytes`` (default 2 GB), so later epochs do not decode again. Augmentation (torchvision's
``RandomResizedCrop`` with the run's crop scale when below 1, then the run's random flips) draws
from a NumPy generator seeded by (seed, sample index): the same images for the same seed, in any
order. The crop cuts the decoded image at its own size, as torchvision's does, so the training
images of a cropping run are kept unresized (``DecodedImages(source=True)``). Validation images
of published weights are resized (short side) and centre-cropped in their evaluation ratio.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

import cnnspec
from cnntune.folders import is_usable_image
from cnntune.options import AUGMENT_RATIO, DECODED_CACHE_BYTES, DEFAULT_CROP_SCALE
from cnntune.policy import should_drop_last


def list_images(folder: str | os.PathLike, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(file paths, int labels) in ImageFolder's order: classes in the given order, files sorted."""
    paths, labels = [], []
    for index, name in enumerate(classes):
        files = sorted(
            p for p in (Path(folder) / name).iterdir() if is_usable_image(p)
        )  # unreadable files skipped (named by check_layout)
        paths += [str(p) for p in files]
        labels += [index] * len(files)
    return paths, np.asarray(labels, dtype="int32")


class DecodedImages:
    """Decodes and resizes images once; keeps them (uint8) while they fit in the memory budget.
    ``source``: keep them at their own size instead, for a crop that cuts the image before it is
    resized (torchvision's ``RandomResizedCrop`` crops whole source pixels: on 8x8 digits a crop of
    7 of the 8 columns, not a sub-pixel cut of the 32x32 enlargement)."""

    def __init__(
        self,
        size: int,
        channels: int,
        cache_bytes: int = DECODED_CACHE_BYTES,
        resize: int | None = None,
        source: bool = False,
    ) -> None:
        self.size, self.channels, self.resize, self.source = size, channels, resize, source
        self.budget = cache_bytes
        self.store: dict[str, np.ndarray] = {}

    def __call__(self, path: str) -> np.ndarray:
        image = self.store.get(path)
        if image is None:
            from PIL import Image

            try:
                with Image.open(path) as raw:
                    image = np.asarray(raw.convert("L" if self.channels == 1 else "RGB"), dtype=np.uint8)
            except OSError as err:
                raise ValueError(f"cannot read image {path}: {err}") from None
            if image.ndim == 2:
                image = image[:, :, None]
            image = self._resize(image)
            if self.budget >= image.nbytes:
                self.store[path] = image
                self.budget -= image.nbytes
        return image

    def _resize(self, image: np.ndarray) -> np.ndarray:
        """size x size; or, with ``resize``, the short side to ``resize`` and a centre crop."""
        if self.source:
            return image
        if self.resize is None:
            return _resized(image, (self.size, self.size))
        h, w = image.shape[:2]
        scale = self.resize / min(w, h)
        image = _resized(image, (max(self.size, round(h * scale)), max(self.size, round(w * scale))))
        top, left = (image.shape[0] - self.size) // 2, (image.shape[1] - self.size) // 2
        return image[top : top + self.size, left : left + self.size]


def _resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` (HWC uint8) at ``shape`` (height, width), PIL's bilinear as torchvision's ``Resize``."""
    if image.shape[:2] == tuple(shape):
        return image
    from PIL import Image

    squeeze = image.shape[2] == 1
    pil = Image.fromarray(np.ascontiguousarray(image[:, :, 0] if squeeze else image))
    resized = np.asarray(pil.resize((shape[1], shape[0]), Image.BILINEAR), dtype=np.uint8)
    return resized[:, :, None] if squeeze else resized


def _augment(
    image: np.ndarray,
    rng: np.random.Generator,
    crop_scale: float = DEFAULT_CROP_SCALE,
    flip: str = "none",
    size: int | None = None,
) -> np.ndarray:
    """torchvision's RandomResizedCrop (area in ``crop_scale``-1, aspect ratio in AUGMENT_RATIO, ten
    tries, then the central crop) cut from ``image`` at its own size and resized to ``size`` (default
    the image's own height and width) when ``crop_scale`` is below 1, then the ``flip`` axes' flips
    (each half of the time), as torch_impl.finetune.image_transforms does."""
    height, width = image.shape[:2]
    shape = (size, size) if size else (height, width)
    if crop_scale < 1:
        area = height * width
        box = None
        for _ in range(10):
            target = area * rng.uniform(crop_scale, 1.0)
            ratio = math.exp(rng.uniform(math.log(AUGMENT_RATIO[0]), math.log(AUGMENT_RATIO[1])))
            w, h = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
            if 0 < w <= width and 0 < h <= height:
                top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
                box = (top, left, h, w)
                break
        if box is None:
            side = min(height, width)
            box = ((height - side) // 2, (width - side) // 2, side, side)
        top, left, h, w = box
        image = image[top : top + h, left : left + w]
    image = _resized(image, shape)
    if flip in ("horizontal", "both") and rng.random() < 0.5:
        image = image[:, ::-1]
    if flip in ("vertical", "both") and rng.random() < 0.5:
        image = image[::-1]
    return image


class ImageFolderDataset(keras.utils.PyDataset):
    """Batches ``(normalised NHWC float32 images, int32 labels)`` of an image folder's files.

    ``shuffle_seed`` shuffles the order (and seeds the augmentation); ``drop_last`` drops a last
    batch of a single sample (BatchNorm cannot train on it); ``workers`` > 1 decodes in threads.
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: np.ndarray,
        spec: cnnspec.ModelSpec,
        size: int,
        batch_size: int,
        *,
        images: DecodedImages | None = None,
        shuffle_seed: int | None = None,
        augment: bool = False,
        drop_last: bool = False,
        workers: int = 0,
        mean=None,
        std=None,
        crop_scale: float = DEFAULT_CROP_SCALE,
        flip: str = "none",
    ) -> None:
        super().__init__(workers=max(1, workers), use_multiprocessing=False)  # threads: PIL decodes without the GIL
        self.paths, self.labels = list(paths), np.asarray(labels, dtype="int32")
        self.batch_size, self.size = batch_size, size
        self.images = images or DecodedImages(size, spec.input_size[0])
        self.seed, self.augment = shuffle_seed, augment
        self.crop_scale, self.flip = crop_scale, flip
        self.order = (
            np.arange(len(self.paths))
            if shuffle_seed is None
            else np.random.default_rng(shuffle_seed).permutation(len(self.paths))
        )
        if drop_last and should_drop_last(len(self.order), batch_size):
            self.order = self.order[:-1]
        self.mean = np.asarray(mean or spec.mean, np.float32) * 255.0  # published weights bring their own statistics
        self.std = np.asarray(std or spec.std, np.float32) * 255.0

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, index: int):
        chosen = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = []
        for i in chosen:
            image = self.images(self.paths[i])
            if self.augment:
                rng = np.random.default_rng((self.seed or 0, int(i)))
                image = _augment(image, rng, self.crop_scale, self.flip, self.size)
            batch.append(_resized(image, (self.size, self.size)))
        x = (np.stack(batch).astype(np.float32) - self.mean) / self.std
        return x, self.labels[chosen]
