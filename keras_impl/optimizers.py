"""Keras optimizers with torch.optim's update rules, on every backend (keras.ops only).

The spec is torchvision's, and so is the training recipe: a model trained here should follow the
same trajectory as the torch_impl twin under the same hyper-parameters. Keras' built-in optimizers
differ from torch.optim in ways no hyper-parameter mapping can absorb:

- SGD: Keras keeps ``v = momentum * v - lr * g``, torch ``b = momentum * b + g`` and steps by
  ``lr * b``. Equal for a constant rate, not under a schedule (Keras' velocity carries old rates).
  Keras' ``weight_decay`` is decoupled (``p -= lr * wd * p``); torch's SGD adds ``wd * p`` to the
  gradient (L2), which then also flows through the momentum buffer.
- Adam: Keras folds the bias corrections into the rate and adds epsilon to the *uncorrected*
  ``sqrt(v)``: ``p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``; torch adds it to the
  corrected one: ``p -= lr * m_hat / (sqrt(v_hat) + eps)``. The two differ by a factor that depends
  on the step, largest in the first steps, exactly where fine-tuning is most sensitive. Keras'
  default epsilon is also 1e-7, torch's 1e-8.
- Adam's ``weight_decay`` in torch is L2 on the gradient; AdamW's is decoupled (``p *= 1 - lr * wd``).

So these subclass ``keras.optimizers.Optimizer`` and write torch's update in ``update_step``, the
per-variable hook Keras calls on tensorflow, jax and torch alike. Weight decay is applied to every
trainable variable, as torch.optim does (no exclusion list), at the variable's own rate.
``lr_multipliers`` (variable path -> factor) plays the part of torch's parameter groups: a
backbone fine-tuned at a tenth of the head's rate. Multipliers are looked up by position
(``_get_variable_index``): on tensorflow ``update_step`` receives the raw ``tf.Variable``, which
has no Keras path.

:class:`TabulatedSchedule` is a learning-rate schedule given as one factor per step: the
fine-tuning core computes its schedule once (``cnntune.policy.lr_factors``) and Keras steps with
it, instead of a Keras formula that would have to be kept equal to the core's.

On Keras' torch backend the update runs as torch.optim's own functional rule
(``torch.optim.adam.adam`` / ``torch.optim.sgd.sgd`` with ``foreach=True``), one call per rate
group, instead of Keras' loop over ``update_step``: that loop runs eagerly there, a handful of small
kernels per variable, and cost resnet18 on 32-px digits 17.0 s an epoch against 12.5 s for Keras'
own AdamW, which already uses torch's multi-tensor ops on that backend. Running torch's code also
makes the rule torch's by construction on that backend (the same ``lerp`` and ``addcdiv``).
On tensorflow each variable's update is one of TensorFlow's fused training kernels
(``ResourceApplyAdam`` with torch's epsilon moved inside it: ``eps * sqrt(1 - b2^t)``, algebraically
torch's placement; ``ResourceApplyMomentum``, which is torch's SGD buffer), instead of a dozen small
graph ops: resnet18's 62 updates took 42 ms a step against 15 ms, beside a 64 ms forward and backward.
jax keeps the ``keras.ops`` rule, which XLA fuses.

``record_gradients = True`` keeps the last gradients ``apply`` received (as numpy, by variable
path) in ``last_gradients``; ``parity.check_training`` compares them with torch's ``.grad``.
It needs eager execution (``run_eagerly=True``), where the gradients are concrete arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

PACKAGE = "keras_impl"


def _scalar(value: float, dtype) -> Any:
    """A hyper-parameter as a tensor of ``dtype``, converted once: ``ops.cast(0.9, "float64")``
    goes through a float32 tensor on tensorflow (0.9 becomes 0.899999976)."""
    return ops.convert_to_tensor(value, dtype=dtype)


class TorchOptimizer(keras.optimizers.Optimizer):
    """The pieces both rules share: torch-style weight decay, per-variable rates, gradient recording."""

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.0,
        lr_multipliers: dict[str, float] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, received {weight_decay!r}")
        self.torch_weight_decay = float(weight_decay)
        self.lr_multipliers = dict(lr_multipliers or {})
        bad = {k: v for k, v in self.lr_multipliers.items() if not v >= 0}
        if bad:
            raise ValueError(f"lr_multipliers must be >= 0, received {bad}")
        self._multiplier_by_index: list[float] = []
        self.record_gradients = False
        self.last_gradients: dict[str, np.ndarray] = {}

    def build(self, var_list):
        super().build(var_list)
        self._multiplier_by_index = [float(self.lr_multipliers.get(v.path, 1.0)) for v in var_list]

    def apply(self, grads, trainable_variables=None):
        if self.record_gradients:
            variables = trainable_variables if trainable_variables is not None else self._trainable_variables
            self.last_gradients = {
                v.path: np.asarray(ops.convert_to_numpy(g)) for g, v in zip(grads, variables) if g is not None
            }
        return super().apply(grads, trainable_variables)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """Keras' per-variable loop, or on the torch backend torch's multi-tensor rule per rate group."""
        if keras.backend.backend() != "torch":
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import torch

        with torch.no_grad():
            lr = float(ops.convert_to_numpy(learning_rate))
            step = float(ops.convert_to_numpy(self.iterations))
            groups: dict[float, list[int]] = {}
            for position, variable in enumerate(trainable_variables):
                groups.setdefault(self._factor(variable), []).append(position)
            for factor, positions in groups.items():
                values = [trainable_variables[i].value for i in positions]
                gradients = [grads[i].to(value.dtype) for i, value in zip(positions, values)]
                indices = [self._get_variable_index(trainable_variables[i]) for i in positions]
                self._torch_rule(values, gradients, indices, lr * factor, step)
        return None

    def _torch_rule(self, values: list, gradients: list, indices: list[int], lr: float, step: float) -> None:
        """torch.optim's update of ``values`` in place (torch backend only); ``step`` counts steps taken before."""
        raise NotImplementedError

    @staticmethod
    def _tf_handle(variable):
        """The resource handle a fused TensorFlow kernel updates (a Keras variable's or a raw one's)."""
        return (variable.value if isinstance(variable, keras.Variable) else variable).handle

    def _factor(self, variable) -> float:
        """This variable's learning-rate multiplier (``lr_multipliers``; 1 where none is given)."""
        return self._multiplier_by_index[self._get_variable_index(variable)] if self._multiplier_by_index else 1.0

    def _rate(self, variable, learning_rate):
        """This variable's learning rate and its multiplier (0 for a frozen-rate variable)."""
        factor = self._factor(variable)
        lr = ops.cast(learning_rate, variable.dtype)
        return (lr if factor == 1.0 else lr * factor), factor

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("weight_decay", None)
        return {**config, "weight_decay": self.torch_weight_decay, "lr_multipliers": self.lr_multipliers}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchSGD(TorchOptimizer):
    """torch.optim.SGD: ``g += wd * p; b = momentum * b + g; p -= lr * (g + momentum * b if nesterov else b)``.

    ``dampening`` is torch's default, 0 (the first step's buffer is then the gradient itself, the
    same as a zero-initialised buffer).
    """

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        name: str = "torch_sgd",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), received {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov needs a momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.momentum_buffers = (
            [self.add_variable_from_reference(v, "momentum") for v in var_list] if self.momentum else []
        )

    def update_step(self, gradient, variable, learning_rate):
        lr, factor = self._rate(variable, learning_rate)
        g = ops.cast(gradient, variable.dtype)
        if self.torch_weight_decay:
            g = g + _scalar(self.torch_weight_decay, variable.dtype) * variable
        if self.momentum and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            buffer = self.momentum_buffers[self._get_variable_index(variable)]
            # accum = momentum * accum + g; var -= lr * (g + momentum * accum if nesterov else accum)
            tf.raw_ops.ResourceApplyMomentum(
                var=self._tf_handle(variable),
                accum=self._tf_handle(buffer),
                lr=lr,  # lr * factor: 0 for a frozen-rate variable
                grad=g,
                momentum=_scalar(self.momentum, variable.dtype),
                use_nesterov=self.nesterov,
            )
            return
        if self.momentum:
            buffer = self.momentum_buffers[self._get_variable_index(variable)]
            self.assign(buffer, _scalar(self.momentum, variable.dtype) * buffer + g)
            g = g + _scalar(self.momentum, variable.dtype) * buffer if self.nesterov else buffer
        if factor != 0.0:
            self.assign_sub(variable, lr * g)

    def _torch_rule(self, values, gradients, indices, lr, step):
        from torch.optim.sgd import sgd

        buffers = [self.momentum_buffers[i].value for i in indices] if self.momentum else [None] * len(values)
        sgd(
            values,
            gradients,
            buffers,
            foreach=True,
            weight_decay=self.torch_weight_decay,
            momentum=self.momentum,
            lr=lr,
            dampening=0.0,
            nesterov=self.nesterov,
            maximize=False,
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TorchAdam(TorchOptimizer):
    """torch.optim.Adam (``decoupled=False``, weight decay as L2 on the gradient) or torch.optim.AdamW
    (``decoupled=True``: ``p *= 1 - lr * wd`` first), with torch's epsilon placement and default 1e-8:
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)``."""

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
        name: str = "torch_adam",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.decoupled = (
            float(beta_1),
            float(beta_2),
            float(epsilon),
            bool(decoupled),
        )

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

    def update_step(self, gradient, variable, learning_rate):
        lr, factor = self._rate(variable, learning_rate)
        dtype = variable.dtype
        g = ops.cast(gradient, dtype)
        wd = _scalar(self.torch_weight_decay, dtype)
        if self.torch_weight_decay and self.decoupled and factor != 0.0:
            self.assign(variable, variable * (1.0 - lr * wd))  # torch's p.mul_(1 - lr * wd)
        elif self.torch_weight_decay and not self.decoupled:
            g = g + wd * variable
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        b1, b2 = _scalar(self.beta_1, dtype), _scalar(self.beta_2, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            b1_power, b2_power = ops.power(b1, step), ops.power(b2, step)
            tf.raw_ops.ResourceApplyAdam(  # var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)
                var=self._tf_handle(variable),
                m=self._tf_handle(m),
                v=self._tf_handle(v),
                beta1_power=b1_power,
                beta2_power=b2_power,
                lr=lr,  # lr * factor: 0 for a frozen-rate variable
                beta1=b1,
                beta2=b2,
                epsilon=_scalar(self.epsilon, dtype) * ops.sqrt(1.0 - b2_power),  # torch's eps, on sqrt(v_hat)
                grad=g,
            )
            return
        self.assign(m, b1 * m + (1.0 - b1) * g)
        self.assign(v, b2 * v + (1.0 - b2) * ops.square(g))
        if factor == 0.0:
            return
        m_hat = m / (1.0 - ops.power(b1, step))
        v_hat = v / (1.0 - ops.power(b2, step))
        self.assign_sub(variable, lr * m_hat / (ops.sqrt(v_hat) + _scalar(self.epsilon, dtype)))

    def _torch_rule(self, values, gradients, indices, lr, step):
        import torch
        from torch.optim.adam import adam

        adam(
            values,
            gradients,
            [self._momentums[i].value for i in indices],
            [self._velocities[i].value for i in indices],
            [],
            [torch.tensor(step) for _ in values],  # torch counts them up by one before the update
            foreach=True,
            decoupled_weight_decay=self.decoupled,
            amsgrad=False,
            beta1=self.beta_1,
            beta2=self.beta_2,
            lr=lr,
            weight_decay=self.torch_weight_decay,
            eps=self.epsilon,
            maximize=False,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "decoupled": self.decoupled,
        }


def torch_adamw(learning_rate: Any = 0.001, weight_decay: float = 0.01, **kwargs: Any) -> TorchAdam:
    """torch.optim.AdamW's defaults (weight decay 0.01, decoupled)."""
    return TorchAdam(learning_rate=learning_rate, weight_decay=weight_decay, decoupled=True, **kwargs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TabulatedSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``peak * factors[step]``, the last factor for every step past the end: a schedule computed
    elsewhere (the fine-tuning core's per-step table), read by index. Indexing a constant table
    traces on every backend: tensorflow and jax embed it in the compiled step once; the torch
    backend, which runs eagerly, converts it once and keeps it."""

    def __init__(self, peak: float, factors: Sequence[float]) -> None:
        if not len(factors):
            raise ValueError("TabulatedSchedule needs at least one factor")
        self.peak = float(peak)
        self.factors = [float(f) for f in factors]
        self.rates = np.asarray(self.factors, dtype=np.float64) * self.peak  # the product in float64, then float32
        self._eager_table = None

    def _table(self):
        if keras.backend.backend() != "torch":  # converted inside the trace: a constant of the compiled step
            return ops.convert_to_tensor(self.rates.astype(np.float32))
        if self._eager_table is None:
            self._eager_table = ops.convert_to_tensor(self.rates.astype(np.float32))
        return self._eager_table

    def __call__(self, step):
        index = ops.minimum(ops.cast(step, "int32"), len(self.factors) - 1)
        return ops.take(self._table(), index)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "factors": self.factors}
