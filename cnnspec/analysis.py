"""Shape inference, parameter and multiply-accumulate counts: an interpreter over the spec.

Shapes are channel-first without the batch axis: ``(C, H, W)`` for maps, ``(F,)`` for vectors,
``(T, D)`` for T tokens of D features (a vision transformer).
Output-size formulas are torch's (floor, or ceil mode with the "last window must start inside
the input" rule), since the spec follows torch semantics and Keras is made to match them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from .model import ModelSpec
from .nodes import (
    CONTAINERS,
    GELU,
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    ChannelAffine,
    ClassToken,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Gate,
    LayerNorm,
    Linear,
    LocalResponseNorm,
    MaxPool,
    MultiHeadAttention,
    Node,
    PatchTokens,
    PositionEmbedding,
    ReLU,
    ReLU6,
    Residual,
    ResidualChain,
    SelectToken,
    Sequential,
    Sigmoid,
    SiLU,
    StochasticDepth,
    Tanh,
)

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """An input size the model cannot take; the message names the node and the shapes."""


@dataclass
class LayerInfo:
    path: str
    node: Node
    input_shape: Shape
    output_shape: Shape
    params: int = 0  # trainable parameters (weights and biases)
    buffers: int = 0  # non-trainable state (BatchNorm running mean and variance)
    macs: int = 0
    in_features: int = 0  # channels into a Conv/BatchNorm, features into a Linear/LayerNorm/attention
    flatten_from: Shape | None = None  # (C, H, W) flattened right before this Linear

    @property
    def is_container(self) -> bool:
        return isinstance(self.node, CONTAINERS)


@dataclass
class Analysis:
    spec: ModelSpec
    input_shape: Shape
    layers: list[LayerInfo] = field(default_factory=list)
    output_shape: Shape = ()
    feature_shape: Shape = ()
    aux_output_shapes: dict[str, Shape] = field(default_factory=dict)

    @property
    def leaves(self) -> list[LayerInfo]:
        return [layer for layer in self.layers if not layer.is_container]

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.leaves)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.leaves)

    def layer(self, path: str) -> LayerInfo:
        for layer in self.layers:
            if layer.path == path:
                return layer
        raise KeyError(f"{self.spec.name} has no layer {path!r}")

    def by_path(self) -> dict[str, LayerInfo]:
        return {layer.path: layer for layer in self.layers}


def analyse(spec: ModelSpec, input_size: tuple[int, int] | None = None, include_aux: bool = True) -> Analysis:
    """Shapes, parameters and MACs of every node for an input of ``input_size`` = (H, W).

    Linear layers take their number of inputs from the spec's own ``input_size`` (the size the
    model is built for); another size that changes them raises :class:`ShapeError`.
    """
    c = spec.input_size[0]
    h, w = input_size or spec.input_size[1:]
    built = _run(spec, (c,) + tuple(spec.input_size[1:]), include_aux, expected=None)
    if input_size is None or tuple(input_size) == tuple(spec.input_size[1:]):
        return built
    expected = {layer.path: layer.in_features for layer in built.layers if isinstance(layer.node, Linear)}
    expected.update(
        {layer.path: layer.input_shape for layer in built.layers if isinstance(layer.node, PositionEmbedding)}
    )
    try:
        return _run(spec, (c, int(h), int(w)), include_aux, expected=expected)
    except ShapeError as err:
        if spec.fixed_input and "only takes" not in str(err):
            raise ShapeError(
                f"{spec.name} only takes {'x'.join(map(str, spec.input_size[1:]))} inputs, received {h}x{w} ({err})"
            ) from None
        side = min_input_size(spec, include_aux)
        if min(int(h), int(w)) < side:  # say the number a user needs, not only where it broke
            raise ShapeError(
                f"{spec.name} needs an input of at least {side}x{side}, received {h}x{w} ({err})"
            ) from None
        if "only takes" in str(err) and "received" not in str(err):
            raise ShapeError(f"{err}, received {h}x{w}") from None
        raise


@functools.lru_cache(maxsize=64)
def min_input_size(spec: ModelSpec, include_aux: bool = True) -> int:
    """The smallest square side every node of ``spec`` can take (convolutions and pools leave at
    least one pixel; Linear sizes aside): what a "too small" error reports."""
    c = spec.input_size[0]

    def fits(side: int) -> bool:
        try:
            _run(spec, (c, side, side), include_aux, expected=None)
            return True
        except ShapeError:
            return False

    low, high = 1, max(spec.input_size[1:])
    if not fits(high):  # pragma: no cover (a spec always takes its own size)
        return high
    while low < high:  # the smallest side that fits: feasibility only grows with the side
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid + 1, high)
    return low


def _run(spec: ModelSpec, shape: Shape, include_aux: bool, expected: dict[str, object] | None) -> Analysis:
    if len(shape) != 3 or min(shape) < 1:
        raise ShapeError(f"{spec.name}: expected an input of (channels, height, width) >= 1, received {shape}")
    result = _Walker(spec, expected)
    out = shape
    taps: dict[str, Shape] = {}
    for node in spec.features:
        out = result.visit(node, node.name, out)
        taps[node.name] = out
    feature_shape = out
    if include_aux:
        for aux in spec.aux_heads:
            result.pending_flatten = None
            result.aux_output_shapes[aux.name] = result.visit(aux.head, aux.name, taps[aux.source])
    result.pending_flatten = None
    for node in spec.head:
        out = result.visit(node, node.name, out)
    return Analysis(spec, shape, result.layers, out, feature_shape, result.aux_output_shapes)


class _Walker:
    def __init__(self, spec: ModelSpec, expected: dict[str, object] | None) -> None:
        self.spec = spec
        self.expected = expected
        self.layers: list[LayerInfo] = []
        self.aux_output_shapes: dict[str, Shape] = {}
        self.pending_flatten: Shape | None = None

    def fail(self, path: str, message: str) -> ShapeError:
        return ShapeError(f"{self.spec.name}: at {path!r}: {message}")

    def visit(self, node: Node, path: str, shape: Shape) -> Shape:
        if isinstance(node, Sequential):
            info = self._add(path, node, shape)
            for child in node.children:
                shape = self.visit(child, f"{path}.{child.name}", shape)
            info.output_shape = shape
            return shape
        if isinstance(node, Concat):
            info = self._add(path, node, shape)
            outs = [self.visit(b, f"{path}.{b.name}", shape) for b in node.branches]
            spatial = {o[1:] for o in outs}
            if len(spatial) != 1:
                raise self.fail(path, f"branches give different spatial sizes {outs}")
            info.output_shape = (sum(o[0] for o in outs),) + outs[0][1:]
            return info.output_shape
        if isinstance(node, Gate):
            info = self._add(path, node, shape)
            gate = shape
            for child in node.body:
                gate = self.visit(child, f"{path}.{child.name}", gate)
            if len(gate) != 3 or gate[0] != shape[0] or gate[1:] not in ((1, 1), shape[1:]):
                raise self.fail(
                    path, f"the gate gives {gate}, which cannot scale an input of {shape} (expected ({shape[0]}, 1, 1))"
                )
            info.output_shape = shape
            return shape
        if isinstance(node, ResidualChain):
            info = self._add(path, node, shape)
            for group in node.groups:
                out = shape
                for child in group:
                    out = self.visit(child, f"{path}.{child.name}", out)
                if out != shape:
                    raise self.fail(path, f"a residual group gives {out}, which cannot be added to its input {shape}")
            return shape
        if isinstance(node, Residual):
            info = self._add(path, node, shape)
            body = shape
            for child in node.body:
                body = self.visit(child, f"{path}.{child.name}", body)
            short = shape
            if node.shortcut is not None:
                short = self.visit(node.shortcut, f"{path}.{node.shortcut.name}", shape)
            if body != short:
                raise self.fail(path, f"body gives {body} but the shortcut gives {short}")
            info.output_shape = body if node.post is None else self.visit(node.post, f"{path}.{node.post.name}", body)
            return info.output_shape
        info = self._add(path, node, shape)
        info.output_shape = self._leaf(info, node, path, shape)
        return info.output_shape

    def _add(self, path: str, node: Node, shape: Shape) -> LayerInfo:
        info = LayerInfo(path, node, shape, shape)
        self.layers.append(info)
        return info

    def _need_map(self, path: str, node: Node, shape: Shape) -> tuple[int, int, int]:
        if len(shape) != 3:
            raise self.fail(path, f"{node.kind} needs a (C, H, W) feature map, received shape {shape}")
        return shape  # type: ignore[return-value]

    def _need_tokens(self, path: str, node: Node, shape: Shape) -> tuple[int, int]:
        if len(shape) != 2:
            raise self.fail(path, f"{node.kind} needs tokens (T, D), received shape {shape}")
        return shape  # type: ignore[return-value]

    def _leaf(self, info: LayerInfo, node: Node, path: str, shape: Shape) -> Shape:
        if isinstance(node, Conv):
            c, h, w = self._need_map(path, node, shape)
            if c % node.groups:
                raise self.fail(path, f"{c} input channels are not divisible by groups={node.groups}")
            oh, ow = (
                _conv_out(s, k, st, p, path, self)
                for s, k, st, p in zip((h, w), node.kernel, node.stride, node.padding)
            )
            per_out = (c // node.groups) * node.kernel[0] * node.kernel[1]
            info.in_features = c
            info.params = node.out * per_out + (node.out if node.bias else 0)
            info.macs = node.out * oh * ow * per_out
            return (node.out, oh, ow)
        if isinstance(node, BatchNorm):
            info.in_features = shape[0]
            info.params = 2 * shape[0]
            info.buffers = 2 * shape[0]
            return shape
        if isinstance(node, Linear):
            if len(shape) not in (1, 2):
                raise self.fail(
                    path, f"Linear needs a flat vector or tokens (T, D), received shape {shape} (missing Flatten?)"
                )
            n_in, tokens = shape[-1], math.prod(shape[:-1])
            if self.expected is not None and self.expected.get(path, n_in) != n_in:
                size = "x".join(map(str, self.spec.input_size[1:]))
                raise self.fail(
                    path,
                    f"expects {self.expected[path]} input features but this input size gives {n_in}; "
                    f"{self.spec.name} has no adaptive pooling before its classifier, so it only takes {size} inputs",
                )
            info.in_features = n_in
            info.params = n_in * node.out + (node.out if node.bias else 0)
            info.macs = tokens * n_in * node.out
            info.flatten_from, self.pending_flatten = self.pending_flatten, None
            return shape[:-1] + (node.out,)
        if isinstance(node, LayerNorm):
            info.in_features = shape[-1]
            info.params = 2 * shape[-1]
            return shape
        if isinstance(node, MultiHeadAttention):
            t, d = self._need_tokens(path, node, shape)
            if d % node.heads:
                raise self.fail(path, f"{d} features do not split into {node.heads} heads")
            info.in_features = d
            info.params = 4 * d * d + 4 * d  # q, k, v and output projections with biases
            info.macs = 4 * t * d * d + 2 * t * t * d  # the projections, q k^T and the weighted sum of v
            return shape
        if isinstance(node, ClassToken):
            t, d = self._need_tokens(path, node, shape)
            info.in_features, info.params = d, d
            return (t + 1, d)
        if isinstance(node, PositionEmbedding):
            t, d = self._need_tokens(path, node, shape)
            if self.expected is not None and self.expected.get(path, shape) != shape:
                raise self.fail(
                    path, f"the position embedding holds {self.expected[path][0]} tokens but this input size gives {t}"
                )
            info.in_features, info.params = d, t * d
            return shape
        if isinstance(node, PatchTokens):
            c, h, w = self._need_map(path, node, shape)
            return (h * w, c)
        if isinstance(node, SelectToken):
            t, d = self._need_tokens(path, node, shape)
            if not -t <= node.index < t:
                raise self.fail(path, f"token {node.index} of {t} tokens")
            return (d,)
        if isinstance(node, (MaxPool, AvgPool)):
            c, h, w = self._need_map(path, node, shape)
            for k, p in zip(node.kernel, node.padding):
                if p > k // 2:
                    raise self.fail(path, f"padding {node.padding} must be at most half the kernel {node.kernel}")
            oh, ow = (
                _pool_out(s, k, st, p, node.ceil_mode, path, self)
                for s, k, st, p in zip((h, w), node.kernel, node.stride, node.padding)
            )
            return (c, oh, ow)
        if isinstance(node, AdaptiveAvgPool):
            c, _, _ = self._need_map(path, node, shape)
            return (c,) + node.output
        if isinstance(node, Flatten):
            if len(shape) == 3 and shape[1] * shape[2] > 1:
                self.pending_flatten = shape
            return (math.prod(shape),)
        if isinstance(node, ChannelAffine):
            if shape[0] != len(node.scale) or len(node.scale) != len(node.shift):
                raise self.fail(path, f"needs {len(node.scale)} channels, received shape {shape}")
            return shape
        if isinstance(node, LocalResponseNorm):
            self._need_map(path, node, shape)
            return shape
        if isinstance(node, (ReLU, ReLU6, SiLU, GELU, Sigmoid, Tanh, Dropout, StochasticDepth)):
            return shape
        raise self.fail(path, f"unknown node kind {node.kind}")


def _conv_out(size: int, kernel: int, stride: int, padding: int, path: str, walker: _Walker) -> int:
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise walker.fail(path, f"input of size {size} is smaller than the kernel {kernel} (padding {padding})")
    return out


def _pool_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool, path: str, walker: _Walker) -> int:
    span = size + 2 * padding - kernel
    if span < 0:
        raise walker.fail(path, f"input of size {size} is smaller than the pooling window {kernel}")
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:  # torch: the last window must start inside the input
        out -= 1
    return out
