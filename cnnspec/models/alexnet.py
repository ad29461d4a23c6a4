"""AlexNet: Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012.

``alexnet`` is torchvision's variant (64-192-384-256-256 filters, no LRN, adaptive 6x6 pool, from
Krizhevsky's "One weird trick", 2014). ``alexnet_original`` is the 2012 paper: 96-256-384-384-256
filters on a 227x227 input, LRN after conv1 and conv2, and the two-GPU split kept as groups=2 on
conv2, conv4 and conv5 (60,965,224 parameters, the count of the reference Caffe model).
"""

from ..model import ModelSpec
from ..nodes import AdaptiveAvgPool, Conv, Dropout, Flatten, Linear, LocalResponseNorm, MaxPool, ReLU, Sequential
from ..published import TORCHVISION_BASE, TORCHVISION_RECIPES, PublishedWeights, no_published_weights, register_weights
from ..registry import register


def _classifier(num_classes: int, dropout: float) -> Sequential:
    return Sequential(
        name="classifier",
        children=(
            Dropout(p=dropout),
            Linear(out=4096),
            ReLU(),
            Dropout(p=dropout),
            Linear(out=4096),
            ReLU(),
            Linear(out=num_classes),
        ),
    )


def _conv_stages(features: Sequential) -> tuple:
    """One stage per conv layer: the conv and the activation/norm/pool nodes that follow it."""
    stages, current = [], []
    for child in features.children:
        if isinstance(child, Conv) and current:
            stages.append(tuple(current))
            current = []
        current.append(f"features.{child.name}")
    return tuple(stages) + (tuple(current),)


@register("alexnet")
def alexnet(num_classes: int = 1000, dropout: float = 0.5) -> ModelSpec:
    """AlexNet, torchvision's 64-192-384-256-256 variant (Krizhevsky 2014); any input >= 63x63."""
    features = Sequential(
        name="features",
        children=(
            Conv(out=64, kernel=11, stride=4, padding=2),
            ReLU(),
            MaxPool(kernel=3, stride=2),
            Conv(out=192, kernel=5, padding=2),
            ReLU(),
            MaxPool(kernel=3, stride=2),
            Conv(out=384, kernel=3, padding=1),
            ReLU(),
            Conv(out=256, kernel=3, padding=1),
            ReLU(),
            Conv(out=256, kernel=3, padding=1),
            ReLU(),
            MaxPool(kernel=3, stride=2),
        ),
    )
    return ModelSpec(
        name="alexnet",
        family="alexnet",
        paper="Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks",
        input_size=(3, 224, 224),
        features=(features,),
        head=(AdaptiveAvgPool(name="avgpool", output=6), Flatten(name="flatten"), _classifier(num_classes, dropout)),
        classifier="classifier.6",
        num_classes=num_classes,
        stages=_conv_stages(features),
    )


@register("alexnet_original")
def alexnet_original(num_classes: int = 1000, dropout: float = 0.5) -> ModelSpec:
    """AlexNet as in the 2012 paper: LRN, grouped convs, 227x227 inputs only."""
    # The paper's LRN: b = a / (k + alpha * sum a^2)^beta with k=2, n=5, alpha=1e-4, beta=0.75.
    # The spec stores torch's alpha, which torch divides by size, so alpha = 1e-4 * 5.
    lrn = LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)
    features = Sequential(
        name="features",
        children=(
            Conv(out=96, kernel=11, stride=4),  # 227 -> 55
            ReLU(),
            lrn,
            MaxPool(kernel=3, stride=2),  # overlapping pooling: 55 -> 27
            Conv(out=256, kernel=5, padding=2, groups=2),
            ReLU(),
            lrn,
            MaxPool(kernel=3, stride=2),  # 27 -> 13
            Conv(out=384, kernel=3, padding=1),
            ReLU(),
            Conv(out=384, kernel=3, padding=1, groups=2),
            ReLU(),
            Conv(out=256, kernel=3, padding=1, groups=2),
            ReLU(),
            MaxPool(kernel=3, stride=2),  # 13 -> 6
        ),
    )
    return ModelSpec(
        name="alexnet_original",
        family="alexnet",
        paper="Krizhevsky, Sutskever, Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks",
        input_size=(3, 227, 227),
        features=(features,),
        head=(Flatten(name="flatten"), _classifier(num_classes, dropout)),
        classifier="classifier.6",
        num_classes=num_classes,
        stages=_conv_stages(features),
        fixed_input=True,
    )


# published weights (cnnspec.published): torchvision's files, held equal to its enums by tests/test_catalog.py
register_weights(
    PublishedWeights(
        model="alexnet",
        name="IMAGENET1K_V1",
        url=TORCHVISION_BASE + "alexnet-owt-7be5be79.pth",
        acc1=56.522,
        acc5=79.066,
        num_params=61100840,
        gflops=0.714,
        file_size_mb=233.087,
        min_size=(63, 63),
        recipe=TORCHVISION_RECIPES + "alexnet-and-vgg",
        docs="These weights reproduce closely the results of the paper using a simplified training recipe.",
    )
)
no_published_weights(
    "alexnet_original",
    (
        "the 2012 paper's Caffe weights are not in torchvision's catalog; 'alexnet' (torchvision's variant) has "
        "IMAGENET1K_V1"
    ),
)
