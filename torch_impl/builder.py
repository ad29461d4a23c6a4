"""The interpreter: one function per spec node kind, returning the torch module for it."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, namedtuple
from collections.abc import Callable

import torch
from torch import nn

import cnnspec
from cnnspec import nodes as n

from . import layers

_BUILDERS: dict[type[n.Node], Callable[..., nn.Module]] = {}
IN_PLACE = (nn.ReLU, nn.ReLU6, nn.SiLU)  # activations built with inplace=True (see _not_in_place_first)


def _builds(kind: type[n.Node]) -> Callable:
    def add(fn: Callable) -> Callable:
        _BUILDERS[kind] = fn
        return fn

    return add


def build_node(node: n.Node, path: str, shapes: dict[str, cnnspec.LayerInfo]) -> nn.Module:
    """The module for ``node``; ``shapes`` (from cnnspec.analyse) gives input channels/features."""
    try:
        fn = _BUILDERS[type(node)]
    except KeyError:
        raise NotImplementedError(f"torch_impl cannot build node kind {node.kind} at {path!r}") from None
    return fn(node, path, shapes)


def _children(children, path, shapes):
    built = [(c.name, build_node(c, f"{path}.{c.name}", shapes)) for c in children]
    _not_in_place_first(built)
    return built


def _not_in_place_first(built) -> None:
    """ReLUs work in place (as torchvision's: no new activation tensor each, VGG16 eager was 0.88x
    torchvision's without), except a container's first child: its input is the container's,
    which a shortcut, another branch or the caller may still need."""
    if built and isinstance(built[0][1], IN_PLACE):
        built[0][1].inplace = False


@_builds(n.Conv)
def _conv(node: n.Conv, path, shapes):
    return nn.Conv2d(
        shapes[path].in_features, node.out, node.kernel, node.stride, node.padding, groups=node.groups, bias=node.bias
    )


@_builds(n.BatchNorm)
def _batchnorm(node: n.BatchNorm, path, shapes):
    return nn.BatchNorm2d(shapes[path].in_features, eps=node.eps, momentum=node.momentum)


@_builds(n.Linear)
def _linear(node: n.Linear, path, shapes):
    return nn.Linear(shapes[path].in_features, node.out, bias=node.bias)


@_builds(n.LayerNorm)
def _layernorm(node: n.LayerNorm, path, shapes):
    return nn.LayerNorm(shapes[path].in_features, eps=node.eps)


@_builds(n.MultiHeadAttention)
def _attention(node: n.MultiHeadAttention, path, shapes):
    return layers.SelfAttention(shapes[path].in_features, node.heads, node.dropout)


@_builds(n.ClassToken)
def _class_token(node, path, shapes):
    return layers.BareParameter(nn.Parameter(torch.zeros(1, 1, shapes[path].in_features)), layers.prepend_token)


@_builds(n.PositionEmbedding)
def _position_embedding(node, path, shapes):
    return layers.BareParameter(nn.Parameter(torch.zeros((1,) + tuple(shapes[path].input_shape))), layers.add_position)


@_builds(n.PatchTokens)
def _patch_tokens(node, path, shapes):
    return layers.PatchTokens()


@_builds(n.SelectToken)
def _select_token(node: n.SelectToken, path, shapes):
    return layers.SelectToken(node.index)


@_builds(n.GELU)
def _gelu(node: n.GELU, path, shapes):
    return nn.GELU(approximate="tanh" if node.approximate else "none")


@_builds(n.ReLU)
def _relu(node, path, shapes):
    return nn.ReLU(inplace=True)  # see _not_in_place_first


@_builds(n.ReLU6)
def _relu6(node, path, shapes):
    return nn.ReLU6(inplace=True)  # see _not_in_place_first


@_builds(n.SiLU)
def _silu(node, path, shapes):
    return nn.SiLU(inplace=True)  # see _not_in_place_first


@_builds(n.Sigmoid)
def _sigmoid(node, path, shapes):
    return nn.Sigmoid()


@_builds(n.StochasticDepth)
def _stochastic_depth(node: n.StochasticDepth, path, shapes):
    return layers.StochasticDepth(node.p, node.mode)


@_builds(n.Tanh)
def _tanh(node, path, shapes):
    return nn.Tanh()


@_builds(n.MaxPool)
def _maxpool(node: n.MaxPool, path, shapes):
    return nn.MaxPool2d(node.kernel, node.stride, node.padding, ceil_mode=node.ceil_mode)


@_builds(n.AvgPool)
def _avgpool(node: n.AvgPool, path, shapes):
    return nn.AvgPool2d(
        node.kernel, node.stride, node.padding, ceil_mode=node.ceil_mode, count_include_pad=node.count_include_pad
    )


@_builds(n.AdaptiveAvgPool)
def _adaptive(node: n.AdaptiveAvgPool, path, shapes):
    return nn.AdaptiveAvgPool2d(node.output)


@_builds(n.LocalResponseNorm)
def _lrn(node: n.LocalResponseNorm, path, shapes):
    return nn.LocalResponseNorm(node.size, alpha=node.alpha, beta=node.beta, k=node.k)


@_builds(n.Flatten)
def _flatten(node, path, shapes):
    return nn.Flatten(1)


@_builds(n.Dropout)
def _dropout(node: n.Dropout, path, shapes):
    return nn.Dropout(node.p)


@_builds(n.ChannelAffine)
def _affine(node: n.ChannelAffine, path, shapes):
    return layers.ChannelAffine(node.scale, node.shift)


@_builds(n.Sequential)
def _sequential(node: n.Sequential, path, shapes):
    children = _children(node.children, path, shapes)
    if any(isinstance(c, layers.BareParameter) for _, c in children):
        return layers.SequentialWithParameters(children)
    return nn.Sequential(OrderedDict(children))


@_builds(n.ResidualChain)
def _residual_chain(node: n.ResidualChain, path, shapes):
    return layers.ResidualChain([_children(group, path, shapes) for group in node.groups])


@_builds(n.Concat)
def _concat(node: n.Concat, path, shapes):
    return layers.Concat(_children(node.branches, path, shapes))


@_builds(n.Gate)
def _gate(node: n.Gate, path, shapes):
    return layers.Gate(_children(node.body, path, shapes))


@_builds(n.Residual)
def _residual(node: n.Residual, path, shapes):
    shortcut = None
    if node.shortcut is not None:
        shortcut = (node.shortcut.name, build_node(node.shortcut, f"{path}.{node.shortcut.name}", shapes))
    post = None if node.post is None else (node.post.name, build_node(node.post, f"{path}.{node.post.name}", shapes))
    return layers.Residual(_children(node.body, path, shapes), shortcut, post)


GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class SpecModel(nn.Module):
    """A torch model interpreted from a :class:`cnnspec.ModelSpec`.

    Top-level children carry torchvision's attribute names (``features``, ``conv1``, ``layer1``,
    ``fc``...), so ``state_dict()`` has torchvision's keys. In training mode a model with auxiliary
    heads returns ``(logits, aux_n, ..., aux_1)`` as a namedtuple (torchvision's GoogLeNetOutputs).
    """

    def __init__(self, spec: cnnspec.ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self._valid_sizes: set = set()
        shapes = cnnspec.analyse(spec).by_path()
        self.feature_names = [node.name for node in spec.features]
        self.head_names = [node.name for node in spec.head]
        self.aux_sources = {aux.name: aux.source for aux in spec.aux_heads}
        self.num_features = shapes[spec.classifier].in_features  # timm's: the width the classifier reads
        features = [(node.name, build_node(node, node.name, shapes)) for node in spec.features]
        _not_in_place_first(features)  # the caller's input tensor is never changed
        layers.add_children(self, features)
        for aux in spec.aux_heads:
            self.add_module(aux.name, build_node(aux.head, aux.name, shapes))
        for node in spec.head:
            self.add_module(node.name, build_node(node, node.name, shapes))
        if spec.aux_heads:
            fields = ["logits"] + [
                f"aux_logits{a.name[3:]}" if a.name.startswith("aux") else a.name for a in reversed(spec.aux_heads)
            ]
            self._outputs = (
                GoogLeNetOutputs if fields == list(GoogLeNetOutputs._fields) else namedtuple("ModelOutputs", fields)
            )

    @property
    def num_classes(self) -> int:
        return getattr(self.get_classifier(), "out_features", 0)  # 0 after reset_classifier(0), as timm's

    @property
    def feature_info(self) -> cnnspec.FeatureInfo:
        """timm's ``model.feature_info``: the feature levels (``channels()``, ``reduction()``,
        ``module_name()``, ``[i]["num_chs"]``) that ``features_only=True`` returns (cnnspec.feature_levels)."""
        return cnnspec.feature_info(self.spec)

    def get_classifier(self) -> nn.Module:
        """The final Linear layer (``classifier.6`` for VGG, ``fc`` for ResNet)."""
        return self.get_submodule(self.spec.classifier)

    def reset_classifier(self, num_classes: int) -> None:
        """timm's: a fresh final Linear with ``num_classes`` outputs at the classifier's place (same
        device and dtype), or none for 0 (the model then returns its ``num_features`` pre-logits)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be an int >= 0 (0: no classifier), received {num_classes!r}")
        like = next(self.parameters())
        new = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        parent, _, leaf = self.spec.classifier.rpartition(".")
        setattr(self.get_submodule(parent) if parent else self, leaf, new.to(device=like.device, dtype=like.dtype))
        if num_classes:
            spec = cnnspec.replace_at(self.spec, self.spec.classifier, out=num_classes)
            self.spec = dataclasses.replace(spec, num_classes=num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, (N, C, H, W): what a frozen backbone hands to a new head."""
        self._check_input(x)
        for name in self.feature_names:
            x = layers.run_child(self, name, x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The head on :meth:`forward_features`' output; ``pre_logits=True`` stops before the final
        Linear and returns what it reads, (N, ``num_features``), as timm's models do."""
        seen: list[torch.Tensor] = []
        hook = (
            self.get_classifier().register_forward_pre_hook(lambda _, args: seen.append(args[0]))
            if pre_logits
            else None
        )
        try:
            for name in self.head_names:
                x = getattr(self, name)(x)
        finally:
            if hook is not None:
                hook.remove()
        return seen[-1] if pre_logits else x

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        want_aux = self.training and bool(self.aux_sources)
        if not want_aux:
            return self.forward_head(self.forward_features(x))
        self._check_input(x)
        aux_out: dict[str, torch.Tensor] = {}
        for name in self.feature_names:
            x = layers.run_child(self, name, x)
            for aux, source in self.aux_sources.items():
                if source == name:
                    aux_out[aux] = getattr(self, aux)(x)
        logits = self.forward_head(x)
        return self._outputs(logits, *[aux_out[a] for a in reversed(list(self.aux_sources))])

    def _check_input(self, x: torch.Tensor) -> None:
        """A clear error for a wrong input instead of a conv's shape traceback."""
        if (
            torch.jit.is_tracing()
            or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export()
            or layers.fx_tracing(x)  # torch.fx (create_feature_extractor): a Proxy has no shape to check
        ):
            return
        channels = self.spec.input_size[0]
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"{self.spec.name} expects a torch.Tensor of shape (N, {channels}, H, W), received {type(x).__name__}"
            )
        if not x.is_floating_point():
            raise TypeError(f"{self.spec.name} expects a floating-point input, received dtype {x.dtype}")
        weights = next(self.parameters(), None)
        if weights is not None and x.dtype != weights.dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(
                f"{self.spec.name} has {weights.dtype} weights and received a {x.dtype} input: convert one "
                f"(x.to({weights.dtype}) or model.to({x.dtype})), or run under torch.autocast"
            )
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(
                f"{self.spec.name} expects input of shape (N, {channels}, H, W), received {tuple(x.shape)}"
            )
        size = (int(x.shape[2]), int(x.shape[3]))
        if size not in self._valid_sizes:
            try:
                cnnspec.analyse(self.spec, size, include_aux=False)
            except cnnspec.ShapeError as err:
                raise ValueError(str(err)) from None
            self._valid_sizes.add(size)
