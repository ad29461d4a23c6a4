"""keras.applications.imagenet_utils' two functions: ``preprocess_input`` (torchvision's
normalisation, keras.applications' ``"torch"`` mode) and ``decode_predictions`` (WordNet id, name,
score), from data the package ships."""

from keras_impl import decode_predictions, preprocess_input

__all__ = ["decode_predictions", "preprocess_input"]
