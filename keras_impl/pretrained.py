"""Published weights in Keras: ``resnet18(weights="imagenet")``, the weights names, and their
preprocessing (``preprocess_input``, ``decode_predictions``, ``load_image``).

The Keras weights are torchvision's file converted by the parity layer, checked on a probe batch
against the torch model, and cached under Keras' own folder (``$KERAS_HOME/models/classic_cnns``,
default ``~/.keras``) with a small JSON record (:class:`cnnspec.published.ConversionRecord`, the
type parity writes): the source file and its sha256, the converted file's sha256 (checked at every
load, so a damaged cache is converted again) and the measured agreement. What a file fixes and
warns about is :mod:`cnnspec.published`'s; this module only converts, caches and loads.
keras_impl never imports torch: a missing conversion runs ``python -m parity fetch``
in a subprocess, which needs torch installed; without torch, the error names the command to run
on a machine that has it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import cnnspec
from cnnspec import published
from cnnspec.published import ConversionRecord, PublishedWeights

from .builder import build_model, layer_name
from .weights import copy_weights_by_name

CACHE_SUBDIR = Path("models") / "classic_cnns"


def keras_home() -> Path:
    """Keras' cache root: ``$KERAS_HOME``, else ``~/.keras`` (read at each call, unlike Keras)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def converted_path(entry: PublishedWeights) -> Path:
    """The cached Keras file of ``entry``: the torch file's stem (which carries its hash) + .weights.h5."""
    stem = entry.file_name.rsplit(".", 1)[0]
    return keras_home() / CACHE_SUBDIR / f"{stem}.weights.h5"


def record_path(entry: PublishedWeights) -> Path:
    return converted_path(entry).with_name(converted_path(entry).name.removesuffix(".weights.h5") + ".json")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_record(entry: PublishedWeights) -> ConversionRecord | None:
    """The conversion record when the cached file is complete and unchanged, else None."""
    path, record = converted_path(entry), record_path(entry)
    if not (path.is_file() and record.is_file()):
        return None
    try:
        info = ConversionRecord.from_json(record.read_text())
    except (OSError, ValueError, TypeError):
        return None
    return info if info.describes(entry, sha256_of(path)) else None


def fetch_command(entry: PublishedWeights) -> str:
    return f"python -m parity fetch {entry.model} --weights {entry.name} --framework keras"


