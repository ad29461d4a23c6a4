"""VGG19, VGG19BN, with preprocess_input and decode_predictions, as keras.applications' module of the same name:
``from keras_impl.applications.vgg19 import VGG19, preprocess_input, decode_predictions``.

``preprocess_input`` normalises the torchvision way, which the published weights expect
(keras.applications' ``"torch"`` mode), whatever mode Keras' module of the same name uses.
"""

from keras_impl import VGG19, VGG19BN, decode_predictions, preprocess_input

__all__ = ["VGG19", "VGG19BN", "decode_predictions", "preprocess_input"]
