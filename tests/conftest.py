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
# full-size runs left to --full: the biggest models, and VGG-13, whose layers and conventions VGG-11
# (one conv fewer per stage) already brings at full size per commit; every model still runs per
# commit at a small size (tests/test_parity.py)
BIG = {"vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "resnet101", "resnet152", "vit_b_16"}


# Two suites, each the same tests on every run (no selection by date, machine or worker):
# - per commit (`.ci/run`, the README's test command): every node kind on every path at a small
#   size; the tests marked `slow` (full-size runs) are deselected.
# - full (`python -m pytest -n 2 --full`, the README's full-run command): those plus every
#   full-size run, and the randomized hypothesis profile instead of the fixed regression set.
# `-m slow` (any -m expression naming slow) also keeps the slow tests, for running only them.
def pytest_addoption(parser):
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help="also run the full-size tests (marked slow) and the randomized property profile",
    )


def full_run(config) -> bool:
    return bool(config.getoption("--full")) or "slow" in (config.option.markexpr or "")


def pytest_configure(config):
    from hypothesis import settings

    # per commit: a fixed set of drawn examples (derandomized) beside each test's @example regression set;
    # the full run: fresh random draws, more of them
    settings.register_profile("per-commit", max_examples=4, derandomize=True, deadline=None)
    settings.register_profile("full", max_examples=25, derandomize=False, deadline=None)
    settings.load_profile("full" if full_run(config) else "per-commit")


def pytest_collection_modifyitems(config, items):
    if full_run(config):
        return
    keep, slow = [], []
    for item in items:
        (slow if item.get_closest_marker("slow") else keep).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = keep


def pytest_report_header(config):
    return "suite: " + (
        "full (slow tests included, randomized properties)"
        if full_run(config)
        else "per commit (slow tests deselected; --full runs them)"
    )


def small_options(name):
    """Spec options for a quick build: ViT for 32x32 inputs (its position embedding fixes the input
    size, 224 by default, and the 86 M parameters stay), every other model as it is."""
    return cnnspec.options_for_size(name, 32, {})


def model_params(names):
    """Parametrise over model names, marking the biggest ones slow (full-size runs)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in names]


@pytest.fixture
def most_of_the_memory(tmp_path_factory):
    """For a test that needs most of a 24 GB machine (float64 training of a full-width VGG: 12.7 GB):
    a lock the xdist workers share (their temp folders' parent), so two such tests never overlap."""
    import fcntl

    with open(tmp_path_factory.getbasetemp().parent / "most-of-the-memory.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


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
