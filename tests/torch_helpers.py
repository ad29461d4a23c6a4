"""Helpers for tests that need torch: randomising weights and BatchNorm statistics."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and BatchNorm buffer random, so no eps/momentum mismatch hides behind
    defaults (zero means and unit variances make eps nearly invisible)."""
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            fan_in = p[0].numel() if p.ndim > 1 else 1
            scale = (1.0 / fan_in) ** 0.5 if p.ndim > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * scale + (1.0 if name == "weight" and p.ndim == 1 else 0.0))
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=g) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=g) * 0.5 + 0.5)
            module.num_batches_tracked.fill_(7)
    return model


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert torch.isfinite(a).all() and torch.isfinite(b).all(), "NaN or Inf in an output"
    return float((a - b).abs().max())
