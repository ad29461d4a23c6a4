"""Node kinds of the architecture spec: small frozen dataclasses, no framework.

A model is a tree of these nodes. Every node carries a local ``name``; the dotted path of a node
(``features.0``, ``layer1.0.downsample.0``) is its ancestors' names joined by dots, which is
exactly the torchvision ``state_dict`` prefix of the layer. Children of a :class:`Sequential` with
an empty name are named by their index, like ``torch.nn.Sequential``.

Every numeric choice that torch and Keras default differently (BatchNorm eps/momentum, padding,
pooling ceil mode, LRN constants) is a required field or has the torch default written out here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

IntPair = tuple[int, int]
PairLike = int | tuple[int, int]


def pair(value: PairLike) -> IntPair:
    """Normalise ``3`` or ``(3, 3)`` to ``(3, 3)``; reject anything else with a clear message."""
    if isinstance(value, bool):
        raise TypeError(f"expected an int or a pair of ints, received {value!r}")
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise TypeError(f"expected an int or a pair of ints, received {value!r}")


class Node:
    """Base of every node kind. ``name`` is the local name ("" = index inside a Sequential)."""

    name: str

    @property
    def kind(self) -> str:
        return type(self).__name__

    def named(self, name: str) -> Node:
        return replace(self, name=name)  # type: ignore[type-var]


def _normalise_pairs(node: object, *fields: str) -> None:
    for f in fields:
        object.__setattr__(node, f, pair(getattr(node, f)))


# ----------------------------------------------------------------------------- parameterised


@dataclass(frozen=True)
class Conv(Node):
    """2-D convolution. ``padding`` is explicit and symmetric (torch semantics), never 'same'."""

    out: int
    kernel: PairLike
    stride: PairLike = 1
    padding: PairLike = 0
    groups: int = 1
    bias: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        _normalise_pairs(self, "kernel", "stride", "padding")
        if self.out <= 0 or self.groups <= 0 or self.out % self.groups:
            raise ValueError(f"Conv {self.name!r}: out={self.out} must be a positive multiple of groups={self.groups}")


@dataclass(frozen=True)
class BatchNorm(Node):
    """BatchNorm over channels. eps and momentum use torch's meaning (momentum = weight of the new
    batch); Keras' momentum is ``1 - momentum``. Both are required: no framework default leaks in."""

    eps: float
    momentum: float
    name: str = ""


@dataclass(frozen=True)
class Linear(Node):
    """Fully connected layer; the number of inputs comes from the incoming shape. On tokens (T, D)
    it acts on each token's features (the last axis), as torch's nn.Linear and Keras' Dense do."""

    out: int
    bias: bool = True
    name: str = ""


@dataclass(frozen=True)
class LayerNorm(Node):
    """Normalises each token over its features (the last axis) with a learned scale and shift.
    ``eps`` is required: torch's default is 1e-5, Keras' 1e-3, torchvision's ViT uses 1e-6."""

    eps: float
    name: str = ""


@dataclass(frozen=True)
class MultiHeadAttention(Node):
    """Self-attention over tokens (T, D): ``heads`` heads of width D / heads, softmax(q k^T / sqrt(D /
    heads)) v, then an output projection. torch's nn.MultiheadAttention packs the q, k and v
    projections into one ``in_proj_weight`` (3D, D), in that order; Keras' MultiHeadAttention keeps
    separate kernels shaped (D, heads, D / heads): :mod:`parity.weights.mapping` converts one to the other."""

    heads: int
    dropout: float = 0.0  # on the attention weights, in training
    name: str = ""

    def __post_init__(self) -> None:
        if self.heads <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"MultiHeadAttention {self.name!r}: needs heads >= 1 and 0 <= dropout < 1, received "
                f"heads={self.heads!r}, dropout={self.dropout!r}"
            )


@dataclass(frozen=True)
class ClassToken(Node):
    """Prepends one learned token to the tokens: (T, D) -> (T + 1, D). Its state is one parameter
    of shape (1, 1, D), held by the parent under this node's name (torchvision's ``class_token``)."""

    name: str = ""


@dataclass(frozen=True)
class PositionEmbedding(Node):
    """Adds a learned (1, T, D) table to the tokens, token i (the class token first, then the patches
    row by row) getting row i. A parameter held by the parent under this node's name
    (torchvision's ``encoder.pos_embedding``); its T fixes the input size."""

    name: str = ""


