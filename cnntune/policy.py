"""A fine-tuning run's policy, written once for both frameworks: the input-size rule, the epoch
seed, the checkpoint format (versioned, the framework recorded), resume checks, history.json and
the curves plot. Framework-free: torch_impl and keras_impl only supply an adapter (:mod:`.loop`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cnnspec
from cnnbase.atomic import atomic_write

from .options import DEFAULT_SIZE, WARMUP_START

CHECKPOINT_FORMAT = 2  # 2: "framework" recorded on both sides, "model_options" saved
READABLE_FORMATS = (1, 2)  # format 1 (no model_options) still resumes
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")  # torch.save files (loaded with weights_only=True)
TORCH_SUFFIXES = PICKLE_SUFFIXES + (".safetensors",)  # every torch checkpoint kind, wherever a file kind is guessed
FRAMEWORK_SUFFIXES = {"torch": ".safetensors", "keras": ".weights.h5"}  # the weights file of a checkpoint
SEED_MODULUS = 2**31 - 1  # fits every RNG both frameworks seed (keras.utils.set_random_seed takes < 2**32)


@dataclasses.dataclass
class FinetuneResult:
    """What a run produced: per-epoch history, the best validation accuracy, timings and files."""

    history: list[dict[str, float]]
    best_val_acc: float
    best_epoch: int
    epoch_times: list[float]  # seconds per epoch (train + val) run by this call
    cache_seconds: float | None  # one-off time to compute the feature cache, None without it
    classes: list[str]
    device: str
    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    history_path: Path
    plot_path: Path
    is_main: bool = True  # False in the other processes of a distributed run (they write and print nothing)

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch (shuffle order, augmentation, dropout): a function of (seed, epoch)
    alone, so a resumed run sees the epochs an uninterrupted run would."""
    return (seed * 1_000_003 + epoch) % SEED_MODULUS


def should_drop_last(n: int, batch_size: int) -> bool:
    """A last training batch of one sample is dropped: BatchNorm cannot train on it."""
    return n % batch_size == 1 and n > 1


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str = "cosine") -> float:
    """The learning rate of optimizer step ``step`` (0-based) as a fraction of the peak: linear
    warm-up from WARMUP_START, then cosine decay to 0 at ``total_steps``. The same formula as
    Keras' ``CosineDecay(initial_learning_rate=lr * WARMUP_START, warmup_target=lr, ...)``, which
    the Keras side uses, so both frameworks step with the same learning rates."""
    if schedule == "constant":
        return 1.0
    if step < warmup_steps:
        return WARMUP_START + (1.0 - WARMUP_START) * step / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    done = min(step - warmup_steps, decay_steps) / decay_steps
    return 0.5 * (1.0 + math.cos(math.pi * done))


