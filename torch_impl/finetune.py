"""Fine-tuning a classic CNN on an image folder: feature extraction or (partial) fine-tuning.

Data: torchvision's ``ImageFolder`` on ``DIR/train`` and ``DIR/val`` (checked first by the core,
``cnntune.folders.check_layout``), resized to ``size`` and normalised with the spec's mean/std; light
augmentation on request. With no data folder the embedded cnntoydata shapes are generated.

In feature-extraction mode the backbone is frozen, so its output for an un-augmented image never
changes: by default it is computed once (the classifier's input: pooled and flattened features)
and the classifier trains on that cache, which makes an epoch cost a few matrix products.

Each epoch is seeded from (seed, epoch), so a run resumed from its checkpoint (weights, optimizer
state, history) continues exactly as the uninterrupted run would have, on the same device.

Example (or ``python -m torch_impl finetune --data shapes --mode fine-tune --weights pretrained.safetensors``)::

    from torch_impl.finetune import finetune
    result = finetune(data="shapes", model="resnet18", mode="fine-tune", epochs=3, weights="pretrained.safetensors")
    result.best_val_acc, result.best_checkpoint
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from tqdm import tqdm  # not tqdm.auto: its asyncio class calls iter() on a DataLoader twice (workers started twice)

import cnnspec
from cnnbase.atomic import atomic_write
from cnntune import loop, policy
from cnntune.folders import is_usable_image
from cnntune.header import Placement
from cnntune.loop import RunSetup
from cnntune.options import AUGMENT_RATIO, DECODED_CACHE_BYTES, DEFAULT_CROP_SCALE, FinetuneOptions
from cnntune.policy import FinetuneResult, build_options, check_optimizer_epoch, should_drop_last, under, use_amp

from . import distributed, pretrained
from .builder import SpecModel
from .models import get_model
from .surgery import make_optimizer, replace_head, set_trainable
from .vision import torchvision
from .weights import WeightsLike, load_into, read_state_dict, save_state_dict

datasets, T = torchvision().datasets, torchvision().transforms  # an ImportError, not a crash, after tensorflow

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


# ----------------------------------------------------------------------------- model


def load_backbone(model: SpecModel, weights: WeightsLike) -> SpecModel:
    """Loads every weight but the classifier's from a checkpoint (any number of classes, plain or
    MLP head); the rest must fit exactly, and a mismatch names the layers involved."""
    state = read_state_dict(weights) if isinstance(weights, (str, os.PathLike)) else dict(weights)
    own = model.state_dict()
    classifier = [model.spec.classifier]
    merged = {k: v for k, v in state.items() if not under(k, classifier)}
    merged.update({k: v for k, v in own.items() if under(k, classifier)})  # the model's own head always fits
    absent_aux = tuple(
        a.name for a in cnnspec.get(model.spec.name).aux_heads if a.name not in {x.name for x in model.spec.aux_heads}
    )
    load_into(model, merged, ignore_prefixes=absent_aux)
    return model


def tuning_model(
    name: str,
    num_classes: int,
    *,
    weights: WeightsLike | None = None,
    hidden: int | None = None,
    model_options: dict | None = None,
) -> SpecModel:
    """The model a fine-tuning run trains: ``name`` with its backbone from ``weights`` (a file, a
    state dict, or published weights such as ``"IMAGENET1K_V1"``; or random init) and a fresh
    classifier, built with the core's options (``cnntune.policy.build_options``: no auxiliary
    heads, what published weights fix, then ``model_options``, e.g. a resumed run's)."""
    options = build_options(name, weights, model_options)
    entry = cnnspec.published.lookup(name, weights)  # None for a file, a state dict or None
    if entry is not None:
        weights = pretrained.download(entry)
    model = get_model(name, init_weights=weights is None, **options)
    if weights is not None:
        load_backbone(model, weights)
    return replace_head(model, num_classes, hidden)


# ----------------------------------------------------------------------------- data


FLIPPERS = {"horizontal": T.RandomHorizontalFlip, "vertical": T.RandomVerticalFlip}


