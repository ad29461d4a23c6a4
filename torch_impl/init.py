"""torchvision's weight initialisation, one function per scheme named in the spec (``spec.init``)."""
from __future__ import annotations

import math
from typing import Callable, Dict

from torch import nn

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
                last_bn = [getattr(m, name) for name in m.body_names if isinstance(getattr(m, name), nn.BatchNorm2d)][-1]
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


def _default(model: nn.Module) -> None:
    """torch's own layer initialisation, which happened at construction (AlexNet, LeNet)."""


# torchvision's MobileNetV2 initialises as VGG does (kaiming_normal's default leaky_relu with a=0 has
# ReLU's gain; normal(0, 0.01) Linear weights; zero biases), so the two names share one function.
SCHEMES: Dict[str, Callable[[nn.Module], None]] = {"default": _default, "vgg": _vgg, "resnet": _resnet, "googlenet": _googlenet, "mobilenet": _vgg, "efficientnet": _efficientnet}


def initialise(model: nn.Module, scheme: str) -> None:
    try:
        SCHEMES[scheme](model)
    except KeyError:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {sorted(SCHEMES)}") from None
