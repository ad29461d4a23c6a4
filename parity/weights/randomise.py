"""Seeded random weights that exercise everything, on either framework.

Fresh models hide mistakes: zero running means and unit variances make a wrong BatchNorm eps or a
missing momentum conversion nearly invisible. These fill every parameter and every BatchNorm
statistic with seeded random values of a sensible scale (weights ~ 1/sqrt(fan_in), so activations
neither vanish nor explode through 150 layers).
"""

from __future__ import annotations

import numpy as np


def random_array(shape, kind: str, rng: np.random.Generator, fan_in: int | None = None) -> np.ndarray:
    """``kind`` is 'weight' (matrix/kernel; ``fan_in`` defaults to torch's, all but the first
    axis), 'gamma', 'beta', 'bias', 'mean' or 'variance'. Drawn in float32 and scaled in place;
    weights are uniform with standard deviation 1/sqrt(fan_in), as torch's kaiming_uniform family:
    3.5x faster to draw than normal ones (VGG16's 138 M: 0.5 s, and 6.5 s as float64 draws cast down)."""
    if kind == "weight":
        fan_in = fan_in or (int(np.prod(shape[1:])) if len(shape) > 1 else 1)
        values = rng.random(shape, dtype=np.float32)  # [0, 1): mean 1/2, std 1/sqrt(12)
        values -= np.float32(0.5)
        values *= np.float32(np.sqrt(12.0 / fan_in))
        return values
    if kind in ("gamma", "beta", "bias", "mean"):
        values = rng.standard_normal(shape, dtype=np.float32)
        values *= np.float32(0.1)
        return values + np.float32(1.0) if kind == "gamma" else values
    if kind == "variance":
        values = rng.random(shape, dtype=np.float32)
        values *= np.float32(0.5)
        return values + np.float32(0.5)
    raise ValueError(f"unknown kind {kind!r}")


def randomise_torch(model, seed: int = 0):
    """Every parameter and BatchNorm buffer of a torch model, in place; returns the model."""
    import torch
    from torch import nn

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                pairs = [
                    (module.weight, "gamma"),
                    (module.bias, "beta"),
                    (module.running_mean, "mean"),
                    (module.running_var, "variance"),
                ]
            elif isinstance(module, nn.LayerNorm):
                pairs = [(module.weight, "gamma"), (module.bias, "beta")]
            else:  # matrices and kernels (in_proj_weight too); biases, class token, position embedding ~ 0.1
                pairs = [
                    (p, "weight" if name.endswith("weight") and p.ndim > 1 else "bias")
                    for name, p in module.named_parameters(recurse=False)
                ]
            for tensor, kind in pairs:
                tensor.copy_(torch.from_numpy(random_array(tuple(tensor.shape), kind, rng)))
    return model


KERAS_KINDS = {
    "kernel": "kernel",
    "depthwise_kernel": "kernel",
    "bias": "bias",
    "gamma": "gamma",
    "beta": "beta",
    "moving_mean": "mean",
    "moving_variance": "variance",
}


def _keras_fan_in(layer, path: str, shape) -> int:
    """Keras kernels are (..., in, out): fan-in is all but the last axis, except attention's
    query/key/value kernels, (D, heads, D / heads), whose input is the first axis."""
    import keras

    if isinstance(layer, keras.layers.MultiHeadAttention) and "attention_output" not in path:
        return int(shape[0])
    return int(np.prod(shape[:-1]))


def randomise_keras(model, seed: int = 0):
    """Every weight of a keras model, in place (kernels scaled by their fan-in); returns the model."""

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.weights:
            continue
        values = []
        for variable, w in zip(layer.weights, layer.get_weights()):
            kind = KERAS_KINDS.get(variable.path.rsplit("/", 1)[-1], "bias")  # class token, position embedding: ~ 0.1
            if kind == "kernel":
                values.append(random_array(w.shape, "weight", rng, fan_in=_keras_fan_in(layer, variable.path, w.shape)))
            else:
                values.append(random_array(w.shape, kind, rng))
        layer.set_weights(values)
    return model
