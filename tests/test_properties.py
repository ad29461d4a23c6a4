"""Property tests (hypothesis): any input size and batch keeps parity or is the documented "too
small" / "only takes" error; a random single-field change of a spec, applied to the Keras side
only, is caught by the per-layer check at that node.

How many cases are drawn, and whether at random, is the profile's (tests/conftest.py): per commit a
fixed derandomized set (the same cases on every run), with ``--full`` fresh random draws and more
of them. Each test also runs its ``@example`` regression set on every run, whatever is drawn.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cnnspec
import parity
from cnnspec import nodes as n
from cnnspec.analysis import analyse, min_input_size
from parity.comparison.check import check

# no deadline (a model build takes seconds), no health checks; max_examples and derandomize are
# left to the loaded profile (a settings object inherits what it does not name from it)
PROPERTY = settings(deadline=None, suppress_health_check=list(HealthCheck))
PER_COMMIT = {"max_examples": 4, "derandomize": True}  # what tests/conftest.py's "per-commit" profile sets


@PROPERTY
@given(
    name=st.sampled_from(["lenet5", "alexnet", "resnet18"]),
    height=st.integers(1, 80),
    width=st.integers(1, 80),
    batch=st.integers(1, 3),
)
@example(name="lenet5", height=28, width=28, batch=1)  # each branch at least once, whatever is drawn
@example(name="alexnet", height=62, width=70, batch=2)
@example(name="resnet18", height=33, width=47, batch=3)
@example(name="lenet5", height=32, width=32, batch=2)  # the one size a fixed-size model takes
@example(name="alexnet", height=63, width=64, batch=1)  # exactly the minimum
@example(name="resnet18", height=1, width=1, batch=1)  # the smallest input there is
def test_any_size_keeps_parity_or_is_the_documented_error(name, height, width, batch):
    spec = cnnspec.get(name)
    minimum = min_input_size(spec)
    if spec.fixed_input and (height, width) != tuple(spec.input_size[1:]):
        with pytest.raises(cnnspec.ShapeError, match=f"only takes {spec.input_size[1]}x{spec.input_size[2]}"):
            check(name, batch=batch, size=(height, width))
    elif min(height, width) < minimum:
        with pytest.raises(
            cnnspec.ShapeError, match=f"needs an input of at least {minimum}x{minimum}, received {height}x{width}"
        ):
            check(name, batch=batch, size=(height, width))
    else:
        result = check(name, batch=batch, size=(height, width), direction="torch2keras")
        assert result.passed, [r.output for r in result.reports]


def _candidates(spec: cnnspec.ModelSpec):
    """Single-field edits that keep every weight's shape and change every output of the node for
    random weights: BatchNorm eps x100, LRN alpha/beta/k, a Conv's padding + 1 (not inside a
    residual block, whose addition would then refuse the shapes while the model is built, and only
    where the larger feature map leaves every weight's shape as it was: a flatten before a Linear
    without an adaptive pool would take more features)."""
    size = SIZES[spec.name]
    weights = _weight_shapes(spec, size)
    found = []
    residual = any(isinstance(node, n.Residual) for node in _nodes(spec))

    def visit(path, node):
        if isinstance(node, n.BatchNorm):
            found.append((path, {"eps": node.eps * 100}))
        elif isinstance(node, n.LocalResponseNorm):
            found.extend(
                [(path, {"alpha": node.alpha * 3}), (path, {"beta": node.beta * 1.5}), (path, {"k": node.k + 1})]
            )
        elif isinstance(node, n.Conv) and not residual:
            change = {"padding": tuple(p + 1 for p in node.padding)}
            if _weight_shapes(cnnspec.replace_at(spec, path, **change), size) == weights:
                found.append((path, change))
        return node

    cnnspec.map_nodes(spec, visit)
    return found


def _weight_shapes(spec: cnnspec.ModelSpec, size):
    """Each layer's parameter count and inputs at ``size`` (None: the spec does not build there)."""
    try:
        return [(layer.path, layer.params, layer.in_features) for layer in analyse(spec, size).leaves]
    except cnnspec.ShapeError:
        return None


