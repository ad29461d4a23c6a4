"""A fine-tuning run's policy, written once for both frameworks: what the model is built with (no
auxiliary heads, the options published weights fix), which layers train in each mode, the
learning-rate schedule (a per-step table both frameworks read), when mixed precision applies, the
input-size rule, the epoch seed, the checkpoint format (versioned, the framework recorded), resume
checks, history.json and the curves plot. Framework-free: torch_impl and keras_impl only supply
an adapter (:mod:`.loop`) that carries these decisions out.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import cnnspec
from cnnbase.atomic import atomic_write
from cnnspec import published

from .options import DEFAULT_CROP_SCALE, DEFAULT_SIZE, WARMUP_START, FinetuneOptions, positive_int

CHECKPOINT_FORMAT = 2  # 2: "framework" recorded on both sides, "model_options" saved
READABLE_FORMATS = (1, 2)  # format 1 (no model_options) still resumes
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
    warm-up from WARMUP_START, then cosine decay to 0 at ``total_steps``. Both frameworks read it
    through :func:`lr_factors`, so they step with the same learning rates by construction."""
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


def lr_factors(total_steps: int, warmup: int, schedule: str = "cosine") -> list[float]:
    """:func:`lr_factor` of every step of a run, ``0..total_steps`` (the last one also serves any
    step past the end): a table, so a framework that traces its training step (Keras on
    tensorflow or jax) reads the schedule by index instead of re-deriving the formula."""
    return [lr_factor(step, total_steps, warmup, schedule) for step in range(total_steps + 1)]


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch over ``samples`` (a lone last sample is dropped, see :func:`should_drop_last`)."""
    return math.ceil((samples - should_drop_last(samples, batch_size)) / batch_size)


def use_amp(requested: bool, on_gpu: bool, precision: str, gpu: str, device: object) -> bool:
    """Mixed precision runs on a GPU only; asked for elsewhere, the run warns and stays float32.
    ``precision`` and ``gpu`` are how the framework names them (``float16 autocast``, ``CUDA``)."""
    if requested and not on_gpu:
        # stacklevel: this function, the adapter's setup, cnntune.loop.finetune, <framework>_impl's finetune, its caller
        warnings.warn(f"amp ({precision}) is used on {gpu} only; running in float32 on {device}", stacklevel=5)
    return requested and on_gpu


# ----------------------------------------------------------------------------- the model
def no_aux_heads(name: str) -> dict[str, bool]:
    """Spec options that leave out GoogLeNet's auxiliary heads: a fine-tuned model would need new
    classifiers for them, and they only help deep training from scratch on ImageNet; a parity
    check compares the inference graph, which has none."""
    return {"aux_logits": False} if "aux_logits" in cnnspec.options(name) else {}


def build_options(name: str, weights: object = None, recorded: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The spec options a fine-tuning model is built with: no auxiliary heads, then what published
    ``weights`` fix (GoogLeNet's transform_input; nothing for a file or from scratch), then the run's
    own (``recorded``: a checkpoint's model_options, or the options the core chose)."""
    return {**no_aux_heads(name), **published.finetune_model_options(name, weights), **(recorded or {})}


def under(path: str, prefixes: Iterable[str]) -> bool:
    """True when the dotted ``path`` is one of ``prefixes`` or below one (``features.1`` is not below
    ``features.10``; ``""`` is above everything)."""
    return any(p == "" or path == p or path.startswith(p + ".") for p in prefixes)


def trained_paths(spec: cnnspec.ModelSpec, mode: str, last_n_blocks: int | None = None) -> list[str]:
    """The spec paths whose layers train (everything under them; the rest is frozen): the classifier
    alone in feature extraction; in fine-tuning everything (``None``), or the last ``N`` entries of
    ``spec.stages`` plus the spec's head (ResNet, N=1: ``layer4`` and ``fc``; 0: the head alone)."""
    if mode == "feature-extract":
        return [spec.classifier]
    if last_n_blocks is None:
        return [""]
    stages = spec.stages
    if isinstance(last_n_blocks, bool) or not isinstance(last_n_blocks, int) or not 0 <= last_n_blocks <= len(stages):
        raise ValueError(
            f"last_n_blocks must be an int from 0 to {len(stages)} ({spec.name} has {len(stages)} stages: "
            f"{[s[0] if len(s) == 1 else f'{s[0]}..{s[-1]}' for s in stages]}), received "
            f"last_n_blocks={last_n_blocks!r}"
        )
    chosen = [path for stage in stages[len(stages) - last_n_blocks :] for path in stage]
    return chosen + [node.name for node in spec.head]


