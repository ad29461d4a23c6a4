"""Random initial weights drawn by NumPy on the host while a model is built on Keras' jax backend.

jax compiles its random draw for every new weight shape (threefry and the normal transform, about
0.1 s each on a CPU): GoogLeNet's 163 shapes took 17 s to build, EfficientNet-B0's 13 s,
MobileNetV2's 10 s, against 1-2.5 s with NumPy drawing the same distributions. A built model
records Keras' own initialiser for each weight (:func:`record_keras_initializers`), so its config
and a saved ``.keras`` file are what they would have been, and load without this module.

Reproducible the way Keras is: each draw takes its seed from Keras' global seed generator, which
``keras.utils.set_random_seed`` seeds (an initialiser given its own ``seed`` uses that one); NumPy's
global generator is left alone.

Inside :func:`weights_follow` a build draws nothing on any backend: zeros stand in for the random
weights (recorded back the same way), for a model whose every weight is assigned right after (a
transfer from its torch twin, a checkpoint): VGG19's 143 M draws were 0.9 s of a 1.1 s build.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import keras
import numpy as np

DRAWN = (keras.initializers.RandomNormal, keras.initializers.RandomUniform, keras.initializers.TruncatedNormal)


_WEIGHTS_FOLLOW = contextvars.ContextVar("keras_impl_weights_follow", default=False)


@contextlib.contextmanager
def weights_follow() -> Iterator[None]:
    """Models built inside start with zeros where Keras would draw random weights (their configs
    still name Keras' initialisers): for a caller that assigns every weight next."""
    token = _WEIGHTS_FOLLOW.set(True)
    try:
        yield
    finally:
        _WEIGHTS_FOLLOW.reset(token)


def on_host(initializer):
    """``initializer`` drawn by NumPy where that saves a compilation per shape (the jax backend and
    one of Keras' random normal, uniform or truncated normal initialisers), not drawn at all inside
    :func:`weights_follow`; otherwise unchanged."""
    if _WEIGHTS_FOLLOW.get():
        stand_in: type[_StandIn] = Undrawn
    elif keras.backend.backend() == "jax":
        stand_in = HostDraw
    else:
        return initializer
    initializer = keras.initializers.get(initializer)
    return stand_in(initializer) if type(initializer) in DRAWN else initializer


class _StandIn(keras.initializers.Initializer):
    """Builds a weight in place of ``equivalent`` (a Keras random initialiser), which the built model records."""

    def __init__(self, equivalent) -> None:
        self.equivalent = keras.initializers.get(equivalent)

    def get_config(self) -> dict:
        return {"equivalent": keras.initializers.serialize(self.equivalent)}


@keras.saving.register_keras_serializable(package="keras_impl")
class Undrawn(_StandIn):
    """Zeros: the weight is assigned before it is used (see :func:`weights_follow`)."""

    def __call__(self, shape, dtype=None):
        return keras.ops.zeros(shape, dtype=dtype or keras.config.floatx())


@keras.saving.register_keras_serializable(package="keras_impl")
class HostDraw(_StandIn):
    """Draws what ``equivalent`` (a Keras random initialiser) draws, with NumPy, at once."""

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


def record_keras_initializers(model: keras.Model) -> keras.Model:
    """Puts Keras' own initialiser back wherever a :class:`HostDraw` drew or an :class:`Undrawn`
    stood in (every layer, nested ones too: MultiHeadAttention clones its initialisers into its projections)."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for attribute, value in list(vars(layer).items()):
            if isinstance(value, _StandIn):
                setattr(layer, attribute, value.equivalent)
    return model
