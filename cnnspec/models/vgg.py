"""VGG: Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015. Configurations A (vgg11), B (vgg13), D (vgg16), E (vgg19), each also
with BatchNorm after every conv (torchvision's ``_bn`` variants, eps 1e-5, momentum 0.1).

The layout is a table of stages; each stage is its conv widths, and ends with a 2x2 max pool.
"""

import math
from collections.abc import Callable

from ..model import ModelSpec
from ..nodes import AdaptiveAvgPool, BatchNorm, Conv, Dropout, Flatten, Linear, MaxPool, Node, ReLU, Sequential
from ..published import TORCHVISION_BASE, TORCHVISION_RECIPES, EvalTransform, PublishedWeights, register_weights
from ..registry import register

STAGES: dict[str, tuple[tuple[int, ...], ...]] = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}


def _vgg(
    name: str, stages: tuple[tuple[int, ...], ...], batch_norm: bool, num_classes: int, dropout: float
) -> ModelSpec:
    layers: list[Node] = []
    stage_paths: list[tuple] = []
    for widths in stages:
        start = len(layers)
        for width in widths:
            layers.append(Conv(out=width, kernel=3, padding=1))
            if batch_norm:
                layers.append(BatchNorm(eps=1e-5, momentum=0.1))  # torch defaults, written out
            layers.append(ReLU())
        layers.append(MaxPool(kernel=2, stride=2))
        stage_paths.append(tuple(f"features.{i}" for i in range(start, len(layers))))
    classifier = Sequential(
        name="classifier",
        children=(
            Linear(out=4096),
            ReLU(),
            Dropout(p=dropout),
            Linear(out=4096),
            ReLU(),
            Dropout(p=dropout),
            Linear(out=num_classes),
        ),
    )
    return ModelSpec(
        name=name,
        family="vgg",
        paper="Simonyan & Zisserman 2015, Very Deep Convolutional Networks for Large-Scale Image Recognition",
        input_size=(3, 224, 224),
        features=(Sequential(name="features", children=tuple(layers)),),
        head=(AdaptiveAvgPool(name="avgpool", output=7), Flatten(name="flatten"), classifier),
        classifier="classifier.6",
        num_classes=num_classes,
        init="vgg",
        stages=tuple(stage_paths),
    )


def _factory(name: str, stages: tuple[tuple[int, ...], ...], batch_norm: bool) -> Callable[..., ModelSpec]:
    def build(num_classes: int = 1000, dropout: float = 0.5) -> ModelSpec:
        return _vgg(name, stages, batch_norm, num_classes, dropout)

    build.__name__ = build.__qualname__ = name
    config = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}[name.replace("_bn", "")]
    build.__doc__ = (
        f"VGG-{name[3:5]}, configuration {config} (Simonyan & Zisserman 2015)"
        + (", with BatchNorm" if batch_norm else "")
        + f"; conv widths per stage {stages}."
    )
    return build


for _base, _stages in STAGES.items():
    register(_base)(_factory(_base, _stages, batch_norm=False))
for _base, _stages in STAGES.items():
    register(f"{_base}_bn")(_factory(f"{_base}_bn", _stages, batch_norm=True))


# published weights (cnnspec.published): torchvision's files, held equal to its enums by tests/test_catalog.py
_SIMPLIFIED_RECIPE = "These weights were trained from scratch by using a simplified training recipe."
register_weights(
    PublishedWeights(
        model="vgg11",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "vgg11-8a719046.pth",
        acc1=69.02,
        acc5=88.628,
        num_params=132863336,
        gflops=7.609,
        file_size_mb=506.84,
        min_size=(32, 32),
        recipe=TORCHVISION_RECIPES + "alexnet-and-vgg",
        docs=_SIMPLIFIED_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="vgg11_bn",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "vgg11_bn-6002323d.pth",
        acc1=70.37,
        acc5=89.81,
        num_params=132868840,
        gflops=7.609,
        file_size_mb=506.881,
        min_size=(32, 32),
        recipe=TORCHVISION_RECIPES + "alexnet-and-vgg",
        docs=_SIMPLIFIED_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="vgg13",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "vgg13-19584684.pth",
        acc1=69.928,
        acc5=89.246,
        num_params=133047848,
        gflops=11.308,
        file_size_mb=507.545,
        min_size=(32, 32),
        recipe=TORCHVISION_RECIPES + "alexnet-and-vgg",
        docs=_SIMPLIFIED_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="vgg13_bn",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "vgg13_bn-abd245e5.pth",
        acc1=71.586,
        acc5=90.374,
        num_params=133053736,
        gflops=11.308,
        file_size_mb=507.59,
        min_size=(32, 32),
        recipe=TORCHVISION_RECIPES + "alexnet-and-vgg",
        docs=_SIMPLIFIED_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="vgg16",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "vgg16-397923af.pth",
        acc1=71.592,
        acc5=90.382,
        num_params=138357544,
        gflops=15.47,
        file_size_mb=527.796,
        min_size=(32, 32),
        recipe=TORCHVISION_RECIPES + "alexnet-and-vgg",
        docs=_SIMPLIFIED_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="vgg16",
        name="IMAGENET1K_FEATURES",
        url=TORCHVISION_BASE + "vgg16_features-amdegroot-88682ab5.pth",
        transforms=EvalTransform(mean=(0.48235, 0.45882, 0.40784), std=(1.0 / 255.0,) * 3),
        acc1=math.nan,
        acc5=math.nan,
        num_params=138357544,
        gflops=15.47,
        file_size_mb=527.802,
        min_size=(32, 32),
        recipe="https://github.com/amdegroot/ssd.pytorch#training-ssd",
        docs=(
            "These weights can't be used for classification because they are missing values in the `classifier` "
            "module. Only the `features` module has valid values and can be used for feature extraction. The "
            "weights were trained using the original input standardization method as described in the paper."
        ),
        categories=None,
        features_only=True,
    )
)
register_weights(
    PublishedWeights(
        model="vgg16_bn",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "vgg16_bn-6c64b313.pth",
        acc1=73.36,
        acc5=91.516,
        num_params=138365992,
        gflops=15.47,
        file_size_mb=527.866,
        min_size=(32, 32),
        recipe=TORCHVISION_RECIPES + "alexnet-and-vgg",
        docs=_SIMPLIFIED_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="vgg19",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "vgg19-dcbb9e9d.pth",
        acc1=72.376,
        acc5=90.876,
        num_params=143667240,
        gflops=19.632,
        file_size_mb=548.051,
        min_size=(32, 32),
        recipe=TORCHVISION_RECIPES + "alexnet-and-vgg",
        docs=_SIMPLIFIED_RECIPE,
    )
)
register_weights(
    PublishedWeights(
        model="vgg19_bn",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "vgg19_bn-c79401a0.pth",
        acc1=74.218,
        acc5=91.842,
        num_params=143678248,
        gflops=19.632,
        file_size_mb=548.143,
        min_size=(32, 32),
        recipe=TORCHVISION_RECIPES + "alexnet-and-vgg",
        docs=_SIMPLIFIED_RECIPE,
    )
)
