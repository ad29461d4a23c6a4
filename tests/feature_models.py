"""The models the feature tests of both frameworks run (tests/test_features.py, torch, and
tests/test_features_keras.py, Keras against torch): one per family at a small side it takes, and a
small ViT spec the registry does not know (ViT-B/16's blocks at 32x32 would be slow)."""

from __future__ import annotations

import cnnspec
from cnnspec.models.vit import vision_transformer

# one model per family, at a small input side it takes
FAMILIES = {
    "lenet5": 32,
    "alexnet": 64,
    "vgg11_bn": 32,
    "googlenet": 64,
    "resnet18": 64,
    "mobilenet_v2": 64,
    "efficientnet_b0": 64,
    "small_vit": 32,
}


def small_vit_spec() -> cnnspec.ModelSpec:
    return vision_transformer("small_vit", 32, 8, 2, 4, 64, 128, num_classes=10)
