"""ViTB16, with preprocess_input and decode_predictions, as the family's module:
``from keras_impl.applications.vit import ViTB16, preprocess_input, decode_predictions``.

``preprocess_input`` normalises the torchvision way, which the published weights expect
(keras.applications' ``"torch"`` mode), whatever mode Keras' module of the same name uses.
"""

from keras_impl import ViTB16, decode_predictions, preprocess_input

__all__ = ["ViTB16", "decode_predictions", "preprocess_input"]
