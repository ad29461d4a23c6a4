"""The fine-tuning loop, written once: options -> run folder (best/last checkpoints, history.json,
curves.png), resumable. Each framework supplies an :class:`Adapter` (plain methods on one object:
build the model, the data, one epoch, save); everything else, which layers train, the learning
rates of every step, the order of the epochs, their seeds, what a checkpoint holds and when it is
written, is decided here and in :mod:`.policy`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Protocol

import cnnspec
from cnnbase.atomic import atomic_write, write_json
from cnnspec import published
from cnntune.folders import check_layout

from . import header
from .options import FinetuneOptions
from .policy import (
    CHECKPOINT_FORMAT,
    FinetuneResult,
    check_resume,
    choose_size,
    epoch_seed,
    lr_factors,
    plot_history,
    read_checkpoint_info,
    resolve_recipe,
    resolve_size,
    trained_paths,
    warmup_steps,
)


@dataclasses.dataclass
class RunSetup:
    """What an adapter needs to build a run: the options and what the core derived from them."""

    opts: FinetuneOptions
    spec: cnnspec.ModelSpec
    size: int
    root: Path
    classes: list[str]
    model_options: dict[str, Any]  # what published weights need (GoogLeNet's transform_input)
    info: dict[str, Any] | None  # the checkpoint being resumed (its files are in info["_dir"])
    eval_transform: cnnspec.EvalTransform | None = (
        None  # the published weights' preprocessing (mean/std, resize/crop ratio)
    )
    trainable: list[str] = dataclasses.field(default_factory=lambda: [""])  # spec paths that train (policy)
    # (choice, why) of each default the core derived from the data: printed in the run's header
    choices: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def mean(self):
        return self.eval_transform.mean if self.eval_transform else self.spec.mean

    @property
    def std(self):
        return self.eval_transform.std if self.eval_transform else self.spec.std

    @property
    def eval_resize(self) -> int | None:
        """Validation images: short side resized to this, then centre-cropped to ``size`` (the
        published weights' evaluation ratio, 256/224 or 232/224); None: resized to size x size."""
        if self.eval_transform is None:
            return None
        return int(round(self.size * self.eval_transform.resize_size / self.eval_transform.crop_size))

    def lr_factors(self, steps_per_epoch: int) -> list[float]:
        """The learning rate of every optimizer step of the whole run (``0..total``), as a fraction
        of each group's peak: the one schedule both adapters step with (:func:`.policy.lr_factor`)."""
        total = steps_per_epoch * self.opts.epochs
        return lr_factors(total, warmup_steps(self.opts.warmup_epochs, steps_per_epoch, total), self.opts.schedule)


class Adapter(Protocol):
    """One framework's part of a fine-tuning run."""

    framework: str  # "torch" | "keras": recorded in every checkpoint
    is_main: bool  # the process that writes files and prints (rank 0 of a distributed run; set by setup)
    placement: header.Placement  # device, world size and backend (set by setup): the run's header says them
    weights_suffix: str  # ".safetensors" | ".weights.h5"
    optimizer_suffix: str  # ".optim.pth" | ".optim.npz"

    def setup(self, run: RunSetup) -> str:
        """Builds the model (from published weights, a file, or the resumed checkpoint), trains
        ``run.trainable`` only, makes the optimizer (restoring its state when resuming, checked with
        ``policy.check_optimizer_epoch``); returns the device name."""

    def prepare(self, cache: bool) -> float | None:
        """Builds the data pipelines; with ``cache``, computes the frozen backbone's features once
        and returns the seconds it took."""

    def epoch(self, epoch: int, seed: int, tag: str) -> dict[str, float]:
        """One training and one validation pass: train_loss, train_acc, val_loss, val_acc,
        seconds, train_seconds."""

    def save(self, out: Path, stem: str, epoch: int) -> None:
        """Writes ``out/<stem><weights_suffix>`` and ``out/<stem><optimizer_suffix>`` atomically."""

    def new_model(self, run: RunSetup) -> Any:
        """A model with a new classifier for ``run.classes``, its backbone from ``run.opts.weights``
        (published weights or a file) or random init; built the way ``run.model_options`` says."""

    def checkpoint_model(self, info: dict[str, Any]) -> Any:
        """The fine-tuned model a checkpoint's info describes, with its weights loaded."""

    def describe(self) -> dict[str, Any]:
        """Extra facts for the checkpoint and history (the Keras backend, ...)."""

    def close(self) -> None:
        """Leaves whatever scope ``setup`` entered."""


def finetune(adapter: Adapter, options: FinetuneOptions | None = None, **overrides: Any) -> FinetuneResult:
    """Trains ``options.model`` on ``options.data`` through ``adapter``; see :class:`FinetuneOptions`."""
    opts = dataclasses.replace(options or FinetuneOptions(), **overrides)
    spec = cnnspec.get(opts.model, **cnnspec.options_for_size(opts.model, opts.size, {}))
    if opts.size is not None or spec.fixed_input:
        resolve_size(spec, opts.size)  # a size the model cannot take fails before the data is read
    root = opts.data_root()
    classes = check_layout(root)
    info = read_checkpoint_info(opts.resume, adapter.framework) if opts.resume else None
    recorded = info.get("options", {}) if info else {}
    opts = opts.resolved(recorded)  # the defaults that depend on --weights, or the resumed run's choices
    weights = opts.weights or recorded.get("weights")
    entry = cnnspec.published_weights(opts.model, weights) if published.is_weights_name(weights) else None
    # options the published weights need (GoogLeNet's transform_input, ViT SWAG's image_size) or the
    # asked size builds (ViT from scratch: --size 32 sets image_size); a resumed run keeps its own
    model_options = (
        info.get("model_options", {})
        if info
        else cnnspec.options_for_size(opts.model, opts.size, published.finetune_model_options(opts.model, opts.weights))
    )
    spec = cnnspec.get(opts.model, **model_options)
    size = choose_size(
        spec,
        opts.size if opts.size is not None else (info or {}).get("size"),
        root,
        entry.transforms.crop_size if entry else None,
    )
    choices = header.size_choice(opts.size, spec.fixed_input, info is not None, size)
    opts = dataclasses.replace(opts, size=size)
    opts, recipe = resolve_recipe(opts, root)  # the flips, from the data unless given
    choices = [*choices, *recipe]
    arch = {
        "model": opts.model,
        "mode": opts.mode,
        "hidden": opts.hidden,
        "last_n_blocks": opts.last_n_blocks,
        "size": size,
    }
    if info is not None:
        check_resume(info, arch, classes)
    if opts.weights is None and info is None and opts.mode == "feature-extract":
        warnings.warn(
            "feature extraction without weights: the classifier trains on a randomly initialised backbone", stacklevel=3
        )
    out = Path(opts.out or (info["_dir"] if info else f"runs/{opts.model}-{opts.mode}"))
    trainable = trained_paths(spec, opts.mode, opts.last_n_blocks)
    try:
        run = RunSetup(
            opts,
            spec,
            size,
            Path(root),
            classes,
            model_options,
            info,
            entry.transforms if entry else None,
            trainable,
            choices,
        )
        device = adapter.setup(run)
        head = header.run_header(
            adapter.framework,
            opts,
            adapter.placement,
            info["epoch"] if info else None,
            run.choices,
            adapter.describe().get("backend"),
        )
        if adapter.is_main:  # before the data is read or cached: what runs, where, with which recipe
            print(head.line(), flush=True)
        return _epochs(adapter, opts, arch, model_options, classes, Path(root), device, info, out, head)
    finally:
        adapter.close()


def starting_model(adapter: Adapter, run: RunSetup) -> Any:
    """The model a run starts from (adapters call this in ``setup``, seeded, inside their device
    scope): the resumed checkpoint's, else a new one."""
    return adapter.checkpoint_model(run.info) if run.info is not None else adapter.new_model(run)


def load_checkpoint(adapter: Adapter, path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """A fine-tuned model and its checkpoint info (classes, size, history...), from a run folder, a
    checkpoint .json or its weights file; a checkpoint of the other framework names its command."""
    info = read_checkpoint_info(path, adapter.framework)
    return adapter.checkpoint_model(info), info


def _epochs(
    adapter: Adapter,
    opts: FinetuneOptions,
    arch: dict[str, Any],
    model_options: dict[str, Any],
    classes: list[str],
    root: Path,
    device: str,
    info: dict[str, Any] | None,
    out: Path,
    head: header.RunHeader,
) -> FinetuneResult:
    history: list[dict[str, float]] = []
    start, best_acc, best_epoch = 0, -1.0, 0
    if info is not None:
        history, start, best_acc, best_epoch = (
            list(info["history"]),
            info["epoch"],
            info["best_val_acc"],
            info["best_epoch"],
        )
        if adapter.is_main:
            _carry_best(adapter, Path(info["_dir"]), out)
    cache_seconds = adapter.prepare(opts.use_cache and start < opts.epochs)
    base = {
        "format": CHECKPOINT_FORMAT,
        "framework": adapter.framework,
        **adapter.describe(),
        **arch,
        "model_options": model_options,
        "num_classes": len(classes),
        "classes": classes,
        "options": opts.to_dict(),
    }
    summary = {
        "model": opts.model,
        "mode": opts.mode,
        "classes": classes,
        "device": device,
        "framework": adapter.framework,
        **adapter.describe(),
        "data": str(root),
        "cache_seconds": cache_seconds,
        "run": head.to_dict(),  # this call's header: model, batch, placement, recipe, choices
    }
    history_path, plot_path = out / "history.json", out / "curves.png"
    epoch_times: list[float] = []
    last = opts.epochs if opts.stop_after is None else min(opts.epochs, start + opts.stop_after)
    for epoch in range(start + 1, last + 1):
        stats = adapter.epoch(epoch, epoch_seed(opts.seed, epoch), f"epoch {epoch}/{opts.epochs}")
        epoch_times.append(stats["seconds"])
        if not math.isfinite(stats["train_loss"]):  # the checkpoints of the epochs before stay as they were
            raise ValueError(
                f"training diverged in epoch {epoch}: the train loss is {stats['train_loss']}; "
                f"a lower --lr (this run's peak: {opts.lr if opts.lr is not None else 'the default'}) usually helps"
            )
        history.append({"epoch": epoch, **stats})
        improved = stats["val_acc"] > best_acc
        if improved:
            best_acc, best_epoch = stats["val_acc"], epoch
        checkpoint = {**base, "epoch": epoch, "best_val_acc": best_acc, "best_epoch": best_epoch, "history": history}
        if not adapter.is_main:  # the other processes of a distributed run only train
            continue
        _save(adapter, out, "last", checkpoint)
        if improved:
            _save(adapter, out, "best", checkpoint)
        write_json(history_path, {**summary, "best_val_acc": best_acc, "best_epoch": best_epoch, "epochs": history})
        if opts.progress:
            print(
                f"epoch {epoch}/{opts.epochs}: train loss {stats['train_loss']:.4f} acc {stats['train_acc']:.4f}, "
                f"val loss {stats['val_loss']:.4f} acc {stats['val_acc']:.4f}, {stats['seconds']:.1f}s"
                + ("  (best so far)" if improved else ""),
                flush=True,
            )
    if adapter.is_main:
        write_json(history_path, {**summary, "best_val_acc": best_acc, "best_epoch": best_epoch, "epochs": history})
    if history and adapter.is_main:
        backend = adapter.describe().get("backend")
        plot_history(
            history,
            plot_path,
            title=f"{opts.model} {opts.mode} on {root.name} ({adapter.framework}{', ' + backend if backend else ''})",
        )
    return FinetuneResult(
        history=history,
        best_val_acc=best_acc,
        best_epoch=best_epoch,
        epoch_times=epoch_times,
        cache_seconds=cache_seconds,
        classes=classes,
        device=device,
        out_dir=out,
        best_checkpoint=out / f"best{adapter.weights_suffix}",
        last_checkpoint=out / f"last{adapter.weights_suffix}",
        history_path=history_path,
        plot_path=plot_path,
        is_main=adapter.is_main,
    )


def _save(adapter: Adapter, out: Path, stem: str, checkpoint: dict[str, Any]) -> Path:
    """Weights and optimizer state, then the .json that names them: written last, it is the commit."""
    adapter.save(out, stem, checkpoint["epoch"])
    return write_json(
        out / f"{stem}.json",
        {**checkpoint, "weights": f"{stem}{adapter.weights_suffix}", "optimizer": f"{stem}{adapter.optimizer_suffix}"},
    )


def _carry_best(adapter: Adapter, source: Path, out: Path) -> None:
    """Continuing into another folder: the best checkpoint so far comes along."""
    if out.resolve() == source.resolve():
        return
    for suffix in (adapter.weights_suffix, adapter.optimizer_suffix, ".json"):
        if (source / f"best{suffix}").is_file():
            atomic_write(
                out / f"best{suffix}",
                lambda tmp, src=source / f"best{suffix}": shutil.copyfile(src, tmp),
                suffix=suffix,
            )