PARAMETER_NODES = (ClassToken, PositionEmbedding)  # state is one bare parameter, keyed by the node's path


# ----------------------------------------------------------------------------- parameter-free


@dataclass(frozen=True)
class ReLU(Node):
    name: str = ""


@dataclass(frozen=True)
class ReLU6(Node):
    """``min(max(x, 0), 6)`` (MobileNetV2): torch's nn.ReLU6, Keras' ReLU(max_value=6)."""

    name: str = ""


@dataclass(frozen=True)
class SiLU(Node):
    """``x * sigmoid(x)`` (swish; EfficientNet): torch's nn.SiLU, Keras' "silu" activation."""

    name: str = ""


@dataclass(frozen=True)
class GELU(Node):
    """``x * Phi(x)``, with the exact normal CDF (torch's nn.GELU() default; Keras' ``gelu`` with
    approximate=False); ``approximate=True`` is the tanh form both also offer."""

    approximate: bool = False
    name: str = ""


@dataclass(frozen=True)
class Sigmoid(Node):
    name: str = ""


@dataclass(frozen=True)
class Tanh(Node):
    name: str = ""


@dataclass(frozen=True)
class MaxPool(Node):
    """Max pooling with torch's output-size formula; ``ceil_mode`` is explicit (Keras has none)."""

    kernel: PairLike
    stride: PairLike
    padding: PairLike = 0
    ceil_mode: bool = False
    name: str = ""

    def __post_init__(self) -> None:
        _normalise_pairs(self, "kernel", "stride", "padding")


@dataclass(frozen=True)
class AvgPool(Node):
    """Average pooling; ``count_include_pad`` follows torch (True by default there)."""

    kernel: PairLike
    stride: PairLike
    padding: PairLike = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        _normalise_pairs(self, "kernel", "stride", "padding")


@dataclass(frozen=True)
class AdaptiveAvgPool(Node):
    """Average pooling to a fixed output size (torch's AdaptiveAvgPool2d bin edges)."""

    output: PairLike
    name: str = ""

    def __post_init__(self) -> None:
        _normalise_pairs(self, "output")


@dataclass(frozen=True)
class LocalResponseNorm(Node):
    """Across-channel LRN with torch.nn.LocalResponseNorm's meaning:
    ``b = a / (k + alpha / size * sum_{window} a^2) ** beta``, the window centred on the channel.
    Note alpha is divided by ``size`` (TF's ``local_response_normalization`` does not)."""

    size: int
    alpha: float
    beta: float
    k: float
    name: str = ""


@dataclass(frozen=True)
class Flatten(Node):
    """Flattens (C, H, W) to C*H*W in torch's C-major order (Keras flattens H, W, C)."""

    name: str = ""


@dataclass(frozen=True)
class PatchTokens(Node):
    """A (C, H, W) map to H * W tokens of C features, row-major over (H, W) (ViT after its patch
    conv: torch flattens and transposes; Keras' NHWC map only needs a reshape)."""

    name: str = ""


@dataclass(frozen=True)
class SelectToken(Node):
    """Token ``index`` of (T, D) tokens, as a (D,) vector (ViT's head reads the class token, index 0)."""

    index: int = 0
    name: str = ""


@dataclass(frozen=True)
class Dropout(Node):
    p: float
    name: str = ""


@dataclass(frozen=True)
class StochasticDepth(Node):
    """torchvision's StochasticDepth on a residual branch: the identity in inference; in training it
    zeroes whole rows (``mode="row"``: per sample) or the whole batch (``"batch"``) with probability
    ``p`` and scales the survivors by ``1 / (1 - p)``."""

    p: float
    mode: str = "row"
    name: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0 or self.mode not in ("row", "batch"):
            raise ValueError(
                f"StochasticDepth {self.name!r}: needs 0 <= p <= 1 and mode 'row' or 'batch', received p={self.p!r}, "
                f"mode={self.mode!r}"
            )


@dataclass(frozen=True)
class ChannelAffine(Node):
    """Fixed per-channel ``x * scale + shift`` with no parameters (GoogLeNet's transform_input)."""

    scale: tuple[float, ...]
    shift: tuple[float, ...]
    name: str = ""


# ----------------------------------------------------------------------------- containers


