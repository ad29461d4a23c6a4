"""VGG11, VGG11BN, VGG13, VGG13BN, VGG16, VGG16BN, VGG19, VGG19BN,
with preprocess_input and decode_predictions, as the family's module:
``from keras_impl.applications.vgg import VGG11, preprocess_input, decode_predictions``.

``preprocess_input`` normalises the torchvision way, which the published weights expect
(keras.applications' ``"torch"`` mode), whatever mode Keras' module of the same name uses.
"""

from keras_impl import (
    VGG11,
    VGG11BN,
    VGG13,
    VGG13BN,
    VGG16,
    VGG16BN,
    VGG19,
    VGG19BN,
    decode_predictions,
    preprocess_input,
)

__all__ = [
    "VGG11",
    "VGG11BN",
    "VGG13",
    "VGG13BN",
    "VGG16",
    "VGG16BN",
    "VGG19",
    "VGG19BN",
    "decode_predictions",
    "preprocess_input",
]