def image_transforms(
    spec: cnnspec.ModelSpec,
    size: int,
    augment: bool,
    mean=None,
    std=None,
    eval_resize: int | None = None,
    crop_scale: float = DEFAULT_CROP_SCALE,
    flip: str = "none",
) -> tuple[Callable, Callable]:
    """(train, val) transforms: resize (augmented: a RandomResizedCrop keeping ``crop_scale`` of the
    area or more when it is below 1, and the ``flip`` axes' random flips), then normalise with
    ``mean``/``std`` (default the spec's; published weights bring their own). ``eval_resize``
    resizes the short side and centre-crops, the published weights' evaluation preprocessing."""
    channels = spec.input_size[0]
    tail = ([T.Grayscale(channels)] if channels == 1 else []) + [
        T.ToTensor(),
        T.Normalize(mean or spec.mean, std or spec.std),
    ]
    resize = [T.Resize((size, size))]
    val = [T.Resize(eval_resize), T.CenterCrop(size)] if eval_resize else resize
    train = resize
    if augment:
        crop = T.RandomResizedCrop(size, scale=(crop_scale, 1.0), ratio=AUGMENT_RATIO)
        train = ([crop] if crop_scale < 1 else resize) + [
            flipper() for axis, flipper in FLIPPERS.items() if flip in (axis, "both")
        ]
    return T.Compose(train + tail), T.Compose(val + tail)


class CachingImageLoader:
    """ImageFolder's ``loader`` (PIL images, decoded, not yet resized), remembering them while they
    fit in ``budget`` bytes: a folder that fits in memory is decoded once, not once per epoch (per
    DataLoader worker process when there are workers; they persist between epochs)."""

    def __init__(self, budget: int = DECODED_CACHE_BYTES) -> None:
        self.budget = budget
        self.store: dict[str, Any] = {}

    def __call__(self, path: str):
        image = self.store.get(path)
        if image is None:
            try:
                image = datasets.folder.default_loader(path)  # RGB, whatever the file's mode (grayscale, RGBA, palette)
            except OSError as err:  # decoding failed past the header check: one line naming the file
                raise ValueError(f"cannot read image {path}: {err}") from None
            nbytes = image.width * image.height * len(image.getbands())
            if nbytes <= self.budget:
                self.store[path] = image
                self.budget -= nbytes
        return image


def image_folders(
    root: str | os.PathLike, spec: cnnspec.ModelSpec, size: int, augment: bool, **transform_options
) -> tuple[datasets.ImageFolder, datasets.ImageFolder]:
    """(train, val) ImageFolders of a folder the core checked (``cnntune.folders.check_layout``),
    with :func:`image_transforms` (``transform_options``: its keyword arguments)."""
    train_tf, val_tf = image_transforms(spec, size, augment, **transform_options)
    # unreadable files are skipped (check_layout named them), the same files as keras_impl's list_images
    return tuple(
        datasets.ImageFolder(os.path.join(root, split), tf, loader=CachingImageLoader(), is_valid_file=is_usable_image)
        for split, tf in (("train", train_tf), ("val", val_tf))
    )


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=torch.float16) if enabled else contextlib.nullcontext()


@torch.no_grad()
def extract_features(
    model: SpecModel, loader: DataLoader, device: torch.device, amp: bool = False, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's inputs (pooled, flattened backbone features) and labels for a whole loader,
    in float32: what a frozen backbone would compute every epoch, computed once."""
    captured: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    hook = model.get_classifier().register_forward_pre_hook(
        lambda module, args: captured.append(args[0].detach().float())
    )
    model.eval()
    try:
        for x, y in tqdm(loader, desc="caching features", leave=False, disable=None if progress else True):
            with _autocast(device, amp):
                model(x.to(device, non_blocking=True))
            labels.append(y.to(device))
    finally:
        hook.remove()
    return torch.cat(captured), torch.cat(labels)


def _tensor_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, epoch_seed: int | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of cached features, shuffled (given the epoch's seed) by the sampler the images
    use, so a cached run sees the same batches as a live one."""
    data = TensorDataset(torch.arange(len(x)))
    sampler = None
    if epoch_seed is not None:
        sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0)
        sampler.set_epoch(epoch_seed)
    index = DataLoader(
        data,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=sampler is not None and should_drop_last(len(x), batch_size),
    )
    return [(x[i.to(x.device)], y[i.to(y.device)]) for (i,) in index]


# ----------------------------------------------------------------------------- loop


