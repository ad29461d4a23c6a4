"""VGG16, VGG16BN, with preprocess_input and decode_predictions, as keras.applications' module of the same name:
``from keras_impl.applications.vgg16 import VGG16, preprocess_input, decode_predictions``.

``preprocess_input`` normalises the torchvision way, which the published weights expect
(keras.applications' ``"torch"`` mode), whatever mode Keras' module of the same name uses.
"""

from keras_impl import VGG16, VGG16BN, decode_predictions, preprocess_input

__all__ = ["VGG16", "VGG16BN", "decode_predictions", "preprocess_input"]
