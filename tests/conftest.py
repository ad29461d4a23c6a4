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

import datetime
import zlib

import pytest

import cnnspec

TORCHVISION_TWINS = [n for n in cnnspec.names() if n not in ("lenet5", "alexnet_original")]
BIG = {"vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "resnet101", "resnet152", "vit_b_16"}


# The full-size runs (the slow mark) are too many for CI's 45-minute budget on 2 cores; each run
# takes a rotating share of them, so a few days of CI cover them all. PARITY_SLOW=all runs every
# one, PARITY_SLOW=none none, PARITY_SLOW=K the K-th share; `-m slow` (any -m naming slow) runs all.
SLOW_SHARES = 4


def slow_share(today: datetime.date) -> int:
    """Today's share of the slow tests: the UTC day number modulo SLOW_SHARES."""
    return today.toordinal() % SLOW_SHARES


def pytest_collection_modifyitems(config, items):
    choice = os.environ.get("PARITY_SLOW", "").strip().lower()
    if choice == "all" or "slow" in (config.option.markexpr or ""):
        return
    share = None if choice == "none" else int(choice) % SLOW_SHARES if choice else slow_share(datetime.datetime.now(datetime.timezone.utc).date())
    keep, drop = [], []
    for item in items:
        # a stable share per test (crc32 of its id), independent of collection order and of -n
        chosen = share is not None and zlib.crc32(item.nodeid.encode()) % SLOW_SHARES == share
        (keep if chosen or item.get_closest_marker("slow") is None else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    choice = os.environ.get("PARITY_SLOW", "") or f"share {slow_share(datetime.datetime.now(datetime.timezone.utc).date())} of {SLOW_SHARES} (by date)"
    return f"slow tests: {choice} (PARITY_SLOW=all|none|K)"


def small_options(name):
    """Spec options for a quick build: ViT for 32x32 inputs (its position embedding fixes the input
    size, 224 by default, and the 86 M parameters stay), every other model as it is."""
    return cnnspec.options_for_size(name, 32, {})


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