def ensure_converted(entry: PublishedWeights) -> Path:
    """The cached Keras file of ``entry``, converted first (in a subprocess) when it is missing."""
    if read_record(entry) is not None:
        return converted_path(entry)
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("parity") is None:
        raise RuntimeError(
            f"{entry.key} in Keras is converted from torchvision's file, which needs torch; it is not installed here. "
            f"Run `{fetch_command(entry)}` where torch is (pip install 'classic-cnns[all]'), then copy "
            f"{converted_path(entry).name} and {record_path(entry).name} into {converted_path(entry).parent}"
        )
    cmd = [sys.executable, "-m", "parity", "fetch", entry.model, "--weights", entry.name, "--framework", "keras"]
    print(f"converting {entry.key} for Keras once: {fetch_command(entry)}", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # stderr (progress, errors) goes to the user
    print(done.stdout, file=sys.stderr, end="", flush=True)  # where the files went, the probe's figures
    if done.returncode != 0 or read_record(entry) is None:
        tail = done.stdout.strip().splitlines()[-3:]
        raise RuntimeError(
            f"converting {entry.key} for Keras failed (exit {done.returncode}); the reason is printed above. "
            f"{' '.join(tail)}".strip()
        )
    return converted_path(entry)


def load_pretrained(model, entry: PublishedWeights, options: dict[str, Any]) -> None:
    """Loads ``entry``'s converted weights into ``model`` (any input size, with or without top).

    The converted file holds the model with the file's head and no aux heads. A model of that
    layout loads it directly; any other (``include_top=False``, aux heads) gets its layers copied by
    name from such a reference model, the way the torch side ignores absent heads.
    """
    path = ensure_converted(entry)
    default = cnnspec.get(entry.model)
    aux = tuple(f"{a.name}_" for a in default.aux_heads)
    has_top = any(layer.name == layer_name(default.classifier) for layer in model.layers)
    has_aux = bool(aux) and any(layer.name.startswith(aux) for layer in model.layers)
    if has_top and not has_aux:
        try:
            model.load_weights(str(path))
            return
        except (ValueError, KeyError) as err:
            raise ValueError(f"{path} does not fit {model.name}: {err}") from None
    plain = {k: v for k, v in options.items() if k not in ("aux_logits", "num_classes")}
    spec = cnnspec.get(entry.model, num_classes=entry.num_classes, **plain)
    reference = build_model(replace(spec, aux_heads=()), classifier_activation=None)
    reference.load_weights(str(path))
    untouched = [n for n in copy_weights_by_name(reference, model, label=entry.key) if not (aux and n.startswith(aux))]
    if untouched:  # the aux heads are cnnspec.published.warn_unusable_head's
        warnings.warn(
            f"{len(untouched)} layers are not in {entry.key} and keep their initial values "
            f"({', '.join(untouched[:4])}{'...' if len(untouched) > 4 else ''})",
            stacklevel=4,
        )


# ----------------------------------------------------------------------------- preprocessing
def _transform(model: str | None, weights: str) -> cnnspec.EvalTransform:
    if model is None:
        return cnnspec.EvalTransform()  # the ImageNet mean/std every DEFAULT entry uses
    return cnnspec.published_weights(model, weights).transforms


def preprocess_input(x, data_format: str | None = None, *, model: str | None = None, weights: str = "imagenet"):
    """RGB values in [0, 255] -> the normalised input the published weights expect: ``(x / 255 - mean) / std``
    (keras.applications' "torch" mode). ``model``/``weights`` pick an entry with other statistics
    (vgg16 ``IMAGENET1K_FEATURES``); the default is ImageNet's. Works on NumPy arrays and tensors."""
    import keras

    t = _transform(model, weights)
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', received {data_format!r}")
    shape = (3,) if data_format == "channels_last" else (3, 1, 1)
    mean = np.asarray(t.mean, np.float32).reshape(shape) * 255.0
    std = np.asarray(t.std, np.float32).reshape(shape) * 255.0
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        x = np.asarray(x, dtype=np.float32)
        _check_channels(x.shape, data_format)
        return (x - mean) / std
    x = keras.ops.cast(x, "float32")
    _check_channels(tuple(x.shape), data_format)
    return (x - keras.ops.convert_to_tensor(mean)) / keras.ops.convert_to_tensor(std)


def _check_channels(shape: tuple, data_format: str) -> None:
    axis = -1 if data_format == "channels_last" else (-3 if len(shape) >= 3 else 0)
    if len(shape) < 3 or shape[axis] != 3:
        raise ValueError(
            f"preprocess_input expects RGB images shaped (..., H, W, 3) ({data_format}), received shape {shape}"
        )


def decode_predictions(preds, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """keras.applications' ``decode_predictions``, without its download: one list per sample of
    ``(WordNet id, class name, score)``, best first, the same tuples Keras returns (its class
    index ships with the package). torchvision's names for the same classes:
    ``cnnspec.categories()``."""
    import keras

    table = published.class_index("imagenet1k")
    preds = keras.ops.convert_to_numpy(preds)
    if preds.ndim != 2 or preds.shape[1] != len(table):
        raise ValueError(
            f"decode_predictions expects a batch of predictions shaped (samples, {len(table)}), "
            f"received shape {preds.shape}"
        )
    if not 1 <= top <= len(table):
        raise ValueError(f"top must be between 1 and {len(table)}, received top={top}")
    out = []
    for row in preds:  # keras.applications' order, ties included
        best = sorted(row.argsort()[-top:][::-1], key=lambda i: row[i], reverse=True)
        out.append([(*table[i], float(row[i])) for i in best])
    return out


def load_image(path: str | os.PathLike, model: str, weights: str = "imagenet") -> np.ndarray:
    """An image file resized and centre-cropped as the entry's evaluation preprocessing says
    (short side to ``resize_size`` with antialiased bilinear, as torchvision does on PIL images, then
    a ``crop_size`` square): float32 (crop, crop, 3) in [0, 255], ready for :func:`preprocess_input`."""
    from PIL import Image

    t = _transform(model, weights)
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        short = min(w, h)
        new_w, new_h = (
            (t.resize_size, int(t.resize_size * h / w)) if w == short else (int(t.resize_size * w / h), t.resize_size)
        )
        resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}[t.interpolation]
        image = image.resize((new_w, new_h), resample)
        left, top = int(round((new_w - t.crop_size) / 2.0)), int(round((new_h - t.crop_size) / 2.0))
        image = image.crop((left, top, left + t.crop_size, top + t.crop_size))
        return np.asarray(image, dtype=np.float32)
