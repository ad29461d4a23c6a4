"""The one line a fine-tuning run prints before its first epoch, and the same facts in history.json.

A run that does not say what it runs cannot be checked: under torchrun nothing else shows that
two processes share the batch, and a default chosen from the data is invisible unless printed.
The line is built here, once, from the resolved options, where the run executes (a
:class:`Placement` each adapter fills: device, world size, backend) and the choices the core
derived from the data, each with its reason; neither framework formats any part of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .options import FinetuneOptions

OPTIMIZER = "AdamW"  # both adapters' make_optimizer: torch's AdamW, Keras' TorchAdam with decoupled decay


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a run executes, as the framework knows it after ``Adapter.setup``."""

    device: str  # "cpu", "cuda:0", "cpu:0", ... (of one process or one device)
    world_size: int = 1  # processes (torchrun) or devices (Keras DataParallel) that each take a batch
    backend: str | None = None  # "gloo" / "nccl" (torchrun), "jax DataParallel"; None: a single process
    unit: str = "process"  # what world_size counts, and what --batch-size is per: "process" or "device"

    def describe(self) -> str:
        """ "1 process", "2 processes, gloo", "2 devices, jax DataParallel"."""
        plural = "es" if self.unit.endswith("s") else "s"
        count = f"{self.world_size} {self.unit}{plural if self.world_size != 1 else ''}"
        return f"{count}, {self.backend}" if self.backend else count


# the options that make up the recipe, those this checkout's FinetuneOptions has (the augmentation's
# crop_scale and flip are newer than the rest: a run folder's reader meets both vintages)
RECIPE_OPTIONS = (
    "lr",
    "backbone_lr_factor",
    "weight_decay",
    "label_smoothing",
    "schedule",
    "warmup_epochs",
    "augment",
    "crop_scale",
    "flip",
    "epochs",
)
FLIP_TEXT = {"horizontal": "horizontal flip", "vertical": "vertical flip", "both": "horizontal and vertical flips"}


def augmentation(opts: FinetuneOptions) -> str:
    """What the training images go through, in words: the adapters' transforms of ``opts``."""
    if not opts.augment:
        return "none"
    scale, flip = opts.crop_scale, opts.flip
    if scale is None:  # chosen from the data (cnntune.policy.resolve_recipe) when the run starts
        parts = ["a crop from the data"]
    else:
        parts = [f"RandomResizedCrop area {scale:g}-1"] if scale < 1 else []
    if flip is None:
        parts.append("flips from the data")
    elif flip in FLIP_TEXT:
        parts.append(FLIP_TEXT[flip])
    return " + ".join(parts) or "none"


def recipe(opts: FinetuneOptions) -> dict[str, Any]:
    """The training recipe of resolved ``opts``: what decides the result besides the data and model."""
    values = opts.to_dict()
    return {
        "optimizer": OPTIMIZER,
        **{name: values[name] for name in RECIPE_OPTIONS if name in values},
        # the warm-up actually run: at most half the run (policy.warmup_steps), none at a constant rate
        "warmup_epochs": min(opts.warmup_epochs, opts.epochs / 2) if opts.schedule == "cosine" else 0,
        "augment": bool(opts.augment),
        "augmentation": augmentation(opts),
    }


@dataclasses.dataclass(frozen=True)
class RunHeader:
    """What a run is doing: printed as :meth:`line` by the main process, kept as :meth:`to_dict`
    under ``"run"`` in history.json."""

    framework: str
    model: str
    mode: str
    start: str  # "from scratch", "from IMAGENET1K_V1", "resumed at epoch 3"
    size: int
    batch_per_process: int  # --batch-size: per process (torchrun) or per device (DataParallel)
    placement: Placement
    recipe: dict[str, Any]
    choices: tuple[tuple[str, str], ...] = ()  # (choice, why) the core derived from the data
    keras_backend: str | None = None  # keras_impl's backend ("jax", "tensorflow", "torch")

    @property
    def batch_total(self) -> int:
        """The samples of one optimizer step, over every process or device."""
        return self.batch_per_process * self.placement.world_size

    def line(self) -> str:
        """One line: what trains, where, and with which recipe; then the data-derived choices."""
        r, p = self.recipe, self.placement
        who = self.framework + (f"/{self.keras_backend}" if self.keras_backend else "")
        backbone = r["backbone_lr_factor"]
        what = [
            f"{who} finetune: {self.model}",
            f"{self.mode} {self.start}",
            f"{self.size}x{self.size} px",
            f"batch {self.batch_per_process} per {p.unit} ({self.batch_total} total)",
            f"device {p.device}",
            p.describe(),
        ]
        how = [
            f"{r['optimizer']} lr {r['lr']:g}"
            + (f" (backbone x{backbone:g})" if self.mode == "fine-tune" and backbone != 1 else ""),
            f"weight decay {r['weight_decay']:g}",
            f"label smoothing {r['label_smoothing']:g}",
            f"warm-up {_count(r['warmup_epochs'], 'epoch')} then cosine"
            if r["schedule"] == "cosine"
            else "constant lr",
            _count(r["epochs"], "epoch"),
            f"augmentation {r['augmentation']}",
        ]
        text = ", ".join(what) + "; recipe: " + ", ".join(how)
        if self.choices:
            text += "; chosen: " + ", ".join(f"{choice} ({why})" for choice, why in self.choices)
        return text

    def to_dict(self) -> dict[str, Any]:
        """history.json's ``"run"``: every field of the line, and the line itself."""
        return {
            "line": self.line(),
            "framework": self.framework,
            "keras_backend": self.keras_backend,
            "model": self.model,
            "mode": self.mode,
            "start": self.start,
            "size": self.size,
            "batch_per_process": self.batch_per_process,
            "batch_total": self.batch_total,
            "device": self.placement.device,
            "world_size": self.placement.world_size,
            "unit": self.placement.unit,
            "backend": self.placement.backend,
            "recipe": self.recipe,
            "choices": [{"choice": choice, "why": why} for choice, why in self.choices],
        }


def run_header(
    framework: str,
    opts: FinetuneOptions,
    placement: Placement,
    resumed_epoch: int | None = None,
    choices: Sequence[tuple[str, str]] = (),
    keras_backend: str | None = None,
) -> RunHeader:
    """The header of a run with resolved ``opts`` (its size chosen), executing at ``placement``."""
    if opts.size is None or opts.mode is None:
        raise ValueError("the header describes resolved options (FinetuneOptions.resolved, then the size)")
    if resumed_epoch is not None:
        start = f"resumed at epoch {resumed_epoch}"
    else:
        start = f"from {opts.weights}" if opts.weights else "from scratch"
    return RunHeader(
        framework,
        opts.model,
        opts.mode,
        start,
        opts.size,
        opts.batch_size,
        placement,
        recipe(opts),
        tuple((str(c), str(w)) for c, w in choices),
        keras_backend,
    )


def size_choice(given: int | None, fixed: bool, resumed: bool, size: int) -> list[tuple[str, str]]:
    """Why the input side is what it is, when the run chose it rather than ``--size``."""
    if given is not None:
        return []
    if fixed:
        return [(f"size {size}", "the model's only input size")]
    if resumed:
        return [(f"size {size}", "the resumed run's")]
    return [(f"size {size}", "from the training images' median short side")]


def _count(n: float, noun: str) -> str:
    return f"{n:g} {noun}{'' if n == 1 else 's'}"
