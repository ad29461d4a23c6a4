"""``python -m parity train-curve resnet18``: a short fine-tuning run, the same in both frameworks.

The demonstration a user can rerun: both models from the same weights (torchvision's
initialisation of the family, transferred torch -> Keras), the same fixed batches of the embedded
toy shapes (:mod:`cnntoydata`: drawn, not downloaded; no shuffling, no augmentation, dropout off),
``steps`` steps of SGD with momentum and weight decay (float64 by default), BatchNorm in training mode.
Both loss curves are recorded and their relative gap at every step is the figure: it passes when
the largest gap is within ``rtol`` (1e-4). The PNG draws both curves and the gap.

Beside them runs a control: the same torch model in the channels_last memory format (other
kernels, the same math), same batches, same optimizer. Its gap to the plain torch run is what
rounding alone does to this training run. Measured (resnet18, 32 px, batch 8, lr 0.01): in
float32 the control leaves 1e-4 at step 6 and passes 1e-1 at step 8, torch vs Keras leaves 1e-4
at step 3 and passes 1e-1 at step 6-7 on every backend (Keras on torch, the same kernels,
included): a from-scratch run with training-mode BatchNorm amplifies float32 rounding about
tenfold per step, whichever framework computes it. In float64 both gaps stay below 1e-7 over 50 steps
(8.7e-8, control 1.0e-8). So float64 is the default here: the demonstration that
both frameworks compute the same run, and ``--dtype float32`` shows the drift next to its control.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import cnnspec
from cnnbase.atomic import atomic_write

DEFAULT_STEPS = 50
DEFAULT_BATCH = 8
DEFAULT_SIZE = 32
DEFAULT_BATCHES = 4  # fixed batches, cycled: the model sees each again, so the loss falls
CURVE_RTOL = 1e-4
CURVE_HYPER = {"lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4}


@dataclass
class CurveResult:
    model: str
    backend: str
    dtype: str
    input_shape: tuple[int, ...]
    steps: int
    torch_loss: list[float] = field(default_factory=list)
    keras_loss: list[float] = field(default_factory=list)
    control_loss: list[float] = field(default_factory=list)  # torch again, channels_last (see the module docstring)
    seconds: dict[str, float] = field(default_factory=dict)
    rtol: float = CURVE_RTOL

    @property
    def gaps(self) -> list[float]:
        """|torch - keras| / |torch| at every step (inf where a loss is not finite)."""
        return _gaps(self.torch_loss, self.keras_loss)

    @property
    def control_gaps(self) -> list[float]:
        """|torch - torch channels_last| / |torch|: rounding alone."""
        return _gaps(self.torch_loss, self.control_loss)

    @property
    def max_gap(self) -> float:
        return max(self.gaps, default=float("inf"))

    @property
    def passed(self) -> bool:
        return len(self.torch_loss) == self.steps and self.max_gap <= self.rtol

    @classmethod
    def from_dict(cls, d: dict) -> CurveResult:
        """The result back from :meth:`to_dict` (a subprocess's JSON)."""
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "input_shape": tuple(fields["input_shape"])})

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "gaps": self.gaps,
            "max_gap": self.max_gap,
            "control_gaps": self.control_gaps,
            "passed": self.passed,
        }


def _gaps(reference: list[float], other: list[float]) -> list[float]:
    return [
        abs(t - k) / max(abs(t), 1e-30) if np.isfinite(t) and np.isfinite(k) else float("inf")
        for t, k in zip(reference, other)
    ]


