"""The torch modules the spec needs beyond torch.nn: inception concat, residual block, channel affine.

Children are registered under their spec names, so ``state_dict`` keys are torchvision's.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn


def add_children(parent: nn.Module, children: Sequence[tuple[str, nn.Module]]) -> List[str]:
    """Registers ``children`` under their spec names (so state_dict keys are torchvision's); returns the names."""
    for name, module in children:
        parent.add_module(name, module)
    return [name for name, _ in children]


class Concat(nn.Module):
    """Runs every branch on the same input and concatenates the outputs on channels."""

    def __init__(self, branches: Sequence[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.branch_names = add_children(self, branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([getattr(self, n)(x) for n in self.branch_names], dim=1)


class Residual(nn.Module):
    """``post(body(x) + shortcut(x))`` with the body's layers directly under the block; without a
    ``post`` the sum is the output (MobileNetV2's linear bottleneck)."""

    def __init__(self, body: Sequence[tuple[str, nn.Module]], shortcut: Optional[tuple[str, nn.Module]],
                 post: Optional[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.body_names = add_children(self, body)
        self.shortcut_name = shortcut[0] if shortcut else None
        if shortcut:
            self.add_module(*shortcut)
        self.post_name = post[0] if post else None
        if post:
            self.add_module(*post)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for name in self.body_names:
            out = getattr(self, name)(out)
        identity = getattr(self, self.shortcut_name)(x) if self.shortcut_name else x
        if out.requires_grad or out is x or torch.compiler.is_compiling():  # autograd may need `out`; an empty body's out is x
            out = out + identity
        else:
            out += identity  # in eager inference, in place as torchvision's blocks: no new tensor per block
        return getattr(self, self.post_name)(out) if self.post_name else out


class Gate(nn.Module):
    """``x * body(x)``: squeeze-and-excitation (torchvision's SqueezeExcitation), children under their spec names."""

    def __init__(self, body: Sequence[tuple[str, nn.Module]]) -> None:
        super().__init__()
        self.body_names = add_children(self, body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x
        for name in self.body_names:
            scale = getattr(self, name)(scale)
        return scale * x


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth's rule, without torchvision: the identity in eval mode; in
    training, rows (``mode="row"``) or the whole batch are zeroed with probability ``p`` and the
    survivors scaled by ``1 / (1 - p)``."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class ChannelAffine(nn.Module):
    """Fixed ``x * scale + shift`` per channel; non-persistent buffers, so no state_dict keys."""

    def __init__(self, scale: Sequence[float], shift: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