def check_head(num_classes: object, hidden: object = None) -> None:
    """A new classifier's sizes: positive ints (``hidden``: the MLP head's width, or None)."""
    positive_int("num_classes", num_classes)
    if hidden is not None:
        positive_int("hidden", hidden)


def check_rates(lr: float, backbone_lr_factor: float) -> None:
    """The classifier trains at ``lr``, the pretrained layers at ``lr * backbone_lr_factor``."""
    if not lr > 0 or not backbone_lr_factor >= 0:
        raise ValueError(
            f"need lr > 0 and backbone_lr_factor >= 0, received lr={lr!r}, backbone_lr_factor={backbone_lr_factor!r}"
        )


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


# ----------------------------------------------------------------------------- augmentation
FLIP_SAMPLE = 100  # training images per class the flip rule looks at (every other one builds the means)
FLIP_SIDE = 16  # ... resized to this square, grayscale, each standardised (brightness and contrast ignored)
FLIP_LAYOUT_MARGIN = 0.1  # nearest-mean accuracy this far above chance: the classes have a layout a flip can break
FLIP_KEEP = 0.5  # an axis flips when flipped images keep at least this share of that margin


def flip_evidence(root: str | os.PathLike) -> dict[str, float]:
    """How well each training class's mean image tells the classes apart, before and after a flip:
    the nearest-class-mean accuracy of half the sampled images (the other half builds the means),
    as they are (``none``), mirrored left-right (``horizontal``) and upside down (``vertical``),
    and ``chance`` (1 / classes). Reads up to FLIP_SAMPLE images per class at FLIP_SIDE px."""
    import numpy as np
    from PIL import Image

    from cnntune.folders import IMAGE_SUFFIXES

    images, labels = [], []
    classes = sorted(p for p in Path(root, "train").iterdir() if p.is_dir())
    for k, folder in enumerate(classes):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for path in files[:: max(1, len(files) // FLIP_SAMPLE)][:FLIP_SAMPLE]:
            try:
                with Image.open(path) as image:
                    small = image.convert("L").resize((FLIP_SIDE, FLIP_SIDE), Image.BILINEAR)
            except OSError:
                continue
            images.append(np.asarray(small, np.float32))
            labels.append(k)
    x, y = np.stack(images), np.asarray(labels)
    x = (x - x.mean((1, 2), keepdims=True)) / (x.std((1, 2), keepdims=True) + 1e-6)
    build = np.arange(len(y)) % 2 == 0
    present = [k for k in range(len(classes)) if (build & (y == k)).any()]
    means = np.stack([x[build & (y == k)].mean(0) for k in present])
    test, truth = x[~build], y[~build]

    def accuracy(batch):
        distances = ((batch[:, None] - means[None]) ** 2).sum((2, 3))
        return float((np.asarray(present)[distances.argmin(1)] == truth).mean())

    return {
        "none": accuracy(test),
        "horizontal": accuracy(test[:, :, ::-1]),
        "vertical": accuracy(test[:, ::-1]),
        "chance": 1.0 / len(classes),
    }


def has_layout(evidence: dict[str, float]) -> bool:
    """The classes' mean images tell them apart (nearest-mean accuracy more than
    FLIP_LAYOUT_MARGIN above chance): the objects sit in the frame in a way a class shares."""
    return evidence["none"] - evidence["chance"] >= FLIP_LAYOUT_MARGIN


def choose_flip(root: str | os.PathLike, evidence: dict[str, float] | None = None) -> tuple[str, str]:
    """(flip, why): which random flips keep a training image's label, judged from the data. When
    the classes have a layout (:func:`has_layout`: digits, faces), an axis is flipped only if
    flipped images keep FLIP_KEEP of the nearest-mean margin above chance (a mirrored face is still
    a face, an upside-down 7 is no digit); without one (textures), both axes flip, as a plain
    torchvision loop does."""
    ev = evidence or flip_evidence(root)
    if not has_layout(ev):
        return "both", (
            f"class mean images show no layout (nearest-mean accuracy {ev['none']:.2f}, chance {ev['chance']:.2f}): "
            "flipped in both axes"
        )
    margin = ev["none"] - ev["chance"]
    kept = {axis: (ev[axis] - ev["chance"]) / margin for axis in ("horizontal", "vertical")}
    axes = [axis for axis, share in kept.items() if share >= FLIP_KEEP]
    flip = "both" if len(axes) == 2 else axes[0] if axes else "none"
    return flip, (
        f"nearest-class-mean accuracy {ev['none']:.2f} (chance {ev['chance']:.2f}) keeps "
        f"{kept['horizontal']:.0%} mirrored, {kept['vertical']:.0%} upside down (flips an axis at >= {FLIP_KEEP:.0%})"
    )


CROP_UPSCALE = 2.0  # images enlarged this much or more to the input size are cropped


def choose_crop(root: str | os.PathLike, size: int) -> tuple[float, str]:
    """(crop_scale, why): a crop keeping DEFAULT_CROP_SCALE of the area or more when the images are
    enlarged CROP_UPSCALE times or more to the input ``size`` (digits: 8 px to 32): it then cuts at
    most a fifth of a side (1 or 2 of a digit's 8 pixels, whole pixels as torchvision crops), a
    small shift and zoom of the whole object (LeNet-5 on digits, 15 epochs: 0.975 without, 0.986
    with it); none (1) otherwise: at the images' own scale a crop cuts
    and zooms what tells the classes apart (resnet18, 5 epochs: textures 0.74 with it, 0.96 without;
    LFW faces 0.83 with it, 0.97 without)."""
    side = median_short_side(root) or size
    if size >= CROP_UPSCALE * side:
        return DEFAULT_CROP_SCALE, (
            f"images enlarged {size / side:.1f}x ({side} to {size} px): a crop of {DEFAULT_CROP_SCALE:g} of the area "
            "cuts at most a fifth of a side: a small shift and zoom of the whole object"
        )
    return 1.0, (
        f"images enlarged {size / side:.1f}x ({side} to {size} px), under {CROP_UPSCALE:g}x: a crop would cut away "
        "what tells the classes apart"
    )


def resolve_recipe(opts: FinetuneOptions, root: str | os.PathLike) -> tuple[FinetuneOptions, list[tuple[str, str]]]:
    """``opts`` (resolved, see :meth:`FinetuneOptions.resolved`, with its ``size``) with the augmentation's crop and
    flips chosen from the data when not given, and the (choice, why) of each choice made from the
    data: what the run's header prints. Without augmentation nothing is chosen (no crop, no flip)."""
    if not opts.augment:
        return dataclasses.replace(
            opts, flip=opts.flip or "none", crop_scale=1.0 if opts.crop_scale is None else opts.crop_scale
        ), []
    choices = []
    if opts.crop_scale is None:
        scale, why = choose_crop(root, opts.size or DEFAULT_SIZE)
        opts = dataclasses.replace(opts, crop_scale=scale)
        choices.append((f"crop area {scale:g}-1" if scale < 1 else "no crop", why))
    if opts.flip is None:
        flip, why = choose_flip(root)
        opts = dataclasses.replace(opts, flip=flip)
        choices.append((f"flip {flip}", why))
    return opts, choices


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


def check_optimizer_epoch(source: str | os.PathLike, weights_epoch: int, optimizer_epoch: int) -> None:
    """A checkpoint's weights and optimizer state must come from the same epoch: a save cut short
    between the two files leaves them apart, and that folder's best.json is the one to resume."""
    if int(optimizer_epoch) != int(weights_epoch):
        raise ValueError(
            f"{source}: weights and optimizer state are from different epochs ({weights_epoch} vs {optimizer_epoch}); "
            "the save was interrupted, resume from best.json"
        )


def check_resume(info: dict[str, Any], ours: dict[str, Any], classes: list[str]) -> None:
    """A checkpoint only continues the run that wrote it: same architecture, head, mode and classes."""
    diff = {k: (info.get(k), v) for k, v in ours.items() if info.get(k) != v}
    if diff:
        flags = lambda i: " ".join(f"--{k.replace('_', '-')} {pair[i]}" for k, pair in diff.items())  # noqa: E731
        raise ValueError(
            f"cannot resume {info['_dir']}: it was trained with {flags(0)}; received {flags(1)}. Pass the same "
            "options to resume."
        )
    if info.get("classes") != classes:
        raise ValueError(
            f"cannot resume {info['_dir']}: it was trained on classes {info.get('classes')}, the data folder has "
            f"{classes}"
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
