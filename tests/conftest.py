"""Shared fixtures: seeded randomisation that exercises every parameter and buffer."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the CPU path is what CI has

# torch and torchvision must load before tensorflow in one process: torchvision's C extension
# segfaults when TensorFlow's (and jaxlib's) native libraries were loaded first.
try:
    import torch  # noqa: F401
    import torchvision  # noqa: F401
except ImportError:  # a keras-only environment
    pass

import pytest

import cnnspec

TORCHVISION_TWINS = [n for n in cnnspec.names() if n not in ("lenet5", "alexnet_original")]
BIG = {"vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "resnet101", "resnet152"}


def model_params(names):
    """Parametrise over model names, marking the biggest ones slow (full-size runs)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in names]


@pytest.fixture(autouse=True)
def _free_framework_memory():
    """Keras keeps every model it built in its global graph state; drop it after each test so a
    worker that builds VGG after VGG stays bounded."""
    yield
    import gc
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    gc.collect()