def _run_epoch(
    net: nn.Module,
    batches: Batches,
    total: int,
    device: torch.device,
    optimizer: torch.optim.Optimizer | None,
    scaler: torch.amp.GradScaler | None,
    amp: bool,
    desc: str,
    progress: bool,
    before_step: Callable[[], None] | None = None,
    label_smoothing: float = 0.0,
) -> tuple[float, int, int]:
    """(loss sum, correct, samples) over ``batches``; trains when an optimizer is given
    (``before_step`` sets the learning rate of each step; the training loss is label-smoothed)."""
    training = optimizer is not None
    net.train(training)
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(batches, total=total, desc=desc, leave=False, disable=None if progress else True)
    with torch.set_grad_enabled(training):
        for x, y in bar:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device, amp):
                out = net(x)
            logits = (out[0] if isinstance(out, tuple) else out).float()
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing if training else 0.0)
            if training:
                if before_step is not None:
                    before_step()
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
    return loss_sum, correct, seen


# ----------------------------------------------------------------------------- checkpoints


def read_checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
    """A torch fine-tune checkpoint's .json (a run folder, a .json, or its .safetensors)."""
    return policy.read_checkpoint_info(path, TorchAdapter.framework)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[SpecModel, dict[str, Any]]:
    """A fine-tuned model (eval mode, on ``device``) and its checkpoint info (classes, size, history...)."""
    model, info = loop.load_checkpoint(TorchAdapter(), path)
    return model.to(device).eval(), info


# ----------------------------------------------------------------------------- the adapter


