"""keras_impl: Keras 3 functional models interpreted from cnnspec (NHWC, every backend).

>>> from keras_impl import resnet18
>>> model = resnet18(classes=10, classifier_activation=None)

This package never imports torch: it runs on the tensorflow, jax and torch backends alike.
"""
import sys

if sys.argv[:1] == ["-m"]:  # the package is being imported for ``python -m keras_impl``: keep the CLI's stderr
    from cnnspec.cli import quiet_framework_logs  # free of TensorFlow's start-up lines (cnnspec.cli), before Keras loads

    quiet_framework_logs()
from .builder import build_model, layer_name  # noqa: E402
from .layers import ChannelAffine, LocalResponseNorm, TorchMaxPool2D
from .models import (
    alexnet,
    alexnet_original,
    get_model,
    googlenet,
    lenet5,
    list_models,
    model_info,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
from .pretrained import decode_predictions, load_image, preprocess_input
from .weights import load_keras_applications_vgg16, load_weights_file

__all__ = [
    "ChannelAffine", "LocalResponseNorm", "TorchMaxPool2D", "alexnet", "alexnet_original", "build_model", "decode_predictions", "get_model",
    "googlenet", "layer_name", "lenet5", "list_models", "load_image", "load_keras_applications_vgg16", "load_weights_file", "model_info",
    "preprocess_input",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn",
    "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
]
