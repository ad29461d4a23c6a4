"""The interpreter: one function per spec node kind, applied to a Keras functional tensor.

Layer names are the spec's dotted paths with dots replaced by underscores (``features_0``,
``layer1_0_conv1``, ``inception3a_branch2_1_conv``): :func:`layer_name`. Dots cannot be used,
since on the torch backend Keras layers become torch modules, whose names may not contain dots.
Helper layers that torch does not have get a suffix: ``<path>_pad`` (explicit zero padding
before a conv) and ``<block>_add`` (the residual sum). A Sequential container has no layer of its
own: its output is its last child's. A Concat is the ``Concatenate`` layer named by its path, and
a Residual's output is its ``post`` activation (``layer1_0_relu``), or, without one, its sum, the
``Add`` layer then named by the block's path (``features_2``); a ResidualChain's sums are
``<block>_add<i>``, the last one named by the block's path. A depthwise conv (groups = input
channels = output channels) is a ``DepthwiseConv2D``, as in keras.applications' MobileNets.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
from keras import layers

import cnnspec
from cnnspec import init as spec_init
from cnnspec import nodes as n

from . import layers as torchlike
from .host_draws import on_host, record_keras_initializers

_BUILDERS: dict[type[n.Node], Callable] = {}


def layer_name(path: str) -> str:
    """The Keras layer name of a spec path: ``layer1.0.conv1`` -> ``layer1_0_conv1``."""
    return path.replace(".", "_")


def _builds(kind: type[n.Node]) -> Callable:
    def add(fn: Callable) -> Callable:
        _BUILDERS[kind] = fn
        return fn

    return add


class _Context:
    """What the node functions need besides the node: shapes, init scheme, classifier options."""

    def __init__(self, spec: cnnspec.ModelSpec, classifier_activation) -> None:
        self.spec = spec
        self.shapes = cnnspec.analyse(spec).by_path()
        self.draw = spec_init.drawer(spec)  # the spec's scheme, read once per model
        self.classifier_activation = classifier_activation


def build_node(node: n.Node, x, path: str, ctx: _Context):
    try:
        fn = _BUILDERS[type(node)]
    except KeyError:
        raise NotImplementedError(f"keras_impl cannot build node kind {node.kind} at {path!r}") from None
    return fn(node, x, path, ctx)


# ------------------------------------------------------------------ initialisers (torchvision's)
def keras_initializer(draw: spec_init.Draw):
    """A Keras initializer for one of :mod:`cnnspec.init`'s draws (the schemes live there)."""
    if draw.kind == "constant":
        return {0.0: "zeros", 1.0: "ones"}.get(draw.scale) or keras.initializers.Constant(draw.scale)
    if draw.kind == "uniform":
        return keras.initializers.RandomUniform(-draw.scale, draw.scale)
    if draw.truncate is not None and draw.truncate < 6.0 * draw.scale:
        if not math.isclose(draw.truncate, 2.0 * draw.scale):
            raise NotImplementedError(f"Keras truncates a normal at 2 deviations, not at +-{draw.truncate}")
        return keras.initializers.TruncatedNormal(0.0, draw.scale)
    return keras.initializers.RandomNormal(0.0, draw.scale)  # truncated 6+ deviations out: a plain normal


def _init(ctx: _Context, path: str, node: n.Node, name: str):
    return on_host(keras_initializer(ctx.draw(path, node, name, ctx.shapes[path].in_features)))


