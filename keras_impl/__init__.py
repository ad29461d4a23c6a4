"""keras_impl: Keras 3 functional models interpreted from cnnspec (NHWC, every backend).

>>> from keras_impl import resnet18
>>> model = resnet18(classes=10, classifier_activation=None)

This package never imports torch: it runs on the tensorflow, jax and torch backends alike.
"""

import sys

if sys.argv[:1] == ["-m"]:  # the package is being imported for ``python -m keras_impl``: keep the CLI's stderr
    from cnnbase.cli import (
        quiet_framework_logs,  # free of TensorFlow's start-up lines (cnnbase.cli), before Keras loads
    )

    quiet_framework_logs()
from . import models as _models
from .builder import build_model, layer_name
from .layers import ChannelAffine, LocalResponseNorm, StochasticDepth, TorchMaxPool2D
from .models import FACTORIES, get_model, list_models, model_info
from .pretrained import decode_predictions, load_image, preprocess_input
from .weights import load_keras_applications_vgg16, load_weights_file

__all__ = [
    "ChannelAffine",
    "LocalResponseNorm",
    "StochasticDepth",
    "TorchMaxPool2D",
    "build_model",
    "decode_predictions",
    "layer_name",
    "load_image",
    "load_keras_applications_vgg16",
    "load_weights_file",
    "preprocess_input",
    "get_model",
    "list_models",
    "model_info",
    *_models.__all__,
]
globals().update(FACTORIES)  # one factory per registered model: ``from keras_impl import vgg16``
