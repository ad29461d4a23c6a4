"""Seeded random weights that exercise everything, on either framework.

Fresh models hide mistakes: zero running means and unit variances make a wrong BatchNorm eps or a
missing momentum conversion nearly invisible. These fill every parameter and every BatchNorm
statistic with seeded random values of a sensible scale (weights ~ 1/sqrt(fan_in), so activations
neither vanish nor explode through 150 layers).
"""
from __future__ import annotations

import numpy as np


def random_array(shape, kind: str, rng: np.random.Generator) -> np.ndarray:
    """``kind`` is 'weight' (matrix/kernel), 'gamma', 'beta', 'bias', 'mean' or 'variance'."""
    if kind == "weight":
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    if kind == "gamma":
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    if kind in ("beta", "bias", "mean"):
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    if kind == "variance":
        return (0.5 + 0.5 * rng.random(shape)).astype(np.float32)
    raise ValueError(f"unknown kind {kind!r}")


def randomise_torch(model, seed: int = 0):
    """Every parameter and BatchNorm buffer of a torch model, in place; returns the model."""
    import torch
    from torch import nn

    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                pairs = [(module.weight, "gamma"), (module.bias, "beta"), (module.running_mean, "mean"), (module.running_var, "variance")]
            else:
                pairs = [(p, "weight" if name == "weight" else "bias") for name, p in module.named_parameters(recurse=False)]
            for tensor, kind in pairs:
                tensor.copy_(torch.from_numpy(random_array(tuple(tensor.shape), kind, rng)))
    return model


def randomise_keras(model, seed: int = 0):
    """Every weight of a keras model, in place (kernels scaled by their fan-in); returns the model."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            kinds = ["gamma", "beta", "mean", "variance"]
        else:
            kinds = ["kernel", "bias"][: len(layer.weights)]
        values = []
        for w, kind in zip(layer.get_weights(), kinds):
            if kind == "kernel":  # keras kernels are (..., in, out): fan-in is all but the last axis
                values.append((rng.standard_normal(w.shape) / np.sqrt(np.prod(w.shape[:-1]))).astype(np.float32))
            else:
                values.append(random_array(w.shape, kind, rng))
        layer.set_weights(values)
    return model
