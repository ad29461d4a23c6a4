"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions", CVPR 2015.

torchvision's variant, kept exactly so its checkpoints load: every conv is conv(bias=False) +
BatchNorm(eps=1e-3) + ReLU, max pools use ceil mode, and the "5x5" branch uses a 3x3 kernel
(a known torchvision quirk kept for weight compatibility). ``transform_input`` re-normalises an
ImageNet-normalised input to the [-1, 1] scaling the original weights were trained on.
"""

from ..model import IMAGENET_MEAN, IMAGENET_STD, AuxHead, ModelSpec
from ..nodes import (
    AdaptiveAvgPool,
    BatchNorm,
    ChannelAffine,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Linear,
    MaxPool,
    Node,
    ReLU,
    Sequential,
)
from ..published import TORCHVISION_BASE, TORCHVISION_RECIPES, PublishedWeights, register_weights
from ..registry import register

# name: (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection)
INCEPTIONS = {
    "inception3a": (64, 96, 128, 16, 32, 32),
    "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64),
    "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64),
    "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128),
    "inception5b": (384, 192, 384, 48, 128, 128),
}


def basic_conv(out: int, kernel: int, stride: int = 1, padding: int = 0, name: str = "") -> Sequential:
    """torchvision's BasicConv2d: conv without bias, BatchNorm with eps 1e-3 (not torch's 1e-5)."""
    return Sequential(
        name=name,
        children=(
            Conv(out=out, kernel=kernel, stride=stride, padding=padding, bias=False, name="conv"),
            BatchNorm(eps=1e-3, momentum=0.1, name="bn"),
            ReLU(name="relu"),
        ),
    )


def inception(name: str, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int) -> Concat:
    return Concat(
        name=name,
        branches=(
            basic_conv(c1, 1, name="branch1"),
            Sequential(name="branch2", children=(basic_conv(c3r, 1), basic_conv(c3, 3, padding=1))),
            Sequential(name="branch3", children=(basic_conv(c5r, 1), basic_conv(c5, 3, padding=1))),
            Sequential(
                name="branch4", children=(MaxPool(kernel=3, stride=1, padding=1, ceil_mode=True), basic_conv(pool, 1))
            ),
        ),
    )


def aux_head(name: str, source: str, num_classes: int, dropout: float) -> AuxHead:
    head = Sequential(
        name=name,
        children=(
            AdaptiveAvgPool(output=4, name="avgpool"),
            basic_conv(128, 1, name="conv"),
            Flatten(name="flatten"),
            Linear(out=1024, name="fc1"),
            ReLU(name="relu"),
            Dropout(p=dropout, name="dropout"),
            Linear(out=num_classes, name="fc2"),
        ),
    )
    return AuxHead(name=name, source=source, head=head)


def transform_input_node() -> ChannelAffine:
    """x * std / 0.5 + (mean - 0.5) / 0.5 per channel, torchvision's ``_transform_input``."""
    return ChannelAffine(
        name="transform_input",
        scale=tuple(s / 0.5 for s in IMAGENET_STD),
        shift=tuple((m - 0.5) / 0.5 for m in IMAGENET_MEAN),
    )


@register("googlenet")
def googlenet(
    num_classes: int = 1000,
    aux_logits: bool = True,
    transform_input: bool = False,
    dropout: float = 0.2,
    dropout_aux: float = 0.7,
) -> ModelSpec:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015), torchvision's layout; ``aux_logits`` adds the two
    side classifiers (active in training), ``transform_input`` re-normalises ImageNet inputs the way
    torchvision's ImageNet checkpoint needs (its published weights set it)."""
    pool = lambda name: MaxPool(kernel=3, stride=2, ceil_mode=True, name=name)  # noqa: E731
    stem: tuple[Node, ...] = (
        basic_conv(64, 7, stride=2, padding=3, name="conv1"),
        pool("maxpool1"),
        basic_conv(64, 1, name="conv2"),
        basic_conv(192, 3, padding=1, name="conv3"),
        pool("maxpool2"),
    )
    if transform_input:
        stem = (transform_input_node(),) + stem
    blocks = {name: inception(name, *widths) for name, widths in INCEPTIONS.items()}
    stage3 = (blocks["inception3a"], blocks["inception3b"], pool("maxpool3"))
    stage4 = tuple(blocks[f"inception4{c}"] for c in "abcde") + (
        MaxPool(kernel=2, stride=2, ceil_mode=True, name="maxpool4"),
    )
    stage5 = (blocks["inception5a"], blocks["inception5b"])
    aux = (
        (
            aux_head("aux1", "inception4a", num_classes, dropout_aux),
            aux_head("aux2", "inception4d", num_classes, dropout_aux),
        )
        if aux_logits
        else ()
    )
    return ModelSpec(
        name="googlenet",
        family="googlenet",
        paper="Szegedy et al. 2015, Going Deeper with Convolutions",
        input_size=(3, 224, 224),
        features=stem + stage3 + stage4 + stage5,
        head=(
            AdaptiveAvgPool(name="avgpool", output=1),
            Flatten(name="flatten"),
            Dropout(name="dropout", p=dropout),
            Linear(name="fc", out=num_classes),
        ),
        classifier="fc",
        num_classes=num_classes,
        aux_heads=aux,
        init="googlenet",
        stages=tuple(tuple(n.name for n in s) for s in (stem, stage3, stage4, stage5)),
    )


# published weights (cnnspec.published): torchvision's files, held equal to its enums by tests/test_catalog.py
register_weights(
    PublishedWeights(
        model="googlenet",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "googlenet-1378be20.pth",
        acc1=69.778,
        acc5=89.53,
        num_params=6624904,
        gflops=1.498,
        file_size_mb=49.731,
        min_size=(15, 15),
        recipe=TORCHVISION_RECIPES + "googlenet",
        docs="These weights are ported from the original paper.",
        options=(("transform_input", True),),
        dropped=("aux1", "aux2"),
    )
)
