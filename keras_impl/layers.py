"""Keras layers for the torch semantics Keras lacks. Only keras.ops: they run on every backend.

Each is registered as serializable, so a saved model (or a config sent to another process, as the
ONNX export does) rebuilds them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import ops

PACKAGE = "keras_impl"


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchMaxPool2D(keras.layers.Layer):
    """Max pooling with torch's padding and ``ceil_mode``.

    torch pads with -inf (padding never wins a max) and, in ceil mode, lets a last partial window
    hang over the bottom/right edge. Keras' MaxPooling2D has neither, so: pad -inf by ``padding``
    on all sides plus ``stride - 1`` more at the bottom/right in ceil mode (that turns floor into
    ceil), then a 'valid' max pool. torch also drops a last window that would start in the right
    padding; that can only happen when ``padding >= kernel - stride + 1``, and is then cropped.
    """

    def __init__(self, pool_size, strides, padding=0, ceil_mode=False, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides, self.pad = _pair(pool_size), _pair(strides), _pair(padding)
        self.ceil_mode = bool(ceil_mode)

    def _out_size(self, size, k, s, p):
        if size is None:
            return None
        span = size + 2 * p - k
        if not self.ceil_mode:
            return span // s + 1
        out = -(-span // s) + 1
        return out - 1 if (out - 1) * s >= size + p else out

    def _may_crop(self, axis: int) -> bool:
        k, s, p = self.pool_size[axis], self.strides[axis], self.pad[axis]
        return self.ceil_mode and p >= k - s + 1

    def call(self, x):
        extra = [(s - 1) if self.ceil_mode else 0 for s in self.strides]
        if any(self.pad) or any(extra):
            (ph, pw), (eh, ew) = self.pad, extra
            x_in = x
            x = ops.pad(x, [[0, 0], [ph, ph + eh], [pw, pw + ew], [0, 0]], constant_values=float("-inf"))
        else:
            x_in = x
        y = ops.max_pool(x, self.pool_size, self.strides, padding="valid")
        if self._may_crop(0) or self._may_crop(1):
            h, w = x_in.shape[1], x_in.shape[2]
            if h is None or w is None:
                raise ValueError(f"{self.name}: ceil_mode with padding {self.pad} needs a known input size")
            oh, ow = (self._out_size(n, k, s, p) for n, k, s, p in zip((h, w), self.pool_size, self.strides, self.pad))
            y = y[:, :oh, :ow, :]
        return y

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        oh, ow = (
            self._out_size(size, k, s, p) for size, k, s, p in zip((h, w), self.pool_size, self.strides, self.pad)
        )
        return (n, oh, ow, c)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.pad,
            "ceil_mode": self.ceil_mode,
        }


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """torch's adaptive pooling bins along one axis: ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    return [((i * size) // out, -(-(i + 1) * size // out)) for i in range(out)]


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchAdaptiveAvgPool2D(keras.layers.Layer):
    """torch.nn.AdaptiveAvgPool2d on NHWC for a known input size, upsampling included.

    Keras' AdaptiveAveragePooling2D agrees with torch when it shrinks a map, but not when the map
    is smaller than the output (VGG below 224 px, AlexNet below about 100 px): on jax a 3x3 map
    pooled to 7x7 is NaN, and TensorFlow's traced graph (LiteRT, SavedModel) of a 1x1 map fails to
    build. Here each output cell is the mean of its torch bin, written as one weighted gather per
    bin offset along each axis (slices, multiply, add: every backend and converter keeps NHWC).
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = _pair(output_size)

    def build(self, input_shape):
        # the bins from the static input size, read once here: a traced size (the ONNX exporter's)
        # would turn their arithmetic into graph ops
        self.bins = []
        for axis, out in zip((1, 2), self.output_size):
            size = input_shape[axis]
            if size is None:
                raise ValueError(f"{self.name}: adaptive pooling needs a known input size, received {input_shape}")
            self.bins.append(adaptive_bins(int(size), out))

    def _pool_axis(self, x, axis: int, bins: list[tuple[int, int]]):
        if bins == [(i, i + 1) for i in range(len(bins))]:  # the size is the output's already
            return x
        out = len(bins)
        longest = max(end - start for start, end in bins)
        shape = [1, 1, 1, 1]
        shape[axis] = out
        total = None
        for offset in range(longest):
            index = [min(start + offset, end - 1) for start, end in bins]
            weight = [1.0 / (end - start) if offset < end - start else 0.0 for start, end in bins]
            term = self._gather(x, index, axis) * ops.reshape(ops.convert_to_tensor(weight, dtype=x.dtype), shape)
            total = term if total is None else total + term
        return total

    @staticmethod
    def _gather(x, index: list[int], axis: int):
        """``x``'s slices at ``index`` (non-decreasing) along ``axis``, concatenated: slices rather
        than ``ops.take``, whose torch form (index_select, then squeeze) the ONNX exporter breaks."""
        pieces = []
        for i in index:
            window = [slice(None)] * 4
            window[axis] = slice(i, i + 1)
            pieces.append(x[tuple(window)])
        return ops.concatenate(pieces, axis=axis)

    def call(self, x):
        return self._pool_axis(self._pool_axis(x, 1, self.bins[0]), 2, self.bins[1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class LocalResponseNorm(keras.layers.Layer):
    """torch.nn.LocalResponseNorm on NHWC: ``x / (k + alpha/size * sum_window x^2) ** beta``.

    The window spans ``size`` channels, ``size // 2`` before and ``(size - 1) // 2`` after, zero
    padded, and alpha is divided by ``size`` (tf.nn.local_response_normalization uses a radius and
    does not divide), so the spec's torch constants are used as they are.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)

    def call(self, x):
        channels = x.shape[-1]
        sq = ops.pad(ops.square(x), [[0, 0], [0, 0], [0, 0], [self.size // 2, (self.size - 1) // 2]])
        window = sq[..., 0:channels]
        for i in range(1, self.size):
            window = window + sq[..., i : i + channels]
        return x / ops.power(self.k + (self.alpha / self.size) * window, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelAffine(keras.layers.Layer):
    """Fixed ``x * scale + shift`` per channel (GoogLeNet's transform_input); no weights."""

    def __init__(self, scale: Sequence[float], shift: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.scale, self.shift = [float(v) for v in scale], [float(v) for v in shift]

    def call(self, x):
        scale = ops.convert_to_tensor(self.scale, dtype=x.dtype)
        shift = ops.convert_to_tensor(self.shift, dtype=x.dtype)
        return x * scale + shift

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "shift": self.shift}


@keras.saving.register_keras_serializable(package=PACKAGE)
class StochasticDepth(keras.layers.Layer):
    """torchvision's StochasticDepth: the identity in inference; in training, rows (``mode="row"``)
    or the whole batch are zeroed with probability ``rate`` and the survivors scaled by
    ``1 / (1 - rate)`` (the same rule; the random draws are each framework's own)."""

    def __init__(self, rate: float, mode: str = "row", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.mode, self.seed = float(rate), str(mode), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        survival = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1) if self.mode == "row" else (1,) * len(x.shape)
        keep = ops.cast(keras.random.uniform(shape, seed=self.seed_generator) < survival, x.dtype)
        return x * keep / survival if survival > 0.0 else x * keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "mode": self.mode, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization whose training step updates the running variance as torch does.

    Both frameworks normalise a training batch with its biased variance (divided by N, the count
    of values per channel: batch x height x width). torch then folds the *unbiased* variance
    (divided by N - 1) into ``running_var``; Keras folds the biased one into ``moving_variance``.
    The difference is a factor N / (N - 1) on the new term: 1.6 % at batch 4 on a 2x2 map, and it
    compounds over steps. Here the training branch rescales that term, so a model trained in Keras
    carries torch's statistics into inference. ``unbiased_running_variance = False`` on a layer
    restores Keras' rule (the twin tests of ``parity.check_training`` do that to prove the check
    sees it).

    ``float64`` inputs are normalised in float64 on every backend: Keras' own layer computes in
    ``result_type(inputs, float32)``, which Keras caps at float32 on jax and torch (to match jax's
    default), so a float64 model was silently normalised in float32 there (3e-7 relative error,
    measured; the float64 training-parity check on those backends failed at the first BatchNorm).
    """

    unbiased_running_variance = True

    def call(self, inputs, training=None, mask=None):
        if self.renorm or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, statistics_float(inputs.dtype))
        if training and self.trainable:
            mean, variance = self._moments(x, None)
            shape = ops.shape(x)
            count = 1
            for axis in self._reduction_axes:
                count = count * shape[axis]
            count = ops.cast(count, x.dtype)
            new_variance = (
                variance * count / ops.maximum(count - 1.0, 1.0) if self.unbiased_running_variance else variance
            )
            momentum = float(
                self.momentum
            )  # a Python float: ops.cast(0.9, "float64") rounds 0.9 to float32 first on tensorflow
            self.moving_mean.assign(
                ops.cast(
                    ops.cast(self.moving_mean, x.dtype) * momentum + mean * (1.0 - momentum), self.moving_mean.dtype
                )
            )
            self.moving_variance.assign(
                ops.cast(
                    ops.cast(self.moving_variance, x.dtype) * momentum + new_variance * (1.0 - momentum),
                    self.moving_variance.dtype,
                )
            )
        else:
            mean, variance = ops.cast(self.moving_mean, x.dtype), ops.cast(self.moving_variance, x.dtype)
        gamma = ops.cast(self.gamma, x.dtype) if self.scale else None
        beta = ops.cast(self.beta, x.dtype) if self.center else None
        out = ops.batch_normalization(
            x, mean=mean, variance=variance, axis=self.axis, offset=beta, scale=gamma, epsilon=self.epsilon
        )
        return ops.cast(out, self.compute_dtype)


def statistics_float(dtype) -> str:
    """The dtype BatchNorm computes in: float32 for float16/bfloat16 inputs (their statistics
    overflow in half precision, as Keras does), float64 for float64, float32 otherwise."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float64" if dtype == "float64" else keras.backend.result_type(dtype, "float32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class GELU(keras.layers.Layer):
    """torch's nn.GELU: ``x * Phi(x)`` with the exact normal CDF by default, the tanh form with
    ``approximate=True``. Written out rather than ``ops.gelu``: TensorFlow's ``tf.nn.gelu`` is off
    by 5e-9 in float64 (measured against math.erfc; ``tf.math.erf`` is exact), which the float64
    training check sees. Python-float constants keep the input's dtype on every backend."""

    def __init__(self, approximate: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.approximate = bool(approximate)

    def call(self, x):
        if self.approximate:
            return 0.5 * x * (1.0 + ops.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))
        return 0.5 * x * (1.0 + ops.erf(x * (1.0 / math.sqrt(2.0))))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "approximate": self.approximate}


class _BareParameter(keras.layers.Layer):
    """A layer whose one weight has torch's shape, ``(1, 1, D)`` or ``(1, T, D)`` (see subclasses)."""

    def __init__(self, initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def get_config(self):
        return {**super().get_config(), "initializer": keras.initializers.serialize(self.initializer)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClassToken(_BareParameter):
    """Prepends one learned (1, 1, D) token to (N, T, D) tokens (ViT's class token)."""

    def build(self, input_shape):
        self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer=self.initializer, name="class_token")

    def call(self, x):
        token = ops.broadcast_to(ops.cast(self.token, x.dtype), (ops.shape(x)[0], 1, x.shape[-1]))
        return ops.concatenate([token, x], axis=1)

    def compute_output_shape(self, input_shape):
        n, t, d = input_shape
        return (n, None if t is None else t + 1, d)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PositionEmbedding(_BareParameter):
    """Adds a learned (1, T, D) table to (N, T, D) tokens (ViT's position embedding)."""

    def build(self, input_shape):
        self.table = self.add_weight(
            shape=(1,) + tuple(input_shape[1:]), initializer=self.initializer, name="pos_embedding"
        )

    def call(self, x):
        return x + ops.cast(self.table, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class SelectToken(keras.layers.Layer):
    """Token ``index`` of (N, T, D) tokens, as (N, D) (ViT's head reads the class token)."""

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, x):
        return x[:, self.index]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "index": self.index}
