"""Random initial weights drawn by NumPy on the host while a model is built on Keras' jax backend.

jax compiles its random draw for every new weight shape (threefry and the normal transform, about
0.1 s each on a CPU): GoogLeNet's 163 shapes took 17 s to build, EfficientNet-B0's 13 s,
MobileNetV2's 10 s, against 1-2.5 s with NumPy drawing the same distributions. A built model
records Keras' own initialiser for each weight (:func:`record_keras_initializers`), so its config
and a saved ``.keras`` file are what they would have been, and load without this module.

Reproducible the way Keras is: each draw takes its seed from Keras' global seed generator, which
``keras.utils.set_random_seed`` seeds (an initialiser given its own ``seed`` uses that one); NumPy's
global generator is left alone.
"""

from __future__ import annotations

import keras
import numpy as np

DRAWN = (keras.initializers.RandomNormal, keras.initializers.RandomUniform, keras.initializers.TruncatedNormal)


def on_host(initializer):
    """``initializer`` drawn by NumPy where that saves a compilation per shape (the jax backend and
    one of Keras' random normal, uniform or truncated normal initialisers); otherwise unchanged."""
    if keras.backend.backend() != "jax":
        return initializer
    initializer = keras.initializers.get(initializer)
    return HostDraw(initializer) if type(initializer) in DRAWN else initializer


@keras.saving.register_keras_serializable(package="keras_impl")
class HostDraw(keras.initializers.Initializer):
    """Draws what ``equivalent`` (a Keras random initialiser) draws, with NumPy, at once."""

    def __init__(self, equivalent) -> None:
        self.equivalent = keras.initializers.get(equivalent)

    def __call__(self, shape, dtype=None):
        config = self.equivalent.get_config()
        seed = config.get("seed")
        if not isinstance(seed, int):  # Keras' global seed generator, as its own draws (one small op, compiled once)
            seed = keras.ops.convert_to_numpy(keras.random.randint((2,), 0, 2**31 - 1)).tolist()
        rng = np.random.default_rng(seed)
        if isinstance(self.equivalent, keras.initializers.RandomUniform):
            values = rng.random(shape, dtype=np.float32)  # float32 in place: a VGG head is 100 M values
            values *= config["maxval"] - config["minval"]
            values += config["minval"]
        else:
            values = rng.standard_normal(shape, dtype=np.float32)
            if isinstance(self.equivalent, keras.initializers.TruncatedNormal):  # Keras' bound: 2 deviations
                while (outside := np.abs(values) > 2.0).any():
                    values[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
            values *= config["stddev"]
            values += config["mean"]
        return keras.ops.convert_to_tensor(values, dtype=dtype or keras.config.floatx())

    def get_config(self) -> dict:
        return {"equivalent": keras.initializers.serialize(self.equivalent)}


def record_keras_initializers(model: keras.Model) -> keras.Model:
    """Puts Keras' own initialiser back wherever a :class:`HostDraw` drew (every layer, nested ones
    too: MultiHeadAttention clones its initialisers into its projections)."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for attribute, value in list(vars(layer).items()):
            if isinstance(value, HostDraw):
                setattr(layer, attribute, value.equivalent)
    return model