@dataclass(frozen=True)
class Sequential(Node):
    """Children applied in order. Unnamed children are named "0", "1", ... like torch."""

    children: tuple[Node, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "children", _name_children(self.children))


@dataclass(frozen=True)
class Concat(Node):
    """Inception block: every branch sees the same input; outputs are concatenated on channels."""

    branches: tuple[Node, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "branches", _name_children(self.branches))


@dataclass(frozen=True)
class Residual(Node):
    """ResNet block: ``post(body(x) + shortcut(x))``. Body children sit directly under the block
    (``layer1.0.conv1``), the shortcut under its own name (``layer1.0.downsample``). ``post=None``
    is a block whose sum is its output (MobileNetV2's inverted residual: no activation after it)."""

    body: tuple[Node, ...]
    shortcut: Node | None = None
    post: Node | None = field(default_factory=lambda: ReLU(name="relu"))
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", _name_children(self.body))


@dataclass(frozen=True)
class Gate(Node):
    """A branch that scales its input: ``x * body(x)``, the body ending in a (C, 1, 1) gate
    (squeeze-and-excitation: pool, 1x1 conv, activation, 1x1 conv, sigmoid). Body children sit
    under the gate's name (``features.1.0.block.1.fc1``), like a Sequential's."""

    body: tuple[Node, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "body", _name_children(self.body))


@dataclass(frozen=True)
class ResidualChain(Node):
    """Sub-layers with a residual connection each: for every group, ``x = x + group(x)``. All
    children sit directly under the block (a pre-norm transformer layer: ``ln_1, self_attention,
    dropout`` then ``ln_2, mlp``, as torchvision's EncoderBlock), so they must be named."""

    groups: tuple[tuple[Node, ...], ...]
    name: str = ""

    def __post_init__(self) -> None:
        flat = [c for group in self.groups for c in group]
        if not flat or any(not group for group in self.groups) or any(not c.name for c in flat):
            raise ValueError(f"ResidualChain {self.name!r}: needs non-empty groups of named children")
        _name_children(tuple(flat))  # unique names


def _name_children(children: tuple[Node, ...]) -> tuple[Node, ...]:
    named = tuple(c if c.name else c.named(str(i)) for i, c in enumerate(children))
    names = [c.name for c in named]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"duplicate child names {duplicated} in {names}")
    return named


def children_of(node: Node) -> tuple[Node, ...]:
    """The child nodes of a container, in execution order (empty for a leaf)."""
    if isinstance(node, Sequential):
        return node.children
    if isinstance(node, Concat):
        return node.branches
    if isinstance(node, Residual):
        return node.body + tuple(c for c in (node.shortcut, node.post) if c is not None)
    if isinstance(node, Gate):
        return node.body
    if isinstance(node, ResidualChain):
        return tuple(c for group in node.groups for c in group)
    return ()


def with_children(node: Node, children: tuple[Node, ...]) -> Node:
    """``node`` with its children replaced, given in :func:`children_of`'s order (a tree rewrite
    rebuilds every container kind through this one function)."""
    if isinstance(node, Sequential):
        return replace(node, children=children)
    if isinstance(node, Concat):
        return replace(node, branches=children)
    if isinstance(node, Gate):
        return replace(node, body=children)
    if isinstance(node, ResidualChain):
        groups, start = [], 0
        for group in node.groups:
            groups.append(tuple(children[start : start + len(group)]))
            start += len(group)
        return replace(node, groups=tuple(groups))
    if isinstance(node, Residual):
        rest = list(children[len(node.body) :])
        shortcut = rest.pop(0) if node.shortcut is not None else None
        post = rest.pop(0) if node.post is not None else None
        return replace(node, body=tuple(children[: len(node.body)]), shortcut=shortcut, post=post)
    return node


def is_depthwise(node: Node, in_channels: int) -> bool:
    """A conv with one filter per input channel (groups = input = output channels): Keras builds it
    as a DepthwiseConv2D, whose kernel the weight mapping lays out as (kh, kw, C, 1)."""
    return isinstance(node, Conv) and node.groups > 1 and node.groups == in_channels == node.out


PARAMETERISED = (Conv, BatchNorm, Linear, LayerNorm, MultiHeadAttention, ClassToken, PositionEmbedding)
CONTAINERS = (Sequential, Concat, Residual, Gate, ResidualChain)
