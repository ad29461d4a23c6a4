"""keras.applications' spelling of the model names (``VGG16``, ``MobileNetV2``): plain text, no
Keras import, so the package can list its constructors before Keras loads."""

from __future__ import annotations

import re

import cnnspec

_FAMILY_WORDS = {
    "alexnet": "AlexNet",
    "vgg": "VGG",
    "resnet": "ResNet",
    "googlenet": "GoogLeNet",
    "lenet": "LeNet",
    "mobilenet": "MobileNet",
    "efficientnet": "EfficientNet",
    "vit": "ViT",
}


def constructor_name(name: str) -> str:
    """keras.applications' spelling of a model name, one rule for all: the family's own capitals
    (``VGG``, ``ResNet``, ``GoogLeNet``, ``ViT``), then the rest upper-cased without underscores,
    words capitalised: vgg16 -> VGG16, vgg16_bn -> VGG16BN, mobilenet_v2 -> MobileNetV2,
    efficientnet_b0 -> EfficientNetB0, vit_b_16 -> ViTB16, alexnet_original -> AlexNetOriginal."""
    head = re.match(r"[a-z]+", name).group(0)
    rest = name[len(head) :].split("_")
    words = [w.capitalize() if w.isalpha() and len(w) > 2 else w.upper() for w in rest if w]
    return _FAMILY_WORDS.get(head, head.capitalize()) + "".join(words)


def constructors() -> dict[str, str]:
    """Every registered model's constructor name -> its name (``VGG16`` -> ``vgg16``)."""
    return {constructor_name(name): name for name in cnnspec.names()}
