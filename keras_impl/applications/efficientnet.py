"""EfficientNetB0, with preprocess_input and decode_predictions, as keras.applications' module of the same name:
``from keras_impl.applications.efficientnet import EfficientNetB0, preprocess_input, decode_predictions``.

``preprocess_input`` normalises the torchvision way, which the published weights expect
(keras.applications' ``"torch"`` mode), whatever mode Keras' module of the same name uses.
"""

from keras_impl import EfficientNetB0, decode_predictions, preprocess_input

__all__ = ["EfficientNetB0", "decode_predictions", "preprocess_input"]
