"""ResNet: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.

torchvision's layout (ResNet v1.5: in a bottleneck the stride sits on the 3x3 conv), built from a
table of blocks per stage. Every BatchNorm is eps 1e-5, momentum 0.1 (torch defaults, written out).
"""

from collections.abc import Callable

from ..model import ModelSpec
from ..nodes import AdaptiveAvgPool, BatchNorm, Conv, Flatten, Linear, MaxPool, Node, ReLU, Residual, Sequential
from ..published import (
    SIMPLE_RECIPE,
    TORCHVISION_BASE,
    TORCHVISION_RECIPES,
    EvalTransform,
    PublishedWeights,
    register_weights,
)
from ..registry import register

# name: (block kind, blocks per stage)
LAYOUTS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}
STAGE_WIDTHS = (64, 128, 256, 512)


def _bn(name: str) -> BatchNorm:
    return BatchNorm(eps=1e-5, momentum=0.1, name=name)


def _block(kind: str, in_channels: int, width: int, stride: int) -> Residual:
    out_channels = width * EXPANSION[kind]
    if kind == "basic":
        body: tuple[Node, ...] = (
            Conv(out=width, kernel=3, stride=stride, padding=1, bias=False, name="conv1"),
            _bn("bn1"),
            ReLU(name="relu1"),
            Conv(out=width, kernel=3, padding=1, bias=False, name="conv2"),
            _bn("bn2"),
        )
    else:
        body = (
            Conv(out=width, kernel=1, bias=False, name="conv1"),
            _bn("bn1"),
            ReLU(name="relu1"),
            Conv(out=width, kernel=3, stride=stride, padding=1, bias=False, name="conv2"),
            _bn("bn2"),
            ReLU(name="relu2"),
            Conv(out=out_channels, kernel=1, bias=False, name="conv3"),
            _bn("bn3"),
        )
    shortcut: Node | None = None
    if stride != 1 or in_channels != out_channels:
        shortcut = Sequential(
            name="downsample", children=(Conv(out=out_channels, kernel=1, stride=stride, bias=False), _bn(""))
        )
    return Residual(body=body, shortcut=shortcut, post=ReLU(name="relu"))


def _resnet(name: str, kind: str, blocks: tuple[int, ...], num_classes: int, zero_init_residual: bool) -> ModelSpec:
    stem: tuple[Node, ...] = (
        Conv(out=64, kernel=7, stride=2, padding=3, bias=False, name="conv1"),
        _bn("bn1"),
        ReLU(name="relu"),
        MaxPool(kernel=3, stride=2, padding=1, name="maxpool"),
    )
    stages = []
    channels = 64
    for index, (width, count) in enumerate(zip(STAGE_WIDTHS, blocks)):
        layer = []
        for b in range(count):
            stride = 2 if (b == 0 and index > 0) else 1
            layer.append(_block(kind, channels, width, stride))
            channels = width * EXPANSION[kind]
        stages.append(Sequential(name=f"layer{index + 1}", children=tuple(layer)))
    return ModelSpec(
        name=name,
        family="resnet",
        paper="He et al. 2016, Deep Residual Learning for Image Recognition",
        input_size=(3, 224, 224),
        features=stem + tuple(stages),
        head=(AdaptiveAvgPool(name="avgpool", output=1), Flatten(name="flatten"), Linear(out=num_classes, name="fc")),
        classifier="fc",
        num_classes=num_classes,
        init="resnet",
        stages=(tuple(n.name for n in stem),) + tuple((s.name,) for s in stages),
        zero_init_residual=zero_init_residual,
    )


def _factory(name: str, kind: str, blocks: tuple[int, ...]) -> Callable[..., ModelSpec]:
    def build(num_classes: int = 1000, zero_init_residual: bool = False) -> ModelSpec:
        return _resnet(name, kind, blocks, num_classes, zero_init_residual)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (
        f"ResNet-{name[6:]} (He et al. 2016), torchvision's layout (v1.5: a bottleneck's stride on its 3x3 conv); "
        f"{kind} blocks {blocks} per stage."
    )
    return build


for _name, (_kind, _blocks) in LAYOUTS.items():
    register(_name)(_factory(_name, _kind, _blocks))


# published weights (cnnspec.published): torchvision's files, held equal to its enums by tests/test_catalog.py
_NEW_RECIPE = (
    "These weights improve upon the results of the original paper by using TorchVision's `new training recipe "
    "<https://pytorch.org/blog/how-to-train-state-of-the-art-models-using-torchvision-latest-primitives/>`_."
)
register_weights(
    PublishedWeights(
        model="resnet18",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "resnet18-f37072fd.pth",
        acc1=69.758,
        acc5=89.078,
        num_params=11689512,
        gflops=1.814,
        file_size_mb=44.661,
        min_size=(1, 1),
        recipe=TORCHVISION_RECIPES + "resnet",
        docs=SIMPLE_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="resnet34",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "resnet34-b627a593.pth",
        acc1=73.314,
        acc5=91.42,
        num_params=21797672,
        gflops=3.664,
        file_size_mb=83.275,
        min_size=(1, 1),
        recipe=TORCHVISION_RECIPES + "resnet",
        docs=SIMPLE_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="resnet50",
        name="IMAGENET1K_V2",
        url=TORCHVISION_BASE + "resnet50-11ad3fa6.pth",
        transforms=EvalTransform(resize_size=232),
        acc1=80.858,
        acc5=95.434,
        num_params=25557032,
        gflops=4.089,
        file_size_mb=97.79,
        min_size=(1, 1),
        recipe="https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621",
        docs=_NEW_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="resnet50",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "resnet50-0676ba61.pth",
        acc1=76.13,
        acc5=92.862,
        num_params=25557032,
        gflops=4.089,
        file_size_mb=97.781,
        min_size=(1, 1),
        recipe=TORCHVISION_RECIPES + "resnet",
        docs=SIMPLE_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="resnet101",
        name="IMAGENET1K_V2",
        url=TORCHVISION_BASE + "resnet101-cd907fc2.pth",
        transforms=EvalTransform(resize_size=232),
        acc1=81.886,
        acc5=95.78,
        num_params=44549160,
        gflops=7.801,
        file_size_mb=170.53,
        min_size=(1, 1),
        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe",
        docs=_NEW_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="resnet101",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "resnet101-63fe2227.pth",
        acc1=77.374,
        acc5=93.546,
        num_params=44549160,
        gflops=7.801,
        file_size_mb=170.511,
        min_size=(1, 1),
        recipe=TORCHVISION_RECIPES + "resnet",
        docs=SIMPLE_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="resnet152",
        name="IMAGENET1K_V2",
        url=TORCHVISION_BASE + "resnet152-f82ba261.pth",
        transforms=EvalTransform(resize_size=232),
        acc1=82.284,
        acc5=96.002,
        num_params=60192808,
        gflops=11.514,
        file_size_mb=230.474,
        min_size=(1, 1),
        recipe="https://github.com/pytorch/vision/issues/3995#new-recipe",
        docs=_NEW_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="resnet152",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "resnet152-394f9c45.pth",
        acc1=78.312,
        acc5=94.046,
        num_params=60192808,
        gflops=11.514,
        file_size_mb=230.434,
        min_size=(1, 1),
        recipe=TORCHVISION_RECIPES + "resnet",
        docs=SIMPLE_RECIPE,
    )
)
