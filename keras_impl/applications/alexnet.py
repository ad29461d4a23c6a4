"""AlexNet, AlexNetOriginal, with preprocess_input and decode_predictions, as the family's module:
``from keras_impl.applications.alexnet import AlexNet, preprocess_input, decode_predictions``.

``preprocess_input`` normalises the torchvision way, which the published weights expect
(keras.applications' ``"torch"`` mode), whatever mode Keras' module of the same name uses.
"""

from keras_impl import AlexNet, AlexNetOriginal, decode_predictions, preprocess_input

__all__ = ["AlexNet", "AlexNetOriginal", "decode_predictions", "preprocess_input"]
