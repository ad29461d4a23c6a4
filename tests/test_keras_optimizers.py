"""keras_impl.optimizers follow torch.optim's update rules step for step, on the current backend and,
in a subprocess, on Keras' torch backend (where they run torch.optim's own multi-tensor code); the
tabulated schedule steps with the fine-tuning core's rates on every Keras backend."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import torch
from nested_pytest import run_pytest

from keras_impl.optimizers import TorchAdam, TorchSGD

ROOT = Path(__file__).resolve().parents[1]

STEPS = 6


def _grads(step: int, shape):
    return np.random.default_rng(100 + step).standard_normal(shape).astype(np.float32)


def _run_torch(make, values, schedule=None):
    params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    opt = make(params)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule) if schedule else None
    for step in range(STEPS):
        for i, p in enumerate(params):
            p.grad = torch.from_numpy(_grads(step * 10 + i, p.shape))
        opt.step()
        if sched:
            sched.step()
    return [p.detach().numpy() for p in params]


def _run_keras(opt, values):
    variables = [keras.Variable(v.copy(), name=f"v{i}") for i, v in enumerate(values)]
    for step in range(STEPS):
        opt.apply(
            [keras.ops.convert_to_tensor(_grads(step * 10 + i, v.shape)) for i, v in enumerate(variables)], variables
        )
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]


VALUES = [
    np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32),
    np.random.default_rng(1).standard_normal(5).astype(np.float32),
]
RULES = {
    "sgd momentum + L2": (
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.05),
        lambda: TorchSGD(0.1, momentum=0.9, weight_decay=0.05),
    ),
    "sgd nesterov": (
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        lambda: TorchSGD(0.1, momentum=0.9, nesterov=True),
    ),
    "adam + L2": (
        lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.05),
        lambda: TorchAdam(0.01, weight_decay=0.05),
    ),
    "adamw": (
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05),
        lambda: TorchAdam(0.01, weight_decay=0.05, decoupled=True),
    ),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_same_updates_as_torch_optim(rule):
    make_torch, make_keras = RULES[rule]
    for t, k in zip(_run_torch(make_torch, VALUES), _run_keras(make_keras(), VALUES)):
        np.testing.assert_allclose(k, t, rtol=1e-5, atol=1e-6)


def test_keras_own_adam_differs_in_the_first_steps():
    """The twin: Keras' Adam (epsilon before the bias correction) is not torch's rule; with a small
    gradient the difference is plain."""
    small = [v * 1e-3 for v in VALUES]
    torch_out = _run_torch(lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-3), small)
    ours = _run_keras(TorchAdam(0.01, epsilon=1e-3), small)
    theirs = _run_keras(keras.optimizers.Adam(0.01, epsilon=1e-3), small)
    np.testing.assert_allclose(ours[0], torch_out[0], rtol=1e-5, atol=1e-7)
    assert not np.allclose(theirs[0], torch_out[0], rtol=1e-3, atol=1e-6)


def test_schedule_and_per_variable_rate_follow_torch_param_groups():
    """A rate that changes every step (Keras' velocity would carry old rates; torch's buffer does not)
    and a second variable at a tenth of the rate, as torch's parameter groups."""

    def make_torch(p):
        return torch.optim.SGD([{"params": [p[0]]}, {"params": [p[1]], "lr": 0.01}], lr=0.1, momentum=0.9)

    schedule = keras.optimizers.schedules.PolynomialDecay(0.1, STEPS, end_learning_rate=0.0)
    factor = lambda step: max(1.0 - step / STEPS, 0.0)  # noqa: E731  (the same decay for torch's LambdaLR)
    keras_opt = TorchSGD(schedule, momentum=0.9, lr_multipliers={"v1": 0.1})
    torch_out = _run_torch(make_torch, VALUES, schedule=factor)
    for t, k in zip(torch_out, _run_keras(keras_opt, VALUES)):
        np.testing.assert_allclose(k, t, rtol=1e-5, atol=1e-6)
    twin = _run_keras(keras.optimizers.SGD(schedule, momentum=0.9), VALUES)
    assert not np.allclose(twin[0], torch_out[0], rtol=1e-4, atol=1e-6)


