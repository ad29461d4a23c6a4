"""MobileNetV2: Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018.

torchvision's layout: ``features`` is a stem conv, 17 inverted-residual blocks and a 1x1 conv to
1280 channels; each block's layers live under ``features.<i>.conv`` (a 1x1 expansion unless the
ratio is 1, a 3x3 depthwise conv, a linear 1x1 projection). A block adds its input only when its
stride is 1 and its width does not change, and has no activation after the sum (linear
bottleneck: ``Residual(post=None)``). Every BatchNorm is eps 1e-5, momentum 0.1 (torch defaults,
written out); every conv pads (k - 1) // 2 on each side, as torch's Conv2dNormActivation.
"""

from ..model import ModelSpec
from ..nodes import AdaptiveAvgPool, BatchNorm, Conv, Dropout, Flatten, Linear, Node, ReLU6, Residual, Sequential
from ..published import (
    SIMPLE_RECIPE,
    TORCHVISION_BASE,
    TORCHVISION_RECIPES,
    EvalTransform,
    PublishedWeights,
    register_weights,
)
from ..registry import register

# (expansion ratio t, output channels c, blocks n, first block's stride s): the paper's Table 2
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor``, never 10% below ``value``."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


def conv_bn_act(
    out: int, kernel: int, stride: int = 1, groups: int = 1, name: str = "", act: Node | None = ReLU6()
) -> Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias, symmetric (k - 1) // 2 padding), BatchNorm
    (eps 1e-5, momentum 0.1), then ``act`` unless it is None."""
    return Sequential(
        name=name,
        children=(
            Conv(out=out, kernel=kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
            BatchNorm(eps=1e-5, momentum=0.1),
        )
        + ((act,) if act is not None else ()),
    )


def pooled_head(num_classes: int, dropout: float) -> tuple[Node, ...]:
    """Global average pool, flatten, ``classifier`` = (Dropout, Linear): torchvision's MobileNet and
    EfficientNet heads (the pool is a functional call in MobileNetV2, a module in EfficientNet; no
    weights either way)."""
    return (
        AdaptiveAvgPool(name="avgpool", output=1),
        Flatten(name="flatten"),
        Sequential(name="classifier", children=(Dropout(p=dropout), Linear(out=num_classes))),
    )


def inverted_residual(name: str, in_channels: int, out: int, stride: int, expand_ratio: int) -> Node:
    hidden = int(round(in_channels * expand_ratio))
    layers: list[Node] = [conv_bn_act(hidden, 1)] if expand_ratio != 1 else []
    layers += [
        conv_bn_act(hidden, 3, stride, groups=hidden),
        Conv(out=out, kernel=1, bias=False),
        BatchNorm(eps=1e-5, momentum=0.1),
    ]
    conv = Sequential(name="conv", children=tuple(layers))
    if stride == 1 and in_channels == out:
        return Residual(name=name, body=(conv,), post=None)
    return Sequential(name=name, children=(conv,))


@register("mobilenet_v2")
def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.2) -> ModelSpec:
    """MobileNetV2 (Sandler et al. 2018), torchvision's layout; ``width_mult`` scales every width."""
    channels = make_divisible(32 * width_mult)
    last = make_divisible(1280 * max(1.0, width_mult))
    blocks: list[Node] = [conv_bn_act(channels, 3, stride=2, name="0")]
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        out = make_divisible(c * width_mult)
        for i in range(n):
            blocks.append(inverted_residual(str(len(blocks)), channels, out, s if i == 0 else 1, t))
            channels = out
    blocks.append(conv_bn_act(last, 1, name=str(len(blocks))))
    features = Sequential(name="features", children=tuple(blocks))
    return ModelSpec(
        name="mobilenet_v2",
        family="mobilenet",
        paper="Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks",
        input_size=(3, 224, 224),
        features=(features,),
        head=pooled_head(num_classes, dropout),
        classifier="classifier.1",
        num_classes=num_classes,
        init="mobilenet",
        stages=tuple((f"features.{i}",) for i in range(len(blocks))),
    )


# published weights (cnnspec.published): torchvision's files, held equal to its enums by tests/test_catalog.py
register_weights(
    PublishedWeights(
        model="mobilenet_v2",
        name="IMAGENET1K_V2",
        url=TORCHVISION_BASE + "mobilenet_v2-7ebf99e0.pth",
        transforms=EvalTransform(resize_size=232),
        acc1=72.154,
        acc5=90.822,
        num_params=3504872,
        gflops=0.301,
        file_size_mb=13.598,
        min_size=(1, 1),
        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe-with-reg-tuning",
        docs=(
            "These weights improve upon the results of the original paper by using a modified version of "
            "TorchVision's `new training recipe "
            "<https://pytorch.org/blog/how-to-train-state-of-the-art-models-using-torchvision-latest-primitives/>`_."
        ),
    )
)
register_weights(
    PublishedWeights(
        model="mobilenet_v2",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "mobilenet_v2-b0353104.pth",
        acc1=71.878,
        acc5=90.286,
        num_params=3504872,
        gflops=0.301,
        file_size_mb=13.555,
        min_size=(1, 1),
        recipe=TORCHVISION_RECIPES + "mobilenetv2",
        docs=SIMPLE_RECIPE,
    )
)
