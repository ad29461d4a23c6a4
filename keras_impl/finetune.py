"""Fine-tuning a classic CNN on an image folder with Keras: feature extraction or (partial)
fine-tuning. The twin of ``torch_impl.finetune``: same options (``toydata.cli.FinetuneOptions``),
same run folder layout, same history; Keras' own facilities wherever they fit.

Data: ``keras.utils.image_dataset_from_directory`` on ``DIR/train`` and ``DIR/val`` (checked first
by ``toydata.check_layout``; grayscale for one-channel specs), scaled to [0, 1] and normalised with
the spec's mean/std by a ``Rescaling`` layer; with ``augment``, ``RandomFlip`` + ``RandomZoom``
(zoom in to 84% of the side, about torchvision's ``RandomResizedCrop(scale=(0.7, 1))``). With no
data folder the embedded toydata shapes are generated. The pipelines are tf.data (what that
function returns), which every Keras backend's ``fit`` accepts; TensorFlow must be installed.

Feature extraction: the backbone runs in inference mode (wrapped in
:class:`keras_impl.transfer.InferenceOnly`: its BatchNorm and Dropout behave as at prediction
time) and only the classifier trains. Without augmentation its output for an image never
changes, so by default it is computed once with ``predict`` and the classifier trains on the
cached arrays: an epoch then costs a few matrix products.

Each epoch is seeded from (seed, epoch) (shuffle order, augmentation, dropout), so a run resumed
from its checkpoint (weights, optimizer state, history) continues as the uninterrupted run would.

>>> from keras_impl.finetune import finetune
>>> result = finetune(data="shapes", model="resnet18", mode="fine-tune", epochs=3, weights="pretrained.weights.h5")
>>> result.best_val_acc
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import keras
import numpy as np

import cnnspec
from cnnspec import catalog
from toydata import check_layout
from toydata.runfiles import FinetuneResult, atomic_write, check_resume, should_drop_last, plot_history, readable, resolve_size, write_json
from toydata.cli import DEFAULT_SIZE, FinetuneOptions

from . import pretrained
from .models import get_model
from .transfer import (InferenceOnly, classifier_layers, features_model, freeze_backbone, head_model, make_optimizer,
                       replace_head, select_device, unfreeze)

CHECKPOINT_FORMAT = 1
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
ZOOM_IN = 0.16  # RandomZoom height factor: keep 84-100% of the side, ~70-100% of the area


# ----------------------------------------------------------------------------- model


def _check_weights_file(path: Union[str, os.PathLike], model: str) -> Path:
    """A Keras ``.weights.h5``; a torch checkpoint gets the command that converts it."""
    if catalog.is_weights_name(path):  # published weights: converted once, cached under $KERAS_HOME
        return pretrained.ensure_converted(cnnspec.published_weights(model, path))
    p = Path(path)
    if p.suffix in TORCH_SUFFIXES:
        raise ValueError(f"{p} is a torch checkpoint; keras_impl takes Keras .weights.h5 files. Convert it first: "
                         f"python -m parity convert --model {model} {p} {p.with_name(p.stem + '.weights.h5')}")
    if not p.name.endswith(".weights.h5"):
        raise ValueError(f"weights must be a Keras .weights.h5 file (model.save_weights), received {p}")
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {p}")
    return p


def load_backbone(model: keras.Model, weights: Union[str, os.PathLike], name: Optional[str] = None) -> keras.Model:
    """Loads every weight but the classifier's from a ``.weights.h5`` of the same architecture
    (any number of classes, plain or MLP head: a fine-tuned checkpoint or a converted torchvision
    file). Keras matches layers by kind and order, so the classifier, last in that order, is
    skipped and everything before it must fit exactly."""
    path = _check_weights_file(weights, name or model.name)
    try:
        model.load_weights(str(path), objects_to_skip=classifier_layers(model))
    except (ValueError, KeyError) as err:
        raise ValueError(f"{path} does not fit the backbone of {model.name}: {err}") from None
    return model


def build_model(name: str, num_classes: int, *, weights: Optional[Union[str, os.PathLike]] = None, hidden: Optional[int] = None,
                size: Optional[int] = None, model_options: Optional[dict] = None) -> keras.Model:
    """``name`` (inputs ``size`` x ``size``) with its backbone from ``weights`` (or random init) and a
    fresh classifier that outputs logits. GoogLeNet is built without auxiliary heads."""
    spec = cnnspec.get(name)
    extra = {"aux_logits": False} if "aux_logits" in cnnspec.options(name) else {}
    extra.update(catalog.finetune_model_options(name, weights) if weights is not None else {})
    extra.update(model_options or {})
    size = resolve_size(spec, size)
    model = get_model(name, input_shape=(size, size, spec.input_size[0]), classifier_activation=None, **extra)
    if weights is not None:
        load_backbone(model, weights, name)
    return replace_head(model, num_classes, hidden)


# ----------------------------------------------------------------------------- data


def _normalise(spec: cnnspec.ModelSpec) -> keras.layers.Layer:
    """(x / 255 - mean) / std as one Rescaling layer (runs inside tf.data on every backend)."""
    std = np.asarray(spec.std, dtype="float32")
    mean = np.asarray(spec.mean, dtype="float32")
    return keras.layers.Rescaling(scale=list(1.0 / (255.0 * std)), offset=list(-mean / std), name="normalise")


def _augmentation(seed: int) -> Callable:
    """Horizontal flip and a random zoom-in, seeded: the same images for the same (seed, epoch).
    Plain layers (no Sequential around them): each runs inside tf.data on every Keras backend."""
    steps = [keras.layers.RandomFlip("horizontal", seed=seed), keras.layers.RandomZoom((-ZOOM_IN, 0.0), seed=seed + 1)]

    def augment(x):
        for layer in steps:
            x = layer(x, training=True)
        return x

    return augment


def image_dataset(folder: Union[str, os.PathLike], spec: cnnspec.ModelSpec, size: int, classes: List[str], batch_size: int, *,
                  shuffle_seed: Optional[int] = None, augment: bool = False, drop_last: bool = False):
    """(tf.data batches of normalised NHWC images and int labels, the file paths in dataset order
    when unshuffled). ``shuffle_seed`` shuffles (the file list, before any image is decoded)."""
    ds = keras.utils.image_dataset_from_directory(
        folder, labels="inferred", label_mode="int", class_names=classes, color_mode="grayscale" if spec.input_size[0] == 1 else "rgb",
        batch_size=None, image_size=(size, size), shuffle=shuffle_seed is not None, seed=shuffle_seed, verbose=False)
    paths = list(ds.file_paths)
    ds = ds.batch(batch_size, drop_remainder=drop_last and should_drop_last(len(paths), batch_size))
    if augment:
        aug = _augmentation(shuffle_seed or 0)
        ds = ds.map(lambda x, y: (aug(x), y))  # sequential: the random draws keep their order
    norm = _normalise(spec)
    ds = ds.map(lambda x, y: (norm(x), y), num_parallel_calls=-1).prefetch(-1)  # -1: tf.data.AUTOTUNE
    return ds, paths


def _labels(paths: List[str], classes: List[str]) -> np.ndarray:
    return np.array([classes.index(Path(p).parent.name) for p in paths], dtype="int32")


def extract_features(model: keras.Model, datasets: Sequence, progress: bool = False) -> List[np.ndarray]:
    """The classifier's inputs (pooled, flattened backbone features) for each dataset, in float32,
    computed in inference mode: what a frozen backbone would compute every epoch."""
    features = features_model(model)  # one model, one traced predict step for all datasets
    return [np.asarray(features.predict(data, verbose=1 if progress else 0), dtype="float32") for data in datasets]


# ----------------------------------------------------------------------------- training model


def _training_model(model: keras.Model, opts: FinetuneOptions, cached: bool) -> keras.Model:
    """What ``fit`` trains: the head alone on cached features; the frozen backbone in inference
    mode plus the head (feature extraction); or the model itself (fine-tuning). The layers are
    ``model``'s own, so ``model`` holds the trained weights; a new functional wrapper keeps the
    optimizer out of ``model`` (its checkpoints hold weights only)."""
    if cached:
        return head_model(model)
    if opts.mode == "feature-extract":
        inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="images")
        x = InferenceOnly(features_model(model), name="frozen_backbone")(inputs)
        for layer in classifier_layers(model):
            x = layer(x)
        return keras.Model(inputs, x, name=f"{model.name}_feature_extract")
    return keras.Model(model.inputs, model.outputs, name=f"{model.name}_fine_tune")


class _EpochClock(keras.callbacks.Callback):
    """Times the training part of an epoch, and stops ``fit`` after one epoch: the loop calls
    ``fit(initial_epoch=e - 1, epochs=total)`` once per epoch (each with its own seeded data), so
    Keras' progress bar still reads "Epoch e/total"."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        self.train_seconds: Optional[float] = None

    def on_test_begin(self, logs=None):
        if self.train_seconds is None:
            self.train_seconds = time.perf_counter() - self.start

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start
        self.model.stop_training = True


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % (2**31 - 1)


