"""EfficientNet-B0: Tan, Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019.

torchvision's layout: ``features`` is a stem conv, seven stages of MBConv blocks (``features.1`` to
``features.7``, each a Sequential of blocks) and a 1x1 conv to 1280 channels. A block's layers live
under ``<block>.block``: a 1x1 expansion (unless the ratio is 1), a depthwise conv, a
squeeze-and-excitation gate (``Gate``: pool, fc1, SiLU, fc2, sigmoid; its squeeze width is a
quarter of the block's *input* channels) and a linear 1x1 projection. Blocks that keep stride 1 and
width add their input after stochastic depth, whose probability grows linearly with the block's
index (0.2 * i / 16), as torchvision's. Every conv pads (k - 1) // 2 on each side (symmetric, as
torch; not TensorFlow's 'same', which pads more at the bottom/right at stride 2); every BatchNorm
is eps 1e-5, momentum 0.1 (torchvision's B0, written out).
"""

from ..model import ModelSpec
from ..nodes import AdaptiveAvgPool, Conv, Gate, Node, Residual, Sequential, Sigmoid, SiLU, StochasticDepth
from ..published import TORCHVISION_BASE, TORCHVISION_RECIPES, EvalTransform, PublishedWeights, register_weights
from ..registry import register
from .mobilenet import conv_bn_act, make_divisible, pooled_head

# (expansion ratio, kernel, first block's stride, input channels, output channels, blocks): B0's stages
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


def squeeze_excitation(channels: int, squeeze: int, name: str) -> Gate:
    """torchvision's SqueezeExcitation: ``x * sigmoid(fc2(silu(fc1(avgpool(x)))))``, 1x1 convs with bias."""
    return Gate(
        name=name,
        body=(
            AdaptiveAvgPool(output=1, name="avgpool"),
            Conv(out=squeeze, kernel=1, name="fc1"),
            SiLU(name="activation"),
            Conv(out=channels, kernel=1, name="fc2"),
            Sigmoid(name="scale_activation"),
        ),
    )


def mbconv(name: str, in_channels: int, out: int, kernel: int, stride: int, expand_ratio: int, drop: float) -> Node:
    hidden = make_divisible(in_channels * expand_ratio)
    layers: list[Node] = [conv_bn_act(hidden, 1, act=SiLU())] if hidden != in_channels else []
    layers += [
        conv_bn_act(hidden, kernel, stride, groups=hidden, act=SiLU()),
        squeeze_excitation(hidden, max(1, in_channels // 4), name=""),
        conv_bn_act(out, 1, act=None),
    ]
    block = Sequential(name="block", children=tuple(layers))
    if stride == 1 and in_channels == out:
        return Residual(
            name=name, body=(block, StochasticDepth(p=drop, mode="row", name="stochastic_depth")), post=None
        )
    return Sequential(name=name, children=(block,))


@register("efficientnet_b0")
def efficientnet_b0(num_classes: int = 1000, dropout: float = 0.2, stochastic_depth_prob: float = 0.2) -> ModelSpec:
    """EfficientNet-B0 (Tan & Le 2019), torchvision's layout: MBConv blocks with squeeze-and-excitation and SiLU."""
    total = sum(stage[-1] for stage in STAGES)
    features: list[Node] = [conv_bn_act(make_divisible(STAGES[0][3]), 3, stride=2, name="0", act=SiLU())]
    index = 0
    for expand, kernel, stride, cin, cout, count in STAGES:
        blocks = []
        for b in range(count):
            blocks.append(
                mbconv(
                    str(b),
                    make_divisible(cin) if b == 0 else make_divisible(cout),
                    make_divisible(cout),
                    kernel,
                    stride if b == 0 else 1,
                    expand,
                    stochastic_depth_prob * index / total,
                )
            )
            index += 1
        features.append(Sequential(name=str(len(features)), children=tuple(blocks)))
    last_in = make_divisible(STAGES[-1][4])
    features.append(conv_bn_act(4 * last_in, 1, name=str(len(features)), act=SiLU()))
    return ModelSpec(
        name="efficientnet_b0",
        family="efficientnet",
        paper="Tan & Le 2019, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
        input_size=(3, 224, 224),
        features=(Sequential(name="features", children=tuple(features)),),
        head=pooled_head(num_classes, dropout),
        classifier="classifier.1",
        num_classes=num_classes,
        init="efficientnet",
        stages=tuple((f"features.{i}",) for i in range(len(features))),
    )


# published weights (cnnspec.published): torchvision's files, held equal to its enums by tests/test_catalog.py
register_weights(
    PublishedWeights(
        model="efficientnet_b0",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "efficientnet_b0_rwightman-7f5810bc.pth",
        transforms=EvalTransform(interpolation="bicubic"),
        acc1=77.692,
        acc5=93.532,
        num_params=5288548,
        gflops=0.386,
        file_size_mb=20.451,
        min_size=(1, 1),
        recipe=TORCHVISION_RECIPES + "efficientnet-v1",
        docs="These weights are ported from the original paper.",
    )
)