class TorchAdapter:
    """torch's part of a fine-tuning run (:class:`cnntune.loop.Adapter`): devices, torchrun,
    DataLoaders, the training step, safetensors and ``torch.save`` files."""

    framework = "torch"
    is_main = True
    weights_suffix = ".safetensors"
    optimizer_suffix = ".optim.pth"

    def setup(self, setup: RunSetup) -> str:
        opts, info = setup.opts, setup.info
        self.opts, self.setup_ = opts, setup
        self.cluster, self.device = distributed.join(distributed.select_device(opts.device))  # torchrun: N processes
        self.is_main = self.cluster.is_main
        self.placement = Placement(str(self.device), self.cluster.world, self.cluster.backend)
        self.wrapped: dict[int, nn.Module] = {}
        self.factors: list[float] = []
        self.amp = use_amp(opts.amp, self.device.type == "cuda", "float16 autocast", "CUDA", self.device)
        torch.manual_seed(opts.seed)
        self.model = set_trainable(loop.starting_model(self, setup), setup.trainable)
        if opts.sync_bn and self.cluster.distributed and opts.mode == "fine-tune":
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)  # batch statistics over all processes
        self.model.to(self.device)
        self.optimizer = make_optimizer(self.model, opts.learning_rate, opts.backbone_lr_factor, opts.weight_decay)
        self.peak_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.scaler = torch.amp.GradScaler("cuda") if self.amp else None
        if info is not None:
            self._restore_optimizer(info)
        return str(self.device)

    def new_model(self, run: RunSetup) -> SpecModel:
        opts = run.opts
        return tuning_model(
            opts.model, len(run.classes), weights=opts.weights, hidden=opts.hidden, model_options=run.model_options
        )

    def checkpoint_model(self, info: dict[str, Any]) -> SpecModel:
        model = tuning_model(
            info["model"], info["num_classes"], hidden=info["hidden"], model_options=info.get("model_options")
        )
        load_into(model, Path(info["_dir"]) / info["weights"])
        return model

    def _restore_optimizer(self, info: dict[str, Any]) -> None:
        state = torch.load(Path(info["_dir"]) / info["optimizer"], map_location=self.device, weights_only=True)
        check_optimizer_epoch(info["_dir"], info["epoch"], state["epoch"])
        # the rates are set before every step from peak_lrs and the schedule
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])

    def prepare(self, cache: bool) -> float | None:
        opts, setup = self.opts, self.setup_
        train_ds, val_ds = image_folders(
            setup.root,
            setup.spec,
            setup.size,
            opts.augment,
            mean=setup.mean,
            std=setup.std,
            eval_resize=setup.eval_resize,
            crop_scale=opts.crop_scale or DEFAULT_CROP_SCALE,
            flip=opts.flip or "none",
        )
        loader_kw = {
            "batch_size": opts.batch_size,
            "num_workers": opts.workers,
            "pin_memory": self.device.type == "cuda",
            "persistent_workers": opts.workers > 0,
        }  # workers keep their decoded images between epochs
        world, rank = self.cluster.world, self.cluster.rank
        # this process's shard, reshuffled every epoch by set_epoch(the epoch's seed): the order
        # depends on (seed, epoch) alone, and N processes with batch B see what one with N*B sees
        self.sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=0)
        self.data: dict[str, Any] = {
            "train_loader": DataLoader(
                train_ds,
                sampler=self.sampler,
                drop_last=should_drop_last(len(self.sampler), opts.batch_size),
                **loader_kw,
            ),
            "val_loader": DataLoader(val_ds, sampler=self._shard(val_ds), **loader_kw),
        }
        if not cache:
            return None
        t0 = time.perf_counter()  # each process caches the features of its own shard
        self.data["train_cache"] = extract_features(
            self.model,
            DataLoader(train_ds, sampler=self._shard(train_ds), **loader_kw),
            self.device,
            self.amp,
            opts.progress,
        )
        self.data["val_cache"] = extract_features(
            self.model, self.data["val_loader"], self.device, self.amp, opts.progress
        )
        return time.perf_counter() - t0

    def _shard(self, dataset) -> DistributedSampler | None:
        """In order; this process's share when there are several (padded to equal shares)."""
        if not self.cluster.distributed:
            return None
        return DistributedSampler(dataset, num_replicas=self.cluster.world, rank=self.cluster.rank, shuffle=False)

    def _net(self, net: nn.Module) -> nn.Module:
        """The module to train: wrapped once in DistributedDataParallel under torchrun."""
        if id(net) not in self.wrapped:
            self.wrapped[id(net)] = distributed.wrap(net, self.cluster, self.device)
        return self.wrapped[id(net)]

    def _means(self, sums: tuple[float, int, int]) -> tuple[float, float]:
        loss_sum, correct, seen = distributed.sum_over_processes(sums, self.cluster, self.device)
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    def epoch(self, epoch: int, seed: int, tag: str) -> dict[str, float]:
        """One training pass and one validation pass, on the cached features or on the images."""
        torch.manual_seed(seed)  # augmentation, dropout: the same on resume
        self.sampler.set_epoch(seed)
        opts, data, amp = self.opts, self.data, self.amp
        t0 = time.perf_counter()
        if "train_cache" in data:  # the classifier alone, on the backbone's features computed once
            net: nn.Module = self.model.get_classifier()
            train = _tensor_batches(*data["train_cache"], opts.batch_size, seed)
            val = _tensor_batches(*data["val_cache"], opts.batch_size)
            amp = False  # the features are float32 already, and the head is a few matrix products
        else:
            net, train, val = self.model, data["train_loader"], data["val_loader"]
        if len(self.factors) != len(train) * opts.epochs + 1:  # the core's schedule, one factor per step
            self.factors = self.setup_.lr_factors(len(train))
        self.step = (epoch - 1) * len(train)  # the schedule's position depends on the epoch alone: resumable

        def before_step() -> None:
            factor = self.factors[min(self.step, len(self.factors) - 1)]
            for group, peak in zip(self.optimizer.param_groups, self.peak_lrs):
                group["lr"] = peak * factor
            self.step += 1

        progress = opts.progress and self.is_main
        train_loss, train_acc = self._means(
            _run_epoch(
                self._net(net),
                train,
                len(train),
                self.device,
                self.optimizer,
                self.scaler,
                amp,
                f"{tag} train",
                progress,
                before_step,
                opts.label_smoothing,
            )
        )
        train_seconds = time.perf_counter() - t0
        val_loss, val_acc = self._means(
            _run_epoch(net, val, len(val), self.device, None, None, amp, f"{tag} val", progress)
        )
        return {
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": time.perf_counter() - t0,
            "train_seconds": train_seconds,
        }

    def save(self, out: Path, stem: str, epoch: int) -> None:
        save_state_dict(self.model.state_dict(), out / f"{stem}{self.weights_suffix}")
        state = {
            "epoch": epoch,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }
        atomic_write(out / f"{stem}{self.optimizer_suffix}", lambda tmp: torch.save(state, tmp))

    def describe(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        if hasattr(self, "cluster"):
            distributed.leave(self.cluster)


def finetune(options: FinetuneOptions | None = None, **overrides: Any) -> FinetuneResult:
    """Trains ``options.model`` on ``options.data`` and returns the history and best accuracy.

    Keyword ``overrides`` are :class:`cnntune.FinetuneOptions` fields (``mode="fine-tune"``,
    ``epochs=3``...). Writes to the run folder: ``best``/``last`` checkpoints (``.safetensors``
    weights, ``.optim.pth`` optimizer state, ``.json`` info), ``history.json`` and ``curves.png``.
    """
    return loop.finetune(TorchAdapter(), options, **overrides)
