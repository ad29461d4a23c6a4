"""Public factories with keras.applications' arguments::

    vgg16(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", **model_options)

``model_options`` are the spec's own (``dropout``, ``aux_logits``, ``transform_input``,
``zero_init_residual``). ``weights`` is None, ``"imagenet"`` (the catalog's DEFAULT entry), a
catalog name (``"IMAGENET1K_V1"``; see ``cnnspec.weights_names``), or a local ``.weights.h5``.
Published weights are torchvision's files converted once by the parity layer and cached under
``$KERAS_HOME`` (see :mod:`keras_impl.pretrained`). Inputs are channels-last (NHWC) and
preprocessed the torch way (``keras_impl.preprocess_input``), since the architectures and their
published weights come from torchvision.
GoogLeNet with ``aux_logits=True`` returns ``[logits, aux2, aux1]`` (torchvision's order) in
training and inference alike, since a functional model has fixed outputs; it defaults to False.
"""
from __future__ import annotations

import warnings
from typing import Any, List, Optional

import keras

import cnnspec

from cnnspec import catalog

from . import pretrained
from .builder import build_model
from .weights import load_weights_file


def list_models() -> List[str]:
    return cnnspec.names()


def model_info(name: str) -> cnnspec.ModelSpec:
    """The spec behind a model: input size, mean/std, classifier layer name, stages."""
    return cnnspec.get(name)


def get_model(
    name: str,
    include_top: bool = True,
    weights: Optional[str] = None,
    input_tensor=None,
    input_shape=None,
    pooling: Optional[str] = None,
    classes: Optional[int] = None,
    classifier_activation="softmax",
    **options: Any,
) -> keras.Model:
    """Builds ``name`` the way keras.applications builds its models (see the module docstring)."""
    if weights is not None and not isinstance(weights, (str, bytes)) and not hasattr(weights, "__fspath__"):
        raise TypeError(f"weights must be None, 'imagenet', a weights name or a path to a .weights.h5 file. Received: weights={weights!r}")
    entry = cnnspec.published_weights(name, weights) if catalog.is_weights_name(weights) else None
    if entry is not None:
        classes, options = pretrained.keras_options(entry, include_top, classes, options)
        if include_top and not entry.classifies:
            warnings.warn(f"{entry.key} are feature-only weights: the classifier holds no valid values; use include_top=False", stacklevel=3)
    if name == "googlenet":
        options.setdefault("aux_logits", False)
    if classes is not None:
        options["num_classes"] = classes
    spec = cnnspec.get(name, **options)
    model = build_model(spec, include_top, input_tensor, input_shape, pooling, classifier_activation)
    if entry is not None:
        pretrained.load_pretrained(model, entry, options)
    elif weights is not None:
        load_weights_file(model, weights, name, options)
    return model


def lenet5(**kwargs: Any) -> keras.Model:
    """LeNet-5 (LeCun et al. 1998), 32x32x1 input, 10 classes. ``lenet5()(np.zeros((1, 32, 32, 1)))``"""
    return get_model("lenet5", **kwargs)


def alexnet(**kwargs: Any) -> keras.Model:
    """AlexNet, torchvision's variant (Krizhevsky 2014), adaptive 6x6 pool before the classifier."""
    return get_model("alexnet", **kwargs)


def alexnet_original(**kwargs: Any) -> keras.Model:
    """AlexNet as in the 2012 paper: LRN, grouped convs, 227x227x3 inputs only."""
    return get_model("alexnet_original", **kwargs)


def vgg11(**kwargs: Any) -> keras.Model:
    """VGG-11, configuration A (Simonyan & Zisserman 2015)."""
    return get_model("vgg11", **kwargs)


def vgg11_bn(**kwargs: Any) -> keras.Model:
    """VGG-11 with BatchNorm."""
    return get_model("vgg11_bn", **kwargs)


def vgg13(**kwargs: Any) -> keras.Model:
    """VGG-13, configuration B."""
    return get_model("vgg13", **kwargs)


def vgg13_bn(**kwargs: Any) -> keras.Model:
    """VGG-13 with BatchNorm."""
    return get_model("vgg13_bn", **kwargs)


def vgg16(**kwargs: Any) -> keras.Model:
    """VGG-16, configuration D. keras.applications.VGG16 weights load with
    ``keras_impl.load_keras_applications_vgg16(model, "vgg16.weights.h5")``."""
    return get_model("vgg16", **kwargs)


def vgg16_bn(**kwargs: Any) -> keras.Model:
    """VGG-16 with BatchNorm."""
    return get_model("vgg16_bn", **kwargs)


def vgg19(**kwargs: Any) -> keras.Model:
    """VGG-19, configuration E."""
    return get_model("vgg19", **kwargs)


def vgg19_bn(**kwargs: Any) -> keras.Model:
    """VGG-19 with BatchNorm."""
    return get_model("vgg19_bn", **kwargs)


def googlenet(**kwargs: Any) -> keras.Model:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015), torchvision's layout."""
    return get_model("googlenet", **kwargs)


def resnet18(**kwargs: Any) -> keras.Model:
    """ResNet-18 (He et al. 2016)."""
    return get_model("resnet18", **kwargs)


def resnet34(**kwargs: Any) -> keras.Model:
    """ResNet-34."""
    return get_model("resnet34", **kwargs)


def resnet50(**kwargs: Any) -> keras.Model:
    """ResNet-50 (v1.5, stride on the bottleneck's 3x3 conv)."""
    return get_model("resnet50", **kwargs)


def resnet101(**kwargs: Any) -> keras.Model:
    """ResNet-101."""
    return get_model("resnet101", **kwargs)


def resnet152(**kwargs: Any) -> keras.Model:
    """ResNet-152."""
    return get_model("resnet152", **kwargs)
