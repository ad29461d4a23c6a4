"""``check_training(name)``: do the two models *train* the same, not only infer the same?

Both models start from the same seeded random weights (random BatchNorm statistics too), see the
same batch and labels, and take ``steps`` optimizer steps on cross-entropy, BatchNorm in training
mode and dropout and stochastic depth off (rate 0 in the spec both are built from: their random
masks cannot be shared between frameworks). GoogLeNet trains with its auxiliary heads and the paper's weighting,
``loss + 0.3 * aux1 + 0.3 * aux2``. torch uses torch.optim; Keras uses ``model.train_on_batch``
(its own train step on the current backend) with keras_impl's torch-rule optimizers
(:mod:`keras_impl.optimizers`). After every step it compares, by torch key, in torch's layout:

1. each BatchNorm's running mean and variance (forward order): they see the forward pass alone,
   so a convention broken in the forward pass or in the statistics' update shows here first;
2. the loss;
3. each parameter's gradient, in the order backprop computes them (the head first);
4. each updated parameter (forward order): the optimizer's rule.

That is the order in which a training step produces them, so ``first_divergence`` names where the
two first part. A figure passes when ``max_abs <= atol + rtol * max|torch value|`` (the same rule
as :func:`parity.compare`); NaN or Inf fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

import cnnspec
from cnnspec import nodes as n
from cnnspec.edit import map_nodes

from ..comparison.compare import DEFAULT_ATOL, Figures, figures, strict_float32, to_nhwc
from ..weights.copying import _plan, transfer_weights
from ..weights.mapping import LayerMapping
from ..weights.randomise import randomise_torch

OPTIMIZERS = ("sgd", "adam", "adamw")
# torchvision's reference recipe for SGD (momentum 0.9, weight decay 1e-4); torch's defaults for
# Adam; AdamW with the fine-tune CLI's decay. Rates are a fine-tuning run's, large enough that a
# wrong rule moves the weights well past the tolerance.
HYPER = {
    "sgd": {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4},
    "adam": {"lr": 1e-3, "weight_decay": 1e-4},
    "adamw": {"lr": 1e-3, "weight_decay": 0.05},
}
AUX_LOSS_WEIGHT = 0.3  # GoogLeNet's paper (section 5), as torchvision's reference scripts use it
DEFAULT_TRAIN_RTOL = 1e-5
# float64 by default: in float32 the two frameworks' kernels round differently, a value next to
# zero then falls on the other side of a ReLU in one framework, and training-mode BatchNorm's
# backward pass amplifies that on the way to the input. Measured on resnet18 (64 px, batch 4,
# SGD, step 1): gradients agree to 1e-5 next to the head and drift to ~4e-3 at the stem on the
# tensorflow backend, 1e-5 on the torch backend (same kernels). That is rounding, not a
# convention; in float64 the same check agrees to ~1e-12, so the conventions it exists to catch
# (N/(N-1) = 6 % at N = 16, Adam's epsilon, momentum) stand out by ten orders of magnitude.
DTYPES = ("float64", "float32")
DEFAULT_STEPS = 3
DEFAULT_BATCH = 4
SMALL_SIZE = (64, 64)
# Training-mode BatchNorm normalises each channel over batch x height x width values. At 64 px a
# ResNet's or GoogLeNet's last stage sees a 2x2 map: 16 values per channel at batch 4, the worst
# conditioned normalisation there is, and deep stacks of it amplify float64 rounding step by
# step. Measured, resnet152 + Adam, 3 steps: 64 px fails at 1.3e-5 (the gap grows ~1000x per
# step: loss 7.6e-14, 4.6e-10, 3.1e-7); 96 px (a 3x3 last map) passes at 3.2e-7. So the default
# size is the smallest from SMALL_SIZE up, in steps of 32, where every BatchNorm sees a map of
# at least this side. Models without BatchNorm keep SMALL_SIZE.
MIN_BATCHNORM_MAP = 3
# A gradient tensor is measured against at least this fraction of the step's largest gradient:
# some gradients are exactly zero in exact arithmetic (the bias of a convolution that feeds a
# training-mode BatchNorm, which subtracts the batch mean), and two frameworks' roundings of zero
# differ by 100 % of themselves.
GRAD_SCALE_FLOOR = 1e-6


@dataclass
class TrainingReport:
    model: str
    optimizer: str
    steps: int
    backend: str
    input_shape: tuple[int, ...]
    dtype: str
    rows: list[Figures] = field(default_factory=list)  # every step's figures, in the order above
    rtol: float = DEFAULT_TRAIN_RTOL
    atol: float = DEFAULT_ATOL
    label: str = "torch vs keras (train)"

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(f.passed for f in self.rows)

    @property
    def first_divergence(self) -> Figures | None:
        return next((f for f in self.rows if not f.passed), None)

    @property
    def losses(self) -> list[Figures]:
        return [f for f in self.rows if f.name.startswith("loss")]

    def worst(self) -> dict[str, float]:
        """Largest relative error per kind: loss, grad, param, running stat."""
        out: dict[str, float] = {}
        for f in self.rows:
            kind = row_kind(f.name)
            out[kind] = max(out.get(kind, 0.0), f.max_rel if np.isfinite(f.max_rel) else float("inf"))
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        first = self.first_divergence
        d["first_divergence"] = first.name if first else None
        d["worst"] = self.worst()
        return d


def row_kind(name: str) -> str:
    """``loss@1`` -> loss, ``grad conv1.weight@1`` -> grad, ``bn1.running_var@1`` -> running stat."""
    if name.startswith("loss"):
        return "loss"
    if name.startswith("grad "):
        return "grad"
    return "running stat" if ".running_" in name else "param"


# ----------------------------------------------------------------------------- building the pair
def without_dropout(spec: cnnspec.ModelSpec) -> cnnspec.ModelSpec:
    """The spec with every Dropout, StochasticDepth and attention dropout at rate 0: training mode
    everywhere else, no random masks."""

    def no_dropout(path: str, node: n.Node) -> n.Node:
        if isinstance(node, (n.Dropout, n.StochasticDepth)):
            return replace(node, p=0.0)
        return replace(node, dropout=0.0) if isinstance(node, n.MultiHeadAttention) else node

    return map_nodes(spec, no_dropout)


@contextlib.contextmanager
def keras_dtype(dtype: str) -> Iterator[None]:
    """Keras computing in ``dtype`` throughout: layers, inputs, losses and the optimizer's
    learning-rate variable (all follow ``floatx``; a float32 learning rate alone shifts every
    update by 5e-8 relative, which Adam's 1/sqrt(v) turns into 1e-4 within two steps). jax needs
    x64 switched on, or it silently computes float64 requests in float32 (process-wide, like
    :func:`strict_float32`)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, received {dtype!r}")
    import keras

    if dtype == "float64" and keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        with _float64_promotion(dtype == "float64"):
            yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


@contextlib.contextmanager
def _float64_promotion(on: bool) -> Iterator[None]:
    """Keras' type promotion keeping float64 on every backend. Keras caps ``result_type`` at float32
    except on tensorflow (``BIT64_TO_BIT32_DTYPE``, to match jax's default), and ops such as
    ``mean`` (global average pooling, the loss reduction) compute in ``result_type(x, float32)``:
    on jax and torch a float64 model then averaged in float32, and the float64 check saw 1e-8
    after one step and 3e-5 after three (GoogLeNet's pooled features, measured) where tensorflow
    agreed to 1e-15. A private table, so the switch is scoped to this check and tolerant of its
    absence (then the check runs with the cap: 1e-7 on resnet18 at 3 steps, measured)."""
    try:
        from keras.src.backend.common import dtypes as keras_dtypes

        table = keras_dtypes.BIT64_TO_BIT32_DTYPE
    except (ImportError, AttributeError):  # pragma: no cover - a Keras without the table
        table = None
    if not on or table is None or table.get("float64", "float64") == "float64":
        yield
        return
    capped = table["float64"]
    table["float64"] = "float64"
    try:
        yield
    finally:
        table["float64"] = capped


def input_size(spec: cnnspec.ModelSpec, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """``size``, else the model's fixed size, else the smallest square from SMALL_SIZE up where
    every BatchNorm normalises a map of at least MIN_BATCHNORM_MAP x MIN_BATCHNORM_MAP (see there)."""
    if size:
        return tuple(size)
    if spec.fixed_input:
        return tuple(spec.input_size[1:])
    side = SMALL_SIZE[0]
    while side < 1024:
        maps = [
            min(layer.input_shape[1:])
            for layer in cnnspec.analyse(spec, (side, side)).leaves
            if isinstance(layer.node, n.BatchNorm) and len(layer.input_shape) == 3
        ]
        if not maps or min(maps) >= MIN_BATCHNORM_MAP:
            break
        side += 32
    return (side, side)


def training_pair(
    name: str,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    dtype: str = "float64",
    init: str = "random",
    spec: cnnspec.ModelSpec | None = None,
    **options: Any,
):
    """A torch_impl and a keras_impl model from the same dropout-free spec, the same weights, in
    ``dtype``, with their auxiliary heads where the model has them. ``init="random"``: seeded
    random weights, random BatchNorm statistics too (every parameter exercised); ``"torch"``:
    torchvision's initialisation of the family (what a training run starts from). ``spec``: a spec
    to train instead of ``name``'s (a VGG with a narrower classifier, a small ViT)."""
    import torch

    import keras_impl
    from torch_impl.builder import SpecModel
    from torch_impl.init import initialise

    if init not in ("random", "torch"):
        raise ValueError(f"init must be 'random' or 'torch', received {init!r}")
    spec = without_dropout(
        spec if spec is not None else cnnspec.get(name, **cnnspec.options_for_size(name, size, options))
    )
    h, w = input_size(spec, size)
    cnnspec.analyse(spec, (h, w))  # a clear "too small" error before anything is built
    torch.manual_seed(seed)  # before building: layers draw their default initialisation as they are made
    torch_model = SpecModel(spec)
    if init == "random":
        randomise_torch(torch_model, seed)
    else:
        initialise(torch_model, spec.init)
    torch_model = torch_model.to(getattr(torch, dtype))
    with keras_dtype(dtype):
        keras_model = keras_impl.build_model(spec, input_shape=(h, w, spec.input_size[0]), classifier_activation=None)
    transfer_weights(torch_model, keras_model)
    return torch_model, keras_model


# ----------------------------------------------------------------------------- the optimizers
def torch_optimizer(kind: str, params, **hyper: Any):
    import torch

    h = {**HYPER[kind], **hyper}
    if kind == "sgd":
        return torch.optim.SGD(params, lr=h["lr"], momentum=h["momentum"], weight_decay=h["weight_decay"])
    cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return cls(params, lr=h["lr"], weight_decay=h["weight_decay"])


def keras_optimizer(kind: str, **hyper: Any):
    from keras_impl.optimizers import TorchAdam, TorchSGD

    h = {**HYPER[kind], **hyper}
    if kind == "sgd":
        return TorchSGD(learning_rate=h["lr"], momentum=h["momentum"], weight_decay=h["weight_decay"])
    return TorchAdam(learning_rate=h["lr"], weight_decay=h["weight_decay"], decoupled=kind == "adamw")


# ----------------------------------------------------------------------------- one step per side
def _loss_weights(outputs: int) -> list[float]:
    return [1.0] + [AUX_LOSS_WEIGHT] * (outputs - 1)


def torch_step(
    model, optimizer, x, y, gradients: bool = True, channels_last: bool = False
) -> tuple[float, dict[str, np.ndarray]]:
    """One step in training mode; returns the loss and (``gradients``) every parameter's gradient by key.
    ``channels_last`` feeds the batch in that memory format (other kernels, the same math)."""
    import torch

    model.train()
    inputs = torch.from_numpy(x)
    out = model(inputs.contiguous(memory_format=torch.channels_last) if channels_last else inputs)
    outs = list(out) if isinstance(out, tuple) else [out]
    target = torch.from_numpy(y)
    loss = sum(w * torch.nn.functional.cross_entropy(o, target) for w, o in zip(_loss_weights(len(outs)), outs))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grads = (
        {k: p.grad.detach().numpy().copy() for k, p in model.named_parameters() if p.grad is not None}
        if gradients
        else {}
    )
    optimizer.step()
    return float(loss.detach()), grads


def compile_for_training(model, optimizer, record: bool = True) -> None:
    """Cross-entropy on logits (weighted aux heads). ``record``: the optimizer keeps each step's
    gradients, and the step runs eagerly so they are arrays; otherwise a compiled (not XLA) step."""
    import keras

    outputs = len(model.outputs)
    if hasattr(optimizer, "record_gradients"):
        optimizer.record_gradients = record
    losses = [keras.losses.SparseCategoricalCrossentropy(from_logits=True) for _ in range(outputs)]
    model.compile(
        optimizer=optimizer,
        loss=losses if outputs > 1 else losses[0],
        loss_weights=_loss_weights(outputs) if outputs > 1 else None,
        run_eagerly=record,
        jit_compile=False,
    )


def keras_step(model, x_nhwc, y) -> tuple[float, dict[str, np.ndarray]]:
    """One ``train_on_batch``; returns the loss and the gradients by variable path."""
    targets = [y] * len(model.outputs) if len(model.outputs) > 1 else y
    logs = model.train_on_batch(x_nhwc, targets, return_dict=True)
    # a Keras optimizer that does not record (Keras' own, in the twin tests) leaves the gradients
    # uncompared; the updated weights still show its rule
    return float(logs["loss"]), dict(getattr(model.optimizer, "last_gradients", {}))


# ----------------------------------------------------------------------------- comparing
def _keras_by_torch_key(
    plan: Sequence[tuple[LayerMapping, Any]], values: Callable[[Any], np.ndarray | None]
) -> dict[str, np.ndarray]:
    """Keras values (one per variable, or None) converted to torch's layout, by torch key."""
    out: dict[str, np.ndarray] = {}
    for m, layer in plan:
        arrays = [values(v) for v in layer.weights]
        present = [i for i, a in enumerate(arrays) if a is not None]
        if not present:
            continue
        full = [a if a is not None else np.zeros(tuple(v.shape), np.float32) for a, v in zip(arrays, layer.weights)]
        for i, (key, a) in enumerate(zip(m.torch_keys, m.to_torch(full))):
            if i in present:
                out[key] = a
    return out


def _with_scale_floor(f: Figures, floor: float, rtol: float, atol: float) -> Figures:
    """``f`` measured against ``max(its scale, floor)`` (see GRAD_SCALE_FLOOR)."""
    if not f.finite or f.scale >= floor or floor <= 0:
        return f
    return replace(f, scale=floor, max_rel=f.max_abs / floor, passed=f.max_abs <= atol + rtol * floor)


def compare_training(
    torch_model,
    keras_model,
    inputs: np.ndarray,
    labels: np.ndarray,
    optimizer: str = "sgd",
    steps: int = DEFAULT_STEPS,
    rtol: float = DEFAULT_TRAIN_RTOL,
    atol: float = DEFAULT_ATOL,
    keras_opt=None,
    **hyper: Any,
) -> TrainingReport:
    """Trains both (already equal) models ``steps`` steps on ``inputs`` (NCHW) and ``labels``
    and compares after each step. ``keras_opt`` replaces the Keras optimizer (the twin tests pass
    Keras' own Adam to show the check sees epsilon's placement)."""
    import keras

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, received {optimizer!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, received {steps}")
    dtype = str(next(torch_model.parameters()).dtype).replace("torch.", "")
    inputs = np.asarray(inputs, dtype)
    labels = np.asarray(labels, np.int64)
    if inputs.ndim != 4 or len(inputs) == 0 or len(labels) != len(inputs):
        raise ValueError(
            "expected a non-empty NCHW batch and one label per image, "
            f"received inputs {inputs.shape} and labels {labels.shape}"
        )
    if not np.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or Inf")
    strict_float32()
    spec = torch_model.spec
    for module in torch_model.modules():  # the spec's dropout is already 0; this keeps a user's model honest too
        if module.__class__.__name__.startswith("Dropout") or module.__class__.__name__ == "StochasticDepth":
            module.p = 0.0
    t_opt = torch_optimizer(optimizer, torch_model.parameters(), **hyper)
    with keras_dtype(dtype):
        k_opt = keras_opt if keras_opt is not None else keras_optimizer(optimizer, **hyper)
        compile_for_training(keras_model, k_opt)
    plan = _plan(torch_model, keras_model)
    order = [key for m, _ in plan for key in m.torch_keys]  # forward order
    stats = [k for k in order if ".running_" in k]
    params = [k for k in order if ".running_" not in k]
    report = TrainingReport(
        spec.name, optimizer, steps, keras.backend.backend(), tuple(inputs.shape), dtype, rtol=rtol, atol=atol
    )
    x_nhwc = to_nhwc(inputs)
    for step in range(1, steps + 1):
        t_loss, t_grads = torch_step(torch_model, t_opt, inputs, labels)
        with keras_dtype(dtype):
            k_loss, k_grads = keras_step(keras_model, x_nhwc, labels)
        state = {k: v.detach().numpy() for k, v in torch_model.state_dict().items()}
        k_values = _keras_by_torch_key(plan, lambda v: np.asarray(keras.ops.convert_to_numpy(v)))
        k_grad_values = _keras_by_torch_key(plan, lambda v, grads=k_grads: grads.get(v.path))
        rows = [figures(f"{k}@{step}", state[k], k_values[k], rtol, atol) for k in stats]
        rows.append(figures(f"loss@{step}", np.array([t_loss]), np.array([k_loss]), rtol, atol))
        floor = GRAD_SCALE_FLOOR * max((float(np.abs(g).max()) for g in t_grads.values() if g.size), default=0.0)
        for k in reversed(params):
            if k_grads and (k in t_grads or k in k_grad_values):
                row = figures(
                    f"grad {k}@{step}",
                    t_grads.get(k, np.zeros(0)),
                    k_grad_values.get(k, np.full(1, np.nan)),
                    rtol,
                    atol,
                )
                rows.append(_with_scale_floor(row, floor, rtol, atol))
        rows += [figures(f"{k}@{step}", state[k], k_values[k], rtol, atol) for k in params]
        report.rows += rows
        # this step's copies go before the next step makes its own: VGG's 100 M float64 weights
        # are 0.8 GB per copy, and two steps' worth at once pushed the check past 15 GB
        del state, k_values, k_grad_values, t_grads, k_grads
    return report


def check_training(
    name: str,
    optimizer: str = "sgd",
    steps: int = DEFAULT_STEPS,
    batch: int = DEFAULT_BATCH,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    rtol: float = DEFAULT_TRAIN_RTOL,
    atol: float = DEFAULT_ATOL,
    dtype: str = "float64",
    options: dict | None = None,
    spec: cnnspec.ModelSpec | None = None,
    **hyper: Any,
) -> TrainingReport:
    """The training-parity check of ``python -m parity check NAME --train``: a fresh pair from the
    same seeded weights, a seeded batch and labels, ``steps`` steps of ``optimizer``. ``options``
    are spec options (``image_size=32`` trains a small ViT); ``spec`` replaces ``name``'s spec."""
    if batch < 2:
        raise ValueError(
            f"batch must be >= 2 (BatchNorm's training statistics need 2 values per channel), received {batch}"
        )
    torch_model, keras_model = training_pair(name, size, seed, dtype, spec=spec, **(options or {}))
    spec = torch_model.spec
    h, w = input_size(spec, size)
    rng = np.random.default_rng(seed + 10)
    inputs = rng.standard_normal((batch, spec.input_size[0], h, w)).astype(np.float32)
    labels = rng.integers(0, spec.num_classes, size=batch)
    return compare_training(torch_model, keras_model, inputs, labels, optimizer, steps, rtol, atol, **hyper)