# The fine-tuning run's schedule inside a compiled ``fit`` (tf.function on tensorflow, jit on jax,
# eager on torch), as the Keras adapter uses it (one fit per epoch, the step count carried on): a
# weight whose gradient is 1 at every step moves by exactly each step's rate, so its path is minus
# the running sum of the rates the optimizer used. 10 steps, a table of 7: the last 3 read past its end.
SCHEDULE_CHECK = r"""
import numpy as np, keras
from cnntune.policy import lr_factors
from keras_impl.optimizers import TabulatedSchedule, TorchSGD

factors = lr_factors(6, 2)
model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
model.compile(optimizer=TorchSGD(TabulatedSchedule(0.5, factors)), loss=lambda y, p: keras.ops.mean(p))
path = []
x = np.ones((1, 1), "float32")
for _ in range(10):  # one step per fit (jax holds the weights inside fit): the step count carries on
    model.fit(x, x, batch_size=1, epochs=1, verbose=0)
    path.append(float(model.get_weights()[0][0, 0]))
rates = [0.5 * factors[min(step, len(factors) - 1)] for step in range(10)]
np.testing.assert_allclose(path, -np.cumsum(rates), rtol=1e-6, atol=1e-7)
assert not np.allclose(path, -np.cumsum([0.5 * factors[min(s + 1, 6)] for s in range(10)]), atol=1e-4)  # twin
print("schedule ok on", keras.backend.backend())
"""


def test_the_tabulated_schedule_steps_with_the_core_rates_on_this_backend():
    exec(SCHEDULE_CHECK, {})


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the torch backend's own path")
def test_the_torch_backend_runs_torch_optims_multi_tensor_rule_once_per_rate_group(monkeypatch):
    """On Keras' torch backend the update is torch.optim's functional rule with ``foreach=True``, one
    call per learning-rate group, not Keras' per-variable loop (whose eager kernels cost resnet18 a
    third of its epoch)."""
    calls = []
    for name in ("adam", "sgd"):
        module = importlib.import_module(f"torch.optim.{name}")
        rule = getattr(module, name)

        def counted(*args, _rule=rule, _name=name, **kwargs):
            calls.append((_name, len(args[0]), kwargs["lr"], kwargs["foreach"]))
            return _rule(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    _run_keras(TorchAdam(0.01, lr_multipliers={"v1": 0.1}), VALUES)
    _run_keras(TorchSGD(0.1, momentum=0.9), VALUES)
    adam_calls, sgd_calls = calls[: 2 * STEPS], calls[2 * STEPS :]
    assert sorted({c[1:] for c in adam_calls}) == [(1, pytest.approx(0.001), True), (1, pytest.approx(0.01), True)]
    assert sgd_calls == [("sgd", 2, pytest.approx(0.1), True)] * STEPS


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tensorflow's own path")
def test_tensorflow_runs_one_fused_kernel_per_variable(monkeypatch):
    """On tensorflow each variable's update is one fused training kernel (the rule tests above hold
    its numbers to torch.optim's), not a dozen small graph ops."""
    import tensorflow as tf

    calls = []
    for name in ("ResourceApplyAdam", "ResourceApplyMomentum"):
        kernel = getattr(tf.raw_ops, name)

        def counted(*args, _kernel=kernel, _name=name, **kwargs):
            calls.append(_name)
            return _kernel(*args, **kwargs)

        monkeypatch.setattr(tf.raw_ops, name, counted)
    _run_keras(TorchAdam(0.01, weight_decay=0.05, decoupled=True), VALUES)
    _run_keras(TorchSGD(0.1, momentum=0.9, nesterov=True), VALUES)
    assert calls == ["ResourceApplyAdam"] * (STEPS * len(VALUES)) + ["ResourceApplyMomentum"] * (STEPS * len(VALUES))


def test_every_rule_on_the_torch_backend():
    """This module's rule tests and their twins, run again on Keras' torch backend: the multi-tensor
    path must give torch.optim's numbers too. The count is asserted so a renamed test cannot drop out."""
    pytest.importorskip("torch")
    env = {**os.environ, "KERAS_BACKEND": "torch", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = run_pytest(__file__, "not other_backends and not on_the_torch_backend", env, timeout=300)
    assert proc.returncode == 0 and "8 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("backend", ["jax"])
def test_the_tabulated_schedule_steps_with_the_core_rates_on_other_backends(backend):
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", SCHEDULE_CHECK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and f"schedule ok on {backend}" in proc.stdout, proc.stderr[-3000:]
