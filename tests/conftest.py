"""Shared fixtures: seeded randomisation that exercises every parameter and buffer."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the CPU path is what CI has

import pytest

import cnnspec

TORCHVISION_TWINS = [n for n in cnnspec.names() if n not in ("lenet5", "alexnet_original")]
BIG = {"vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "resnet101", "resnet152"}


def model_params(names):
    """Parametrise over model names, marking the biggest ones slow (full-size runs)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in names]