def toy_batches(
    spec: cnnspec.ModelSpec, count: int, batch: int, size: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` fixed (NCHW float32 images normalised with the spec's statistics, labels) batches
    of the toy shapes, every class in turn; one grey channel for one-channel models."""
    import cnntoydata

    classes = cnntoydata.SHAPES[: spec.num_classes]
    rng = np.random.default_rng(seed)
    mean = np.asarray(spec.mean, np.float32)[:, None, None]
    std = np.asarray(spec.std, np.float32)[:, None, None]
    out = []
    for b in range(count):
        labels = (np.arange(batch) + b * batch) % len(classes)
        images = []
        for label in labels:
            pixels = np.asarray(cnntoydata.draw(classes[label], rng, size=size), np.float32).transpose(2, 0, 1) / 255.0
            if spec.input_size[0] == 1:
                pixels = pixels.mean(axis=0, keepdims=True)
            images.append((pixels - mean) / std)
        out.append((np.stack(images).astype(np.float32), labels.astype(np.int64)))
    return out


def train_curve(
    name: str = "resnet18",
    steps: int = DEFAULT_STEPS,
    batch: int = DEFAULT_BATCH,
    size: int | None = None,
    batches: int = DEFAULT_BATCHES,
    seed: int = 0,
    dtype: str = "float64",
    rtol: float = CURVE_RTOL,
    progress: bool = True,
    control: bool = True,
    **hyper: Any,
) -> CurveResult:
    """Trains the torch_impl and keras_impl ``name`` side by side for ``steps`` SGD steps on the
    same fixed toy batches and records both losses (see the module docstring)."""
    import keras

    from ..comparison.compare import strict_float32, to_nhwc
    from .steps import (
        compile_for_training,
        keras_dtype,
        keras_optimizer,
        keras_step,
        torch_optimizer,
        torch_step,
        training_pair,
    )

    if steps < 1 or batch < 2 or batches < 1:
        raise ValueError(
            "expected steps >= 1, batch >= 2 (BatchNorm statistics) and batches >= 1; "
            f"received {steps}, {batch}, {batches}"
        )
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1 (or left out for the default), received size={size}")
    import cnntoydata

    num_classes = len(cnntoydata.SHAPES)
    spec = cnnspec.get(name)
    side = size or (spec.input_size[1] if spec.fixed_input else DEFAULT_SIZE)
    strict_float32()
    t0 = time.perf_counter()
    torch_model, keras_model = training_pair(
        name, (side, side), seed, dtype, init="torch", num_classes=min(num_classes, spec.num_classes)
    )
    data = toy_batches(torch_model.spec, batches, batch, side, seed)
    h = {**CURVE_HYPER, **hyper}
    t_opt = torch_optimizer("sgd", torch_model.parameters(), **h)
    if control:
        import copy

        import torch

        twin = copy.deepcopy(torch_model).to(memory_format=torch.channels_last)
        twin_opt = torch_optimizer("sgd", twin.parameters(), **h)
    with keras_dtype(dtype):
        compile_for_training(keras_model, keras_optimizer("sgd", **h), record=False)
    result = CurveResult(name, keras.backend.backend(), dtype, (batch,) + data[0][0].shape[1:], steps, rtol=rtol)
    result.seconds["build"] = round(time.perf_counter() - t0, 2)
    spent = {"torch": 0.0, "keras": 0.0}
    for step in range(steps):
        x, y = data[step % len(data)]
        x = x.astype(dtype)
        t1 = time.perf_counter()
        result.torch_loss.append(torch_step(torch_model, t_opt, x, y, gradients=False)[0])
        t2 = time.perf_counter()
        with keras_dtype(dtype):
            result.keras_loss.append(keras_step(keras_model, to_nhwc(x), y)[0])
        spent["torch"] += t2 - t1
        spent["keras"] += time.perf_counter() - t2
        if control:
            result.control_loss.append(torch_step(twin, twin_opt, x, y, gradients=False, channels_last=True)[0])
        if progress and ((step + 1) % 10 == 0 or step + 1 == steps):
            print(
                f"  step {step + 1:3d}/{steps}  "
                f"loss torch {result.torch_loss[-1]:.6f}  keras {result.keras_loss[-1]:.6f}"
                f"  gap {result.gaps[-1]:.1e}" + (f"  (control {result.control_gaps[-1]:.1e})" if control else ""),
                flush=True,
            )
    result.seconds.update({k: round(v, 2) for k, v in spent.items()})
    return result


def plot_curve(results: dict[str, CurveResult], path: str | os.PathLike) -> Path:
    """Both loss curves per backend (top) and their relative gap per step, log scale (bottom)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..comparison.plot import COLOURS

    fig = Figure(figsize=(9, 6.5))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    first = next(iter(results.values()))
    steps = np.arange(1, first.steps + 1)
    top.plot(steps, first.torch_loss, color="black", linewidth=2.5, alpha=0.35, label="torch_impl (torch.optim.SGD)")
    for backend, r in results.items():
        top.plot(
            steps[: len(r.keras_loss)],
            r.keras_loss,
            color=COLOURS.get(backend),
            linestyle="--",
            linewidth=1,
            label=f"keras_impl on {backend} (TorchSGD)",
        )
        bottom.plot(
            steps[: len(r.gaps)],
            np.maximum(r.gaps, 1e-17),
            color=COLOURS.get(backend),
            marker=".",
            markersize=3,
            linewidth=1,
            label=f"{backend}: max {r.max_gap:.1e}",
        )
    top.set_ylabel("cross-entropy loss")
    top.set_title(f"{first.model}: {first.steps} SGD steps on fixed toy batches {first.input_shape}, {first.dtype}")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    if first.control_loss:
        bottom.plot(
            steps[: len(first.control_gaps)],
            np.maximum(first.control_gaps, 1e-17),
            color="black",
            linestyle=":",
            linewidth=1.2,
            label=f"control, torch vs torch channels_last: max {max(first.control_gaps):.1e}",
        )
    bottom.set_yscale("log")
    bottom.axhline(first.rtol, color="grey", linestyle="--", linewidth=0.8, label=f"tolerance {first.rtol:g}")
    bottom.set_xlabel("step")
    bottom.set_ylabel("|torch - keras| / |torch|")
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3, which="both", axis="y")
    fig.tight_layout()
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100), suffix=".png")
