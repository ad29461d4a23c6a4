"""Property tests (hypothesis, derandomized so CI is repeatable): any input size and batch keeps
parity or is the documented "too small" / "only takes" error; a random single-field change of a
spec, applied to the Keras side only, is caught by the per-layer check at that node."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cnnspec
import parity
from cnnspec import nodes as n
from cnnspec.analysis import min_input_size
from parity.check import check

PROPERTY = settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@PROPERTY
@given(name=st.sampled_from(["lenet5", "alexnet", "resnet18"]), height=st.integers(1, 80), width=st.integers(1, 80),
       batch=st.integers(1, 3))
@example(name="lenet5", height=28, width=28, batch=1)  # each branch at least once, whatever is drawn
@example(name="alexnet", height=62, width=70, batch=2)
@example(name="resnet18", height=33, width=47, batch=3)
def test_any_size_keeps_parity_or_is_the_documented_error(name, height, width, batch):
    spec = cnnspec.get(name)
    minimum = min_input_size(spec)
    if spec.fixed_input and (height, width) != tuple(spec.input_size[1:]):
        with pytest.raises(cnnspec.ShapeError, match=f"only takes {spec.input_size[1]}x{spec.input_size[2]}"):
            check(name, batch=batch, size=(height, width))
    elif min(height, width) < minimum:
        with pytest.raises(cnnspec.ShapeError, match=f"needs an input of at least {minimum}x{minimum}, received {height}x{width}"):
            check(name, batch=batch, size=(height, width))
    else:
        result = check(name, batch=batch, size=(height, width), direction="torch2keras")
        assert result.passed, [r.output for r in result.reports]


def _candidates(spec: cnnspec.ModelSpec):
    """Single-field edits that keep every weight's shape and change every output of the node for
    random weights: BatchNorm eps x100, LRN alpha/beta/k, a Conv's padding + 1 (not inside a
    residual block, whose addition would then refuse the shapes while the model is built)."""
    found = []
    residual = any(isinstance(node, n.Residual) for node in _nodes(spec))

    def visit(path, node):
        if isinstance(node, n.BatchNorm):
            found.append((path, {"eps": node.eps * 100}))
        elif isinstance(node, n.LocalResponseNorm):
            found.extend([(path, {"alpha": node.alpha * 3}), (path, {"beta": node.beta * 1.5}), (path, {"k": node.k + 1})])
        elif isinstance(node, n.Conv) and not residual:
            found.append((path, {"padding": tuple(p + 1 for p in node.padding)}))
        return node

    cnnspec.map_nodes(spec, visit)
    return found


def _nodes(spec: cnnspec.ModelSpec):
    seen = []
    cnnspec.map_nodes(spec, lambda p, node: seen.append(node) or node)
    return seen


SIZES = {"vgg11_bn": (64, 64), "alexnet_original": (227, 227), "resnet18": (64, 64)}


@pytest.fixture(scope="module")
def torch_models():
    import torch_impl

    return {name: parity.randomise_torch(torch_impl.get_model(name, init_weights=False).eval(), seed=5) for name in SIZES}


@PROPERTY
@given(data=st.data())
def test_a_single_field_change_is_caught_at_that_node(torch_models, data):
    import keras_impl

    name = data.draw(st.sampled_from(sorted(SIZES)), label="model")
    spec, size = cnnspec.get(name), SIZES[name]
    path, changes = data.draw(st.sampled_from(_candidates(spec)), label="edit")
    broken = cnnspec.replace_at(spec, path, **changes)
    keras_model = keras_impl.build_model(broken, input_shape=(*size, spec.input_size[0]), classifier_activation=None)
    torch_model = torch_models[name]
    parity.transfer_weights(torch_model, keras_model)
    x = np.random.default_rng(0).standard_normal((2, spec.input_size[0], *size)).astype(np.float32)
    report = parity.compare(torch_model, keras_model, x, layers=True)
    assert not report.passed
    assert report.first_divergence.name == path, (path, changes, report.first_divergence)