def warmup_steps(warmup_epochs: float, steps_per_epoch: int, total_steps: int) -> int:
    """Warm-up steps: ``warmup_epochs`` worth, at most half the run."""
    return int(min(round(warmup_epochs * steps_per_epoch), total_steps // 2))


def median_short_side(root: str | os.PathLike, sample: int = 64) -> int | None:
    """The median short side of up to ``sample`` training images (headers only), spread over the
    classes; None when no image can be read."""
    from PIL import Image

    from cnntune.folders import IMAGE_SUFFIXES

    files = sorted(p for p in Path(root, "train").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    step = max(1, len(files) // sample)
    sides = []
    for path in files[::step][:sample]:
        try:
            with Image.open(path) as image:
                sides.append(min(image.size))
        except OSError:
            continue
    return int(sorted(sides)[len(sides) // 2]) if sides else None


def choose_size(
    spec: cnnspec.ModelSpec, size: int | None, root: str | os.PathLike, crop_size: int | None = None
) -> int:
    """The input side of a run: ``size`` if given (checked), the model's only size when its head
    is not adaptive, else from the images: their median short side rounded to 16, within 32-128
    px from scratch (bigger costs more than it gives on a CPU), within 64 px and the published
    weights' ``crop_size`` when starting from them (the filters were trained at that scale); then
    raised to the smallest size the model takes."""
    if size is not None or spec.fixed_input:
        return resolve_size(spec, size)
    side = median_short_side(root) or DEFAULT_SIZE
    low, high = (64, crop_size) if crop_size else (32, 128)
    size = int(min(max(16 * round(side / 16), low), high))
    for candidate in range(size, 1024, 16):
        try:
            cnnspec.analyse(spec, (candidate, candidate), include_aux=False)
            return candidate
        except cnnspec.ShapeError:
            continue
    return resolve_size(spec, size)


def resolve_size(spec: cnnspec.ModelSpec, size: int | None) -> int:
    """The input side: ``size``, else 64, else the model's only size when its head is not adaptive."""
    fixed = spec.input_size[1:]
    if size is None:
        size = fixed[0] if spec.fixed_input else DEFAULT_SIZE
    if spec.fixed_input and (size, size) != tuple(fixed):
        raise ValueError(
            f"{spec.name} takes only {fixed[0]}x{fixed[1]} inputs (its head has no adaptive pool), received size={size}"
        )
    try:
        cnnspec.analyse(spec, (size, size), include_aux=False)
    except cnnspec.ShapeError as err:
        raise ValueError(f"size={size} does not fit {spec.name}: {err}") from None
    return size


# ----------------------------------------------------------------------------- checkpoints
def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint .json of a run folder (its last.json), a .json, or a weights file beside one."""
    p = Path(path)
    if p.is_dir():
        json_path = p / "last.json"
    elif p.suffix == ".json":
        json_path = p
    else:
        stem = p.name
        for suffix in (".weights.h5", ".safetensors", ".h5"):
            stem = stem.removesuffix(suffix)
        json_path = p.with_name(stem + ".json")
    if not json_path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: expected a run folder holding last.json, a checkpoint .json, "
            "or a weights file (.safetensors, .weights.h5) with its .json beside it"
        )
    return json_path


def read_checkpoint_info(path: str | os.PathLike, framework: str) -> dict[str, Any]:
    """A checkpoint's .json, checked to be a fine-tune checkpoint of ``framework``; ``_dir`` is added."""
    json_path = resolve_checkpoint(path)
    try:
        info = json.loads(json_path.read_text())
    except ValueError as err:
        raise ValueError(f"{json_path} is not a readable checkpoint: {err}") from None
    if not isinstance(info, dict) or info.get("format") not in READABLE_FORMATS:
        raise ValueError(f"{json_path} is not a fine-tune checkpoint (format {CHECKPOINT_FORMAT})")
    recorded = info.get("framework", "torch")  # format 1 recorded only keras'
    if recorded != framework:
        raise ValueError(
            f"{json_path} is a {recorded} checkpoint; resume it with python -m {recorded}_impl finetune --resume"
        )
    info["_dir"] = str(json_path.parent)
    return info


def check_resume(info: dict[str, Any], ours: dict[str, Any], classes: list[str]) -> None:
    """A checkpoint only continues the run that wrote it: same architecture, head, mode and classes."""
    diff = {k: (info.get(k), v) for k, v in ours.items() if info.get(k) != v}
    if diff:
        flags = lambda i: " ".join(f"--{k.replace('_', '-')} {pair[i]}" for k, pair in diff.items())  # noqa: E731
        raise ValueError(
            f"cannot resume {info['_dir']}: it was trained with {flags(0)}; received {flags(1)}. Pass the same options to resume."
        )
    if info.get("classes") != classes:
        raise ValueError(
            f"cannot resume {info['_dir']}: it was trained on classes {info.get('classes')}, the data folder has {classes}"
        )


# ----------------------------------------------------------------------------- history
def plot_history(history: list[Mapping[str, float]], path: str | os.PathLike, title: str = "") -> Path:
    """Loss and accuracy curves (train and val) as a PNG, drawn with the Agg canvas: no GUI
    backend is touched, whatever matplotlib backend the caller has selected."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)
    epochs = [h["epoch"] for h in history]
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "acc")):
        for split in ("train", "val"):
            ax.plot(epochs, [h[f"{split}_{metric}"] for h in history], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if metric == "acc" else "cross-entropy loss")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100), suffix=".png")
