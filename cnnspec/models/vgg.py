"""VGG: Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015. Configurations A (vgg11), B (vgg13), D (vgg16), E (vgg19), each also
with BatchNorm after every conv (torchvision's ``_bn`` variants, eps 1e-5, momentum 0.1).

The layout is a table of stages; each stage is its conv widths, and ends with a 2x2 max pool.
"""

from collections.abc import Callable

from ..model import ModelSpec
from ..nodes import AdaptiveAvgPool, BatchNorm, Conv, Dropout, Flatten, Linear, MaxPool, Node, ReLU, Sequential
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