# ----------------------------------------------------------------------------- files


def resolve_checkpoint(path: Union[str, os.PathLike]) -> Path:
    """The checkpoint .json for a run folder (its last.json), a .json, or a .weights.h5 beside one."""
    p = Path(path)
    if p.is_dir():
        json_path = p / "last.json"
    elif p.suffix == ".json":
        json_path = p
    else:
        json_path = p.with_name(p.name.removesuffix(".weights.h5").removesuffix(".h5") + ".json")
    if not json_path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: expected a run folder holding last.json, a checkpoint .json, or a .weights.h5 with its .json beside it")
    return json_path


def read_checkpoint_info(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    json_path = resolve_checkpoint(path)
    try:
        info = json.loads(json_path.read_text())
    except ValueError as err:
        raise ValueError(f"{json_path} is not a readable checkpoint: {err}") from None
    if not isinstance(info, dict) or info.get("format") != CHECKPOINT_FORMAT or info.get("framework") != "keras":
        raise ValueError(f"{json_path} is not a keras_impl.finetune checkpoint (format {CHECKPOINT_FORMAT}); "
                         "a torch_impl run resumes with python -m torch_impl finetune --resume")
    info["_dir"] = str(json_path.parent)
    return info


def load_checkpoint(path: Union[str, os.PathLike]) -> Tuple[keras.Model, Dict[str, Any]]:
    """A fine-tuned model (logits output) and its checkpoint info (classes, size, history...)."""
    info = read_checkpoint_info(path)
    model = build_model(info["model"], info["num_classes"], hidden=info["hidden"], size=info["size"])
    model.load_weights(str(Path(info["_dir"]) / info["weights"]))
    return model, info


def _save_checkpoint(out: Path, stem: str, model: keras.Model, optimizer: keras.optimizers.Optimizer, info: Dict[str, Any]) -> Path:
    """Weights (.weights.h5), optimizer state (.optim.npz), then the .json that names them
    (written last: it is the commit)."""
    atomic_write(out / f"{stem}.weights.h5", lambda tmp: model.save_weights(tmp, overwrite=True), suffix=".weights.h5")
    state: Dict[str, Any] = {}
    optimizer.save_own_variables(state)  # Keras' own (de)serialisation: {"0": array, "1": ...}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, __epoch__=np.int64(info["epoch"]), **state)

    atomic_write(out / f"{stem}.optim.npz", write)
    return write_json(out / f"{stem}.json", {**info, "weights": f"{stem}.weights.h5", "optimizer": f"{stem}.optim.npz"})


def _load_optimizer(optimizer: keras.optimizers.Optimizer, variables: List, path: Path, epoch: int, lr: float) -> None:
    """Restores Adam's moments and step count; the learning rate asked for now wins."""
    optimizer.build(variables)
    with np.load(path) as saved:
        if int(saved["__epoch__"]) != epoch:
            raise ValueError(f"{path.parent}: weights and optimizer state are from different epochs ({epoch} vs {int(saved['__epoch__'])}); "
                             "the save was interrupted, resume from best.json")
        state = {k: saved[k] for k in saved.files if k != "__epoch__"}
    if len(state) != len(optimizer.variables):
        raise ValueError(f"{path}: optimizer state has {len(state)} variables, this run's optimizer has {len(optimizer.variables)}")
    optimizer.load_own_variables(state)
    getattr(optimizer, "inner_optimizer", optimizer).learning_rate = lr


def _summary(opts: FinetuneOptions, classes: List[str], device: str, root: Path, best_acc: float, best_epoch: int,
             cache_seconds: Optional[float], history: List[Dict[str, float]]) -> Dict[str, Any]:
    """The content of history.json: the run's curves with what is needed to read them."""
    return {"model": opts.model, "mode": opts.mode, "classes": classes, "device": device, "framework": "keras", "backend": keras.backend.backend(),
            "data": str(root), "best_val_acc": best_acc, "best_epoch": best_epoch, "cache_seconds": cache_seconds, "epochs": history}


@contextlib.contextmanager
def _dtype_policy(name: Optional[str]) -> Iterator[None]:
    """Sets Keras' global dtype policy for the layers built inside, and restores it after."""
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# ----------------------------------------------------------------------------- entry point


def finetune(options: Optional[FinetuneOptions] = None, **overrides: Any) -> FinetuneResult:
    """Trains ``options.model`` on ``options.data`` and returns the history and best accuracy.

    Keyword ``overrides`` are :class:`toydata.cli.FinetuneOptions` fields (``mode="fine-tune"``,
    ``epochs=3``...); ``workers`` is unused (tf.data parallelises by itself). Writes to the run
    folder: ``best``/``last`` checkpoints (``.weights.h5`` weights, ``.optim.npz`` optimizer state,
    ``.json`` info), ``history.json`` and ``curves.png``.
    """
    opts = dataclasses.replace(options or FinetuneOptions(), **overrides)
    spec = cnnspec.get(opts.model)
    size = resolve_size(spec, opts.size)
    root = opts.data_root()
    classes = check_layout(root)
    info = read_checkpoint_info(opts.resume) if opts.resume else None
    arch = {"model": opts.model, "mode": opts.mode, "hidden": opts.hidden, "last_n_blocks": opts.last_n_blocks, "size": size}
    if info is not None:
        check_resume(info, arch, classes)
    # options the published weights need (GoogLeNet's transform_input); a resumed run keeps its own
    arch["model_options"] = info.get("model_options", {}) if info else catalog.finetune_model_options(opts.model, opts.weights)
    if opts.weights is not None and info is None:
        _check_weights_file(opts.weights, opts.model)
    device = select_device(opts.device)
    amp = opts.amp and device.is_gpu
    if opts.amp and not amp:
        warnings.warn(f"amp (mixed_float16) is used on a GPU only; running in float32 on {device}", stacklevel=2)
    if opts.weights is None and info is None and opts.mode == "feature-extract":
        warnings.warn("feature extraction without weights: the classifier trains on a randomly initialised backbone", stacklevel=2)
    out = Path(opts.out or (info["_dir"] if info else f"runs/{opts.model}-{opts.mode}"))

    with keras.device(device.name), _dtype_policy("mixed_float16" if amp else None):
        keras.utils.set_random_seed(opts.seed)
        model = build_model(opts.model, len(classes), weights=None if info else opts.weights, hidden=opts.hidden, size=size,
                            model_options=arch["model_options"])
        if info is not None:
            model.load_weights(str(Path(info["_dir"]) / info["weights"]))
        freeze_backbone(model) if opts.mode == "feature-extract" else unfreeze(model, opts.last_n_blocks)
        train_model = _training_model(model, opts, opts.use_cache)
        optimizer = make_optimizer(model, opts.learning_rate, opts.backbone_lr_factor)
        train_model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        history: List[Dict[str, float]] = []
        start, best_acc, best_epoch = 0, -1.0, 0
        if info is not None:
            _load_optimizer(train_model.optimizer, train_model.trainable_variables, Path(info["_dir"]) / info["optimizer"], info["epoch"], opts.learning_rate)
            history, start, best_acc, best_epoch = list(info["history"]), info["epoch"], info["best_val_acc"], info["best_epoch"]

        val_ds, val_paths = image_dataset(os.path.join(root, "val"), spec, size, classes, opts.batch_size)
        cache_seconds = None
        if opts.use_cache and start < opts.epochs:
            t0 = time.perf_counter()
            train_plain, train_paths = image_dataset(os.path.join(root, "train"), spec, size, classes, opts.batch_size)
            train_x, val_x = extract_features(model, [train_plain, val_ds], opts.progress)
            train_cache, val_cache = (train_x, _labels(train_paths, classes)), (val_x, _labels(val_paths, classes))
            cache_seconds = time.perf_counter() - t0

        epoch_times: List[float] = []
        names = {"history": out / "history.json", "plot": out / "curves.png"}
        base = {"format": CHECKPOINT_FORMAT, "framework": "keras", "backend": keras.backend.backend(), **arch,
                "num_classes": len(classes), "classes": classes, "options": opts.to_dict()}
        for epoch in range(start + 1, opts.epochs + 1):
            seed = _epoch_seed(opts.seed, epoch)
            keras.utils.set_random_seed(seed)  # shuffle, augmentation, dropout: the same on resume
            clock = _EpochClock()
            fit = dict(epochs=opts.epochs, initial_epoch=epoch - 1, callbacks=[clock], verbose=1 if opts.progress else 0)
            if opts.use_cache:
                x, y = train_cache
                order = np.random.default_rng(seed).permutation(len(y))
                if should_drop_last(len(y), opts.batch_size):
                    order = order[:-1]
                logs = train_model.fit(x[order], y[order], batch_size=opts.batch_size, shuffle=False, validation_data=val_cache,
                                       validation_batch_size=opts.batch_size, **fit).history
            else:
                train_ds, _ = image_dataset(os.path.join(root, "train"), spec, size, classes, opts.batch_size, shuffle_seed=seed,
                                            augment=opts.augment, drop_last=True)
                logs = train_model.fit(train_ds, validation_data=val_ds, shuffle=False, **fit).history
            epoch_times.append(clock.seconds)
            row = {"epoch": epoch, "train_loss": float(logs["loss"][-1]), "train_acc": float(logs["accuracy"][-1]),
                   "val_loss": float(logs["val_loss"][-1]), "val_acc": float(logs["val_accuracy"][-1]),
                   "seconds": clock.seconds, "train_seconds": clock.train_seconds}
            history.append(row)
            improved = row["val_acc"] > best_acc
            if improved:
                best_acc, best_epoch = row["val_acc"], epoch
            ckpt = {**base, "epoch": epoch, "best_val_acc": best_acc, "best_epoch": best_epoch, "history": history}
            _save_checkpoint(out, "last", model, train_model.optimizer, ckpt)
            if improved:
                _save_checkpoint(out, "best", model, train_model.optimizer, ckpt)
                if opts.progress:
                    print(f"epoch {epoch}: best val accuracy so far {best_acc:.4f}, saved {out / 'best.weights.h5'}")
            write_json(names["history"], _summary(opts, classes, str(device), root, best_acc, best_epoch, cache_seconds, history))

    write_json(names["history"], _summary(opts, classes, str(device), root, best_acc, best_epoch, cache_seconds, history))
    if history:
        plot_history(history, names["plot"], title=f"{opts.model} {opts.mode} on {Path(root).name} (keras, {keras.backend.backend()})")
    return FinetuneResult(history=history, best_val_acc=best_acc, best_epoch=best_epoch, epoch_times=epoch_times,
                          cache_seconds=cache_seconds, classes=classes, device=str(device), out_dir=out,
                          best_checkpoint=out / "best.weights.h5", last_checkpoint=out / "last.weights.h5",
                          history_path=names["history"], plot_path=names["plot"])