# ------------------------------------------------------------------ parameterised nodes
@_builds(n.Conv)
def _conv(node: n.Conv, x, path, ctx):
    (kh, kw), (ph, pw) = node.kernel, node.padding
    if node.stride == (1, 1) and kh % 2 and kw % 2 and (ph, pw) == (kh // 2, kw // 2):
        padding = "same"  # at stride 1 with an odd kernel, 'same' is torch's symmetric padding
    else:
        # TF's 'same' at stride 2 pads more at the bottom/right than torch: pad explicitly.
        if ph or pw:
            x = layers.ZeroPadding2D(((ph, ph), (pw, pw)), name=layer_name(f"{path}_pad"))(x)
        padding = "valid"
    if n.is_depthwise(node, ctx.shapes[path].in_features):
        return layers.DepthwiseConv2D(
            node.kernel,
            strides=node.stride,
            padding=padding,
            depth_multiplier=1,
            use_bias=node.bias,
            depthwise_initializer=_init(ctx, path, node, "weight"),
            bias_initializer=_init(ctx, path, node, "bias"),
            name=layer_name(path),
        )(x)
    return layers.Conv2D(
        node.out,
        node.kernel,
        strides=node.stride,
        padding=padding,
        groups=node.groups,
        use_bias=node.bias,
        kernel_initializer=_init(ctx, path, node, "weight"),
        bias_initializer=_init(ctx, path, node, "bias"),
        name=layer_name(path),
    )(x)


@_builds(n.BatchNorm)
def _batchnorm(node: n.BatchNorm, x, path, ctx):
    # Keras' momentum is the weight of the old running value: 1 - torch's momentum. The layer
    # folds torch's unbiased batch variance into the running variance (see TorchBatchNormalization).
    return torchlike.TorchBatchNormalization(
        axis=-1,
        epsilon=node.eps,
        momentum=1.0 - node.momentum,
        name=layer_name(path),
        gamma_initializer=_init(ctx, path, node, "weight"),
        beta_initializer=_init(ctx, path, node, "bias"),
    )(x)


@_builds(n.Linear)
def _linear(node: n.Linear, x, path, ctx):
    is_classifier = path == ctx.spec.classifier or any(path == f"{a.name}.fc2" for a in ctx.spec.aux_heads)
    return layers.Dense(
        node.out,
        use_bias=node.bias,
        activation=ctx.classifier_activation if is_classifier else None,
        kernel_initializer=_init(ctx, path, node, "weight"),
        bias_initializer=_init(ctx, path, node, "bias"),
        name=layer_name(path),
    )(x)


@_builds(n.LayerNorm)
def _layernorm(node: n.LayerNorm, x, path, ctx):
    return layers.LayerNormalization(axis=-1, epsilon=node.eps, name=layer_name(path))(x)


@_builds(n.MultiHeadAttention)
def _attention(node: n.MultiHeadAttention, x, path, ctx):
    dim = ctx.shapes[path].in_features
    attention = layers.MultiHeadAttention(
        node.heads,
        dim // node.heads,
        dropout=node.dropout,
        kernel_initializer=_init(ctx, path, node, "in_proj_weight"),
        bias_initializer=_init(ctx, path, node, "in_proj_bias"),
        name=layer_name(path),
    )
    out = attention(x, x)
    # Keras gives the output projection the q/k/v initializers; torch draws it as its own Linear
    for variable, name in (
        (attention.output_dense.kernel, "out_proj.weight"),
        (attention.output_dense.bias, "out_proj.bias"),
    ):
        initializer = keras.initializers.get(_init(ctx, path, node, name))
        variable.assign(initializer(variable.shape, variable.dtype))
    return out


@_builds(n.ClassToken)
def _class_token(node, x, path, ctx):
    return torchlike.ClassToken(_init(ctx, path, node, ""), name=layer_name(path))(x)


@_builds(n.PositionEmbedding)
def _position_embedding(node, x, path, ctx):
    return torchlike.PositionEmbedding(_init(ctx, path, node, ""), name=layer_name(path))(x)


# ------------------------------------------------------------------ parameter-free nodes
@_builds(n.PatchTokens)
def _patch_tokens(node, x, path, ctx):
    return layers.Reshape((-1, x.shape[-1]), name=layer_name(path))(x)  # NHWC is already row-major over (H, W)


@_builds(n.SelectToken)
def _select_token(node: n.SelectToken, x, path, ctx):
    return torchlike.SelectToken(node.index, name=layer_name(path))(x)


@_builds(n.GELU)
def _gelu(node: n.GELU, x, path, ctx):
    return torchlike.GELU(node.approximate, name=layer_name(path))(x)


@_builds(n.ReLU)
def _relu(node, x, path, ctx):
    return layers.ReLU(name=layer_name(path))(x)


@_builds(n.ReLU6)
def _relu6(node, x, path, ctx):
    return layers.ReLU(max_value=6.0, name=layer_name(path))(x)


@_builds(n.SiLU)
def _silu(node, x, path, ctx):
    return layers.Activation("silu", name=layer_name(path))(x)


@_builds(n.Sigmoid)
def _sigmoid(node, x, path, ctx):
    return layers.Activation("sigmoid", name=layer_name(path))(x)


@_builds(n.StochasticDepth)
def _stochastic_depth(node: n.StochasticDepth, x, path, ctx):
    return torchlike.StochasticDepth(node.p, node.mode, name=layer_name(path))(x)


@_builds(n.Tanh)
def _tanh(node, x, path, ctx):
    return layers.Activation("tanh", name=layer_name(path))(x)


@_builds(n.MaxPool)
def _maxpool(node: n.MaxPool, x, path, ctx):
    if node.padding == (0, 0) and not node.ceil_mode:
        return layers.MaxPooling2D(node.kernel, node.stride, padding="valid", name=layer_name(path))(x)
    return torchlike.TorchMaxPool2D(node.kernel, node.stride, node.padding, node.ceil_mode, name=layer_name(path))(x)


@_builds(n.AvgPool)
def _avgpool(node: n.AvgPool, x, path, ctx):
    if node.ceil_mode or (node.padding != (0, 0) and not node.count_include_pad):
        raise NotImplementedError(
            f"{path}: average pooling with ceil_mode or count_include_pad=False is not supported in Keras"
        )
    if node.padding != (0, 0):
        (ph, pw) = node.padding
        x = layers.ZeroPadding2D(((ph, ph), (pw, pw)), name=layer_name(f"{path}_pad"))(x)
    return layers.AveragePooling2D(node.kernel, node.stride, padding="valid", name=layer_name(path))(x)


@_builds(n.AdaptiveAvgPool)
def _adaptive(node: n.AdaptiveAvgPool, x, path, ctx):
    if node.output == (1, 1):
        return layers.GlobalAveragePooling2D(keepdims=True, name=layer_name(path))(x)
    if tuple(x.shape[1:3]) == node.output:  # e.g. VGG at 224: 7x7 -> 7x7 is the identity
        return layers.Identity(name=layer_name(path))(x)
    if any(size is not None and size < out for size, out in zip(x.shape[1:3], node.output)):
        # a map smaller than the output (VGG below 224 px): Keras' layer is wrong there
        return torchlike.TorchAdaptiveAvgPool2D(node.output, name=layer_name(path))(x)
    # torch's bins (floor start, ceil end); checked equal to torch.nn.AdaptiveAvgPool2d in tests
    return layers.AdaptiveAveragePooling2D(node.output, name=layer_name(path))(x)


@_builds(n.LocalResponseNorm)
def _lrn(node: n.LocalResponseNorm, x, path, ctx):
    return torchlike.LocalResponseNorm(node.size, node.alpha, node.beta, node.k, name=layer_name(path))(x)


@_builds(n.Flatten)
def _flatten(node, x, path, ctx):
    # Keras flattens (H, W, C); the weight transfer permutes the next Linear's inputs to match.
    return layers.Flatten(name=layer_name(path))(x)


@_builds(n.Dropout)
def _dropout(node: n.Dropout, x, path, ctx):
    return layers.Dropout(node.p, name=layer_name(path))(x)


@_builds(n.ChannelAffine)
def _affine(node: n.ChannelAffine, x, path, ctx):
    return torchlike.ChannelAffine(node.scale, node.shift, name=layer_name(path))(x)


# ------------------------------------------------------------------ containers
@_builds(n.Sequential)
def _sequential(node: n.Sequential, x, path, ctx):
    for child in node.children:
        x = build_node(child, x, f"{path}.{child.name}", ctx)
    return x


@_builds(n.Concat)
def _concat(node: n.Concat, x, path, ctx):
    outs = [build_node(b, x, f"{path}.{b.name}", ctx) for b in node.branches]
    return layers.Concatenate(axis=-1, name=layer_name(path))(outs)


@_builds(n.Gate)
def _gate(node: n.Gate, x, path, ctx):
    gate = x
    for child in node.body:
        gate = build_node(child, gate, f"{path}.{child.name}", ctx)
    return layers.Multiply(name=layer_name(path))([x, gate])  # (N, 1, 1, C) broadcast over H, W


@_builds(n.ResidualChain)
def _residual_chain(node: n.ResidualChain, x, path, ctx):
    """Each group's sum is an ``Add`` layer, ``<block>_add<i>``; the last one carries the block's name."""
    for i, group in enumerate(node.groups):
        out = x
        for child in group:
            out = build_node(child, out, f"{path}.{child.name}", ctx)
        last = i == len(node.groups) - 1
        x = layers.Add(name=layer_name(path if last else f"{path}.add{i}"))([x, out])
    return x


@_builds(n.Residual)
def _residual(node: n.Residual, x, path, ctx):
    out = x
    for child in node.body:
        out = build_node(child, out, f"{path}.{child.name}", ctx)
    identity = x if node.shortcut is None else build_node(node.shortcut, x, f"{path}.{node.shortcut.name}", ctx)
    if node.post is None:  # the sum is the block's output: the layer carries the block's name
        return layers.Add(name=layer_name(path))([out, identity])
    out = layers.Add(name=layer_name(f"{path}.add"))([out, identity])
    return build_node(node.post, out, f"{path}.{node.post.name}", ctx)


# ------------------------------------------------------------------ whole model
def build_model(
    spec: cnnspec.ModelSpec,
    include_top: bool = True,
    input_tensor=None,
    input_shape: tuple[int | None, int | None, int] | None = None,
    pooling: str | None = None,
    classifier_activation="softmax",
    name: str | None = None,
) -> keras.Model:
    """A functional ``keras.Model`` (NHWC) for ``spec``, with keras.applications' arguments."""
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    input_shape = _input_shape(spec, include_top, input_shape)
    if input_tensor is None:
        inputs = keras.Input(shape=input_shape, name="input")
    elif keras.backend.is_keras_tensor(input_tensor):
        inputs = input_tensor
    else:
        inputs = keras.Input(tensor=input_tensor, shape=input_shape, name="input")
    ctx = _Context(spec, classifier_activation)
    x = inputs
    taps = {}
    for node in spec.features:
        x = build_node(node, x, node.name, ctx)
        taps[node.name] = x
    outputs: list = []
    if include_top:
        aux = [build_node(a.head, taps[a.source], a.name, ctx) for a in spec.aux_heads]
        for node in spec.head:
            x = build_node(node, x, node.name, ctx)
        outputs = [x] + aux[::-1]  # torchvision's order: logits, aux2, aux1
    elif pooling == "avg":  # a map's pixels, or a transformer's tokens
        outputs = [
            (layers.GlobalAveragePooling2D if len(x.shape) == 4 else layers.GlobalAveragePooling1D)(name="pool")(x)
        ]
    elif pooling == "max":
        outputs = [(layers.GlobalMaxPooling2D if len(x.shape) == 4 else layers.GlobalMaxPooling1D)(name="pool")(x)]
    else:
        outputs = [x]
    model_inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else inputs
    model = keras.Model(model_inputs, outputs[0] if len(outputs) == 1 else outputs, name=name or spec.name)
    return record_keras_initializers(model)


def _input_shape(spec: cnnspec.ModelSpec, include_top: bool, input_shape) -> tuple:
    c, h, w = spec.input_size
    if input_shape is None:
        return (h, w, c) if (include_top or spec.fixed_input) else (None, None, c)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels). Received: input_shape={input_shape}")
    if input_shape[-1] != c:
        raise ValueError(
            f"{spec.name} expects {c} input channels (channels last). Received: input_shape={tuple(input_shape)}"
        )
    hh, ww = input_shape[0], input_shape[1]
    if hh is not None and ww is not None:
        try:
            cnnspec.analyse(spec, (hh, ww), include_aux=include_top)
        except cnnspec.ShapeError as err:
            raise ValueError(str(err)) from None
    elif include_top and spec.fixed_input:
        raise ValueError(
            f"{spec.name} with include_top=True only takes {h}x{w} inputs. Received: input_shape={tuple(input_shape)}"
        )
    return tuple(input_shape)
