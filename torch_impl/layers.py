"""The torch modules the spec needs beyond torch.nn: inception concat, residual blocks, channel
affine, squeeze-and-excitation, the transformer's pieces.

Children are registered under their spec names, so ``state_dict`` keys are torchvision's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class BareParameter:
    """A spec node whose whole state is one parameter that the *parent* module holds under the
    node's name (torchvision's ``class_token``, ``encoder.pos_embedding``: keys without a
    ``.weight``), with the function that applies it: ``apply(x, parameter)``."""

    parameter: nn.Parameter
    apply: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


Child = nn.Module | BareParameter


def add_children(parent: nn.Module, children: Sequence[tuple[str, Child]]) -> list[str]:
    """Registers ``children`` under their spec names (so state_dict keys are torchvision's); returns
    the names. A :class:`BareParameter` becomes a parameter of ``parent``; :func:`run_child` applies it."""
    for name, child in children:
        if isinstance(child, BareParameter):
            parent.register_parameter(name, child.parameter)
            bare = parent.__dict__.setdefault("_bare_steps", {})
            bare[name] = child.apply
        else:
            parent.add_module(name, child)
    return [name for name, _ in children]


def run_child(parent: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """Calls the child module ``name`` of ``parent`` on ``x``, or applies its bare parameter."""
    bare: dict[str, Callable] = parent.__dict__.get("_bare_steps", {})
    if name in bare:
        return bare[name](x, getattr(parent, name))
    return getattr(parent, name)(x)


class _BareHook:
    """What :func:`register_bare_hook` returns: ``.remove()``, like a module hook's handle."""

    def __init__(self, bare: dict[str, Callable], name: str, original: Callable) -> None:
        self.bare, self.name, self.original = bare, name, original

    def remove(self) -> None:
        self.bare[self.name] = self.original


def register_bare_hook(parent: nn.Module, name: str, hook: Callable[[torch.Tensor], None]) -> _BareHook:
    """Calls ``hook(output)`` each time the bare parameter ``name`` of ``parent`` is applied: a
    forward hook for a node that has no module (the per-layer compare watches these too)."""
    bare: dict[str, Callable] = parent.__dict__["_bare_steps"]
    original = bare[name]

    def watched(x: torch.Tensor, parameter: torch.Tensor) -> torch.Tensor:
        out = original(x, parameter)
        hook(out)
        return out

    bare[name] = watched
    return _BareHook(bare, name, original)


def prepend_token(x: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """(N, T, D) tokens with the learned (1, 1, D) token put first: (N, T + 1, D)."""
    return torch.cat([token.expand(x.shape[0], -1, -1), x], dim=1)


def add_position(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    return x + table


class SequentialWithParameters(nn.Module):
    """A Sequential that may hold bare parameters (ViT's ``encoder``: ``pos_embedding``, then
    modules); an ``nn.Sequential`` cannot. Children keep their spec names."""

    def __init__(self, children: Sequence[tuple[str, Child]]) -> None:
        super().__init__()
        self.child_names = add_children(self, children)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.child_names:
            x = run_child(self, name, x)
        return x


class PatchTokens(nn.Module):
    """(N, C, H, W) -> (N, H * W, C): patches as tokens, row by row (torchvision's reshape and permute)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


class SelectToken(nn.Module):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.index]

    def extra_repr(self) -> str:
        return f"index={self.index}"


def fx_tracing(x: object = None) -> bool:
    """True while torch.fx traces symbolically (torchvision's create_feature_extractor): the input is
    a Proxy with no values, so eager-only branches (input checks, in-place sums) step aside."""
    return isinstance(x, torch.fx.Proxy) or _symbolic_tracing()


# torch >= 2.10 names the symbolic-trace flag apart from torch.export (is_fx_tracing logs a warning there)
_symbolic_tracing = getattr(
    torch.fx._symbolic_trace, "is_fx_symbolic_tracing", getattr(torch.fx._symbolic_trace, "is_fx_tracing", bool)
)


@torch.fx.wrap
def self_attend(attention: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    """``attention(x, x, x)``'s output alone: one call_function node in an FX graph, as torch.fx
    keeps nn.MultiheadAttention a leaf in torchvision's ViT (its forward branches on shapes)."""
    return nn.MultiheadAttention.forward(attention, x, x, x, need_weights=False)[0]


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention called on one input, returning the output alone (torchvision calls
    ``self_attention(x, x, x, need_weights=False)[0]``); the same parameters and state_dict keys."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self_attend(self, x)


class ResidualChain(nn.Module):
    """``x = x + group(x)`` for each group of children, all registered directly on the block
    (torchvision's EncoderBlock: ln_1, self_attention, dropout; ln_2, mlp)."""

    def __init__(self, groups: Sequence[Sequence[tuple[str, nn.Module]]]) -> None:
        super().__init__()
        self.group_names = [add_children(self, group) for group in groups]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for names in self.group_names:
            out = x
            for name in names:
                out = getattr(self, name)(out)
            x = x + out
        return x


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

    def __init__(
        self,
        body: Sequence[tuple[str, nn.Module]],
        shortcut: tuple[str, nn.Module] | None,
        post: tuple[str, nn.Module] | None,
    ) -> None:
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
        if (
            fx_tracing() or out.requires_grad or out is x or torch.compiler.is_compiling()
        ):  # autograd may need `out`; an empty body's out is x; a traced graph stays out of place
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


@torch.fx.wrap
def stochastic_depth(x: torch.Tensor, p: float, mode: str, training: bool) -> torch.Tensor:
    """:class:`StochasticDepth`'s rule; one node of an FX graph in both modes (torchvision's
    ``stochastic_depth`` is wrapped alike), so a traced model's eval nodes equal its training nodes."""
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
    if survival > 0.0:
        noise.div_(survival)
    return x * noise


class StochasticDepth(nn.Module):
    """torchvision.ops.StochasticDepth's rule, without torchvision: the identity in eval mode; in
    training, rows (``mode="row"``) or the whole batch are zeroed with probability ``p`` and the
    survivors scaled by ``1 / (1 - p)``."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stochastic_depth(x, self.p, self.mode, self.training)

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
