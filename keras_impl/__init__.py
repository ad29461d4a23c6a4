"""keras_impl: Keras 3 functional models interpreted from cnnspec (NHWC, every backend).

>>> from keras_impl import resnet18
>>> model = resnet18(classes=10, classifier_activation=None)

This package never imports torch: it runs on the tensorflow, jax and torch backends alike.

Importing the package loads nothing heavy: Keras (and with it TensorFlow) loads at the first use
of a name below, so ``python -m keras_impl`` quiets TensorFlow's start-up lines before they print.
A saved ``.keras`` file that holds this package's layers loads after ``import keras_impl.layers``
(which registers them with Keras), as a keras_hub model's file loads after ``import keras_hub``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import cnnspec
from cnnbase.version import __version__ as __version__

from .naming import constructors

# public name -> the module that defines it; one factory per registered model comes from .models
_EXPORTS = {
    "ChannelAffine": "layers",
    "LocalResponseNorm": "layers",
    "StochasticDepth": "layers",
    "TorchAdaptiveAvgPool2D": "layers",
    "TorchMaxPool2D": "layers",
    "build_model": "builder",
    "layer_name": "builder",
    "feature_extractor": "features",
    "features_only": "features",
    "decode_predictions": "pretrained",
    "load_image": "pretrained",
    "preprocess_input": "pretrained",
    "load_keras_applications_vgg16": "weights",
    "load_weights_file": "weights",
    "get_model": "models",
    "list_models": "models",
    "model_info": "models",
}

__all__ = [*_EXPORTS, *cnnspec.names(), *constructors()]


def __getattr__(name: str) -> Any:
    """Loads the module behind a public name (or a submodule) when it is first used."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in cnnspec.names():
        return importlib.import_module(".models", __name__).FACTORIES[name]
    if name in constructors():
        return importlib.import_module(".models", __name__).CONSTRUCTORS[name]
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
