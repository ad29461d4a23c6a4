"""torchvision's weight initialisation, one function per scheme named in the spec (``spec.init``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from cnnspec.nodes import ClassToken, PositionEmbedding

from .layers import Residual


def _vgg(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0)


def _resnet(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    if getattr(model, "spec", None) is not None and model.spec.zero_init_residual:
        # Each block then starts as the identity (Goyal et al. 2017): zero the body's last BN gamma.
        for m in model.modules():
            if isinstance(m, Residual):
                last_bn = [getattr(m, name) for name in m.body_names if isinstance(getattr(m, name), nn.BatchNorm2d)][
                    -1
                ]
                nn.init.constant_(last_bn.weight, 0)


def _googlenet(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def _efficientnet(model: nn.Module) -> None:
    """torchvision's EfficientNet: VGG's, but Linear weights uniform in +-1/sqrt(out_features); one
    pass in module order, as torchvision's, so a seeded model draws torchvision's very numbers."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.BatchNorm2d)):
            _vgg(m)


@torch.no_grad()
def _vit(model: nn.Module) -> None:
    """torchvision's VisionTransformer: patch conv trunc_normal(sqrt(1 / fan_in)), zero class
    token, position embedding normal(0.02), attention xavier_uniform q/k/v with zero biases, MLP
    xavier_uniform weights with normal(1e-6) biases, a zero classifier."""
    classifier = model.get_classifier()
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, std=math.sqrt(1.0 / (m.in_channels * m.kernel_size[0] * m.kernel_size[1])))
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MultiheadAttention):
            nn.init.xavier_uniform_(m.in_proj_weight)
            nn.init.zeros_(m.in_proj_bias)
            nn.init.zeros_(m.out_proj.bias)  # out_proj.weight keeps nn.Linear's draw, as torchvision's
        elif isinstance(m, nn.Linear) and m is not classifier and not name.endswith(".out_proj"):
            nn.init.xavier_uniform_(m.weight)
            nn.init.normal_(m.bias, std=1e-6)
    nn.init.zeros_(classifier.weight)
    nn.init.zeros_(classifier.bias)
    for path, node in model.spec.walk():
        if isinstance(node, PositionEmbedding):
            nn.init.normal_(model.get_parameter(path), std=0.02)
        elif isinstance(node, ClassToken):
            nn.init.zeros_(model.get_parameter(path))


def _default(model: nn.Module) -> None:
    """torch's own layer initialisation, which happened at construction (AlexNet, LeNet)."""


# torchvision's MobileNetV2 initialises as VGG does (kaiming_normal's default leaky_relu with a=0 has
# ReLU's gain; normal(0, 0.01) Linear weights; zero biases), so the two names share one function.
SCHEMES: dict[str, Callable[[nn.Module], None]] = {
    "default": _default,
    "vgg": _vgg,
    "resnet": _resnet,
    "googlenet": _googlenet,
    "mobilenet": _vgg,
    "efficientnet": _efficientnet,
    "vit": _vit,
}


def initialise(model: nn.Module, scheme: str) -> None:
    try:
        SCHEMES[scheme](model)
    except KeyError:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {sorted(SCHEMES)}") from None
