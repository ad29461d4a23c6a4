"""LeNet5, with preprocess_input and decode_predictions, as the family's module:
``from keras_impl.applications.lenet import LeNet5, preprocess_input, decode_predictions``.

``preprocess_input`` normalises the torchvision way, which the published weights expect
(keras.applications' ``"torch"`` mode), whatever mode Keras' module of the same name uses.
"""

from keras_impl import LeNet5, decode_predictions, preprocess_input

__all__ = ["LeNet5", "decode_predictions", "preprocess_input"]
