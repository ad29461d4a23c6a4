"""Loading weights into keras_impl models: our own .weights.h5, and keras.applications' VGG16."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import keras

PathLike = Union[str, os.PathLike]


def load_weights_file(model: keras.Model, path: PathLike) -> None:
    """Loads a Keras ``.weights.h5`` file (no code in it, nothing unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if not path.name.endswith(".weights.h5"):
        raise ValueError(
            f"unsupported weights file {path.name!r}: keras_impl loads Keras '.weights.h5' files; "
            "convert a torch checkpoint with `python -m parity convert`"
        )
    try:
        model.load_weights(str(path))
    except (ValueError, OSError, KeyError) as err:
        raise ValueError(f"{path} does not fit {model.name}: {err}") from None


def load_keras_applications_vgg16(model: keras.Model, source: Union[keras.Model, PathLike]) -> keras.Model:
    """Copies keras.applications.VGG16's weights into keras_impl's ``vgg16``.

    ``source`` is a ``keras.applications.VGG16`` model or a weights file saved from one. Both
    models have the same 16 weighted layers in the same order and both flatten (H, W, C), so the
    weights copy one to one; the classifier must have the same number of classes.
    """
    if not isinstance(source, keras.Model):
        path = Path(source)
        reference = keras.applications.VGG16(weights=None, include_top=True, classes=_classes(model))
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        reference.load_weights(str(path))
        source = reference
    src = [l for l in source.layers if l.weights]
    dst = [l for l in model.layers if l.weights]
    if len(src) != len(dst):
        raise ValueError(f"keras.applications model has {len(src)} weighted layers, {model.name} has {len(dst)}: is this VGG16 with include_top=True?")
    for a, b in zip(src, dst):
        wa, wb = a.get_weights(), b.get_weights()
        shapes_a, shapes_b = [w.shape for w in wa], [w.shape for w in wb]
        if shapes_a != shapes_b:
            raise ValueError(f"layer {a.name} {shapes_a} does not fit {b.name} {shapes_b}")
    for a, b in zip(src, dst):
        b.set_weights(a.get_weights())
    return model


def _classes(model: keras.Model) -> int:
    return int(model.outputs[0].shape[-1])