def _nodes(spec: cnnspec.ModelSpec):
    seen = []
    cnnspec.map_nodes(spec, lambda p, node: seen.append(node) or node)
    return seen


SIZES = {"vgg11_bn": (64, 64), "alexnet_original": (227, 227), "resnet18": (64, 64)}


@pytest.fixture(scope="module")
def torch_models():
    import torch_impl

    return {
        name: parity.randomise_torch(torch_impl.get_model(name, init_weights=False).eval(), seed=5) for name in SIZES
    }


def _edits(name: str):
    return [(name, path, changes) for path, changes in _candidates(cnnspec.get(name))]


def _edit(name: str, path: str, field: str):
    """The candidate edit of ``field`` at ``path`` (its value as _candidates computes it)."""
    return next(e for e in _edits(name) if e[1] == path and field in e[2])


EDITS = st.sampled_from(sorted(SIZES)).flatmap(lambda name: st.sampled_from(_edits(name)))


@PROPERTY
@given(edit=EDITS)
@example(edit=_edit("alexnet_original", "features.2", "k"))  # LRN, right after the first conv
@example(edit=_edit("alexnet_original", "features.4", "padding"))  # a larger map that the last max pool absorbs
@example(edit=_edit("vgg11_bn", "features.8", "padding"))  # a larger map that the adaptive average pool absorbs
@example(edit=_edit("resnet18", "layer2.0.bn2", "eps"))  # a BatchNorm inside a residual block, before the addition
def test_a_single_field_change_is_caught_at_that_node(torch_models, edit):
    import keras_impl

    name, path, changes = edit
    spec, size = cnnspec.get(name), SIZES[name]
    broken = cnnspec.replace_at(spec, path, **changes)
    keras_model = keras_impl.build_model(broken, input_shape=(*size, spec.input_size[0]), classifier_activation=None)
    torch_model = torch_models[name]
    parity.transfer_weights(torch_model, keras_model)
    x = np.random.default_rng(0).standard_normal((2, spec.input_size[0], *size)).astype(np.float32)
    report = parity.compare(torch_model, keras_model, x, layers=True)
    assert not report.passed
    assert report.first_divergence.name == path, (path, changes, report.first_divergence)


# ------------------------------------------------------------------------------------ the profile
PROPERTY_TESTS = (
    test_any_size_keeps_parity_or_is_the_documented_error,
    test_a_single_field_change_is_caught_at_that_node,
)


def profile_problems(test) -> list:
    """How a @given test's settings differ from the loaded profile in what the profile decides."""
    effective, profile = test._hypothesis_internal_use_settings, settings.default
    return [
        f"{key}={getattr(effective, key)!r}, the profile's is {getattr(profile, key)!r}"
        for key in PER_COMMIT
        if getattr(effective, key) != getattr(profile, key)
    ]


def test_the_property_tests_run_the_loaded_profile_per_commit_by_default(request):
    full = sys.modules["conftest"].full_run(request.config)
    assert settings.get_current_profile_name() == ("full" if full else "per-commit")
    if not full:  # per commit: deterministic, the same few cases on every run
        assert {key: getattr(settings.default, key) for key in PER_COMMIT} == PER_COMMIT
    else:
        assert not settings.default.derandomize and settings.default.max_examples > PER_COMMIT["max_examples"]
    for test in PROPERTY_TESTS:
        assert not profile_problems(test), (test.__name__, profile_problems(test))
        assert test._hypothesis_internal_use_settings.deadline is None


def test_a_test_that_fixes_its_own_counts_is_caught():
    """Twin: a test that hard-codes max_examples/derandomize ignores the profile, and the check says so."""
    other = {"max_examples": settings.default.max_examples + 10, "derandomize": not settings.default.derandomize}

    @settings(deadline=None, **other)
    @given(st.integers())
    def fixed(x):
        pass

    assert profile_problems(fixed) == [
        f"{key}={value!r}, the profile's is {getattr(settings.default, key)!r}" for key, value in other.items()
    ]
