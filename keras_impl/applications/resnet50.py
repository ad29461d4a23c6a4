"""ResNet50, with preprocess_input and decode_predictions, as keras.applications' module of the same name:
``from keras_impl.applications.resnet50 import ResNet50, preprocess_input, decode_predictions``.

``preprocess_input`` normalises the torchvision way, which the published weights expect
(keras.applications' ``"torch"`` mode), whatever mode Keras' module of the same name uses.
"""

from keras_impl import ResNet50, decode_predictions, preprocess_input

__all__ = ["ResNet50", "decode_predictions", "preprocess_input"]
