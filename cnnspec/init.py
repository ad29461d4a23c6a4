"""torchvision's weight initialisation schemes, written once for both frameworks.

A spec names its scheme (``spec.init``: "default", "vgg", "resnet", ...). For every parameter of
every node, :func:`draw` says how torchvision draws its first values: a normal, a uniform or a
constant, with the numbers resolved here (torch's fans, kaiming's and xavier's gains), so that
torch_impl and keras_impl only map the three kinds to their own calls and a new scheme is one
function in this file; a builder drawing a whole model takes :func:`drawer` once per model (as
:func:`draws` does), so what a draw reads from the whole spec is read once, not per parameter. A
parameter a scheme leaves alone keeps torch's layer default (``at_construction``): torch_impl does
not draw it again (torch drew it when it built the layer), keras_impl draws the same distribution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from . import nodes as n
from .model import ModelSpec


@dataclass(frozen=True)
class Draw:
    """How one parameter's first values are drawn. ``scale`` is the normal's standard deviation,
    the uniform's bound (+-scale) or the constant; ``truncate`` bounds a normal at +-truncate
    (absolute, as torch's ``trunc_normal_(a, b)``)."""

    kind: Literal["normal", "uniform", "constant"]
    scale: float
    truncate: float | None = None
    at_construction: bool = False


def normal(std: float, truncate: float | None = None) -> Draw:
    return Draw("normal", std, truncate)


def uniform(bound: float) -> Draw:
    return Draw("uniform", bound)


def constant(value: float) -> Draw:
    return Draw("constant", value)


@dataclass(frozen=True)
class Param:
    """One parameter as a scheme sees it: its node, its torch name within the node (``weight``,
    ``bias``, ``in_proj_weight``, ``out_proj.weight``; "" for a node that is one parameter),
    torch's fans, and the two roles torchvision's schemes single out."""

    path: str
    node: n.Node
    name: str
    fan_in: int
    fan_out: int
    classifier: bool = False
    last_bn_of_block: bool = False

    @property
    def is_weight(self) -> bool:
        return self.name.endswith("weight") or self.name == ""


def parameter_names(node: n.Node) -> tuple[str, ...]:
    """The torch names of a node's parameters, in torch's registration order."""
    if isinstance(node, n.Conv | n.Linear):
        return ("weight", "bias") if node.bias else ("weight",)
    if isinstance(node, n.BatchNorm | n.LayerNorm):
        return ("weight", "bias")
    if isinstance(node, n.MultiHeadAttention):
        return ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")
    if isinstance(node, n.ClassToken | n.PositionEmbedding):
        return ("",)
    return ()


def _fans(node: n.Node, name: str, in_features: int) -> tuple[int, int]:
    """torch's ``_calculate_fan_in_and_fan_out`` for the parameter's tensor shape."""
    if isinstance(node, n.Conv):
        (kh, kw), (i, o) = node.kernel, (in_features // node.groups, node.out)
        return i * kh * kw, o * kh * kw
    if isinstance(node, n.Linear):
        return in_features, node.out
    if isinstance(node, n.MultiHeadAttention):  # in_proj_weight is (3D, D), out_proj.weight (D, D)
        return (in_features, 3 * in_features) if name.startswith("in_proj") else (in_features, in_features)
    return in_features, in_features


def torch_default(p: Param) -> Draw:
    """What torch's layer constructors draw (LeNet's and AlexNet's whole scheme)."""
    if isinstance(p.node, n.Conv | n.Linear) or p.name == "out_proj.weight":
        # kaiming_uniform(a=sqrt(5)) for the weight and uniform(+-1/sqrt(fan_in)) for the bias agree
        return Draw("uniform", 1.0 / math.sqrt(p.fan_in), at_construction=True)
    if isinstance(p.node, n.MultiHeadAttention) and p.name == "in_proj_weight":
        return Draw("uniform", math.sqrt(6.0 / (p.fan_in + p.fan_out)), at_construction=True)  # xavier_uniform
    if isinstance(p.node, n.BatchNorm | n.LayerNorm) and p.name == "weight":
        return Draw("constant", 1.0, at_construction=True)
    return Draw("constant", 0.0, at_construction=True)  # biases, the class token, the position table


def _kaiming_normal_fan_out(p: Param) -> Draw:
    return normal(math.sqrt(2.0 / p.fan_out))  # ReLU's gain; torch's fan_out counts out * kh * kw


def _bn_one_zero(p: Param) -> Draw:
    return constant(1.0 if p.is_weight else 0.0)


def _vgg(p: Param) -> Draw | None:
    """VGG's, MobileNetV2's and EfficientNet's convs and norms: kaiming fan_out, zero biases."""
    if isinstance(p.node, n.Conv):
        return _kaiming_normal_fan_out(p) if p.is_weight else constant(0.0)
    if isinstance(p.node, n.BatchNorm):
        return _bn_one_zero(p)
    if isinstance(p.node, n.Linear):
        return normal(0.01) if p.is_weight else constant(0.0)
    return None


def _resnet(p: Param) -> Draw | None:
    if isinstance(p.node, n.Conv) and p.is_weight:
        return _kaiming_normal_fan_out(p)
    if isinstance(p.node, n.BatchNorm):  # zero_init_residual: each block starts as the identity
        return constant(0.0) if p.last_bn_of_block and p.is_weight else _bn_one_zero(p)
    return None


def _googlenet(p: Param) -> Draw | None:
    if isinstance(p.node, n.Conv | n.Linear) and p.is_weight:
        return normal(0.01, truncate=2.0)
    if isinstance(p.node, n.BatchNorm):
        return _bn_one_zero(p)
    return None


def _efficientnet(p: Param) -> Draw | None:
    if isinstance(p.node, n.Linear):
        return uniform(1.0 / math.sqrt(p.fan_out)) if p.is_weight else constant(0.0)
    return _vgg(p)


def _vit(p: Param) -> Draw | None:
    """torchvision's VisionTransformer: patch conv trunc_normal(sqrt(1 / fan_in)), xavier_uniform
    attention and MLP weights, normal(1e-6) MLP biases, a zero classifier, normal(0.02) positions."""
    node = p.node
    if isinstance(node, n.Conv):
        return normal(math.sqrt(1.0 / p.fan_in), truncate=2.0) if p.is_weight else constant(0.0)
    if isinstance(node, n.MultiHeadAttention):
        if p.name == "in_proj_weight":
            return uniform(math.sqrt(6.0 / (p.fan_in + p.fan_out)))
        return None if p.name == "out_proj.weight" else constant(0.0)  # out_proj keeps nn.Linear's draw
    if isinstance(node, n.Linear):
        if p.classifier:
            return constant(0.0)
        return uniform(math.sqrt(6.0 / (p.fan_in + p.fan_out))) if p.is_weight else normal(1e-6)
    if isinstance(node, n.PositionEmbedding):
        return normal(0.02)
    if isinstance(node, n.ClassToken):
        return constant(0.0)
    return None


SCHEMES: dict[str, Callable[[Param], Draw | None]] = {
    "default": lambda p: None,
    "vgg": _vgg,
    "resnet": _resnet,
    "googlenet": _googlenet,
    "mobilenet": _vgg,  # torchvision's MobileNetV2 initialises as VGG does
    "efficientnet": _efficientnet,
    "vit": _vit,
}


def check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {sorted(SCHEMES)}")


def last_bns_of_blocks(spec: ModelSpec) -> set[str]:
    """The paths of each residual body's last BatchNorm (the ones zero_init_residual zeroes)."""
    out = set()
    for path, node in spec.walk():
        if isinstance(node, n.Residual):
            bns = [c.name for c in node.body if isinstance(c, n.BatchNorm)]
            if bns:
                out.add(f"{path}.{bns[-1]}")
    return out


def drawer(spec: ModelSpec, scheme: str | None = None) -> Callable[[str, n.Node, str, int], Draw]:
    """:func:`draw` for the parameters of one model, as ``drawer(spec)(path, node, name, in_features)``:
    what a draw needs from the whole spec (the scheme, the classifier paths, each residual body's
    last BatchNorm, which takes a walk of the spec) is read here once, not once per parameter."""
    scheme = spec.init if scheme is None else scheme
    check_scheme(scheme)
    classifiers = {spec.classifier, *(f"{a.name}.fc2" for a in spec.aux_heads)}
    zeroed = last_bns_of_blocks(spec) if spec.zero_init_residual else set()

    def draw_one(path: str, node: n.Node, name: str, in_features: int) -> Draw:
        fan_in, fan_out = _fans(node, name, in_features)
        param = Param(path, node, name, fan_in, fan_out, path in classifiers, path in zeroed)
        return SCHEMES[scheme](param) or torch_default(param)

    return draw_one


def draw(spec: ModelSpec, path: str, node: n.Node, name: str, in_features: int, scheme: str | None = None) -> Draw:
    """How parameter ``name`` of the node at ``path`` starts, under ``scheme`` (the spec's own by
    default). ``in_features`` is the node's input width (channels, features or token width). One
    parameter's; for a whole model's, take :func:`drawer` once."""
    return drawer(spec, scheme)(path, node, name, in_features)


def draws(spec: ModelSpec, in_features: dict[str, int], scheme: str | None = None) -> Iterator[tuple[str, Draw]]:
    """Every parameter's draw, ``(torch state_dict key, draw)`` in module order."""
    draw_one = drawer(spec, scheme)
    for path, node in spec.walk():
        for name in parameter_names(node):
            key = f"{path}.{name}" if name else path
            yield key, draw_one(path, node, name, in_features[path])
