"""Fine-tuning a classic CNN on an image folder with Keras: feature extraction or (partial)
fine-tuning. The twin of ``torch_impl.finetune``: same options (``cnntune.FinetuneOptions``),
same run folder layout, same history; Keras' own facilities wherever they fit.

Data: :class:`keras_impl.data.ImageFolderDataset` (a ``keras.utils.PyDataset``: PIL decoding,
NumPy, no TensorFlow, so it runs on every backend) over ``DIR/train`` and ``DIR/val`` (checked
first by the core, ``cnntune.folders.check_layout``; grayscale for one-channel specs), normalised with the spec's
mean/std; decoded images stay in memory between epochs; with ``augment``, a random zoom-in crop
and a horizontal flip. With no data folder the embedded cnntoydata shapes are generated.

Feature extraction: the backbone runs in inference mode (wrapped in
:class:`keras_impl.surgery.InferenceOnly`: its BatchNorm and Dropout behave as at prediction
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
import os
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

import cnnspec
from cnnbase.atomic import atomic_write
from cnnbase.weight_files import TORCH_SUFFIXES
from cnnspec import published
from cnntune import loop, policy
from cnntune.header import Placement
from cnntune.loop import RunSetup
from cnntune.options import DEFAULT_CROP_SCALE, FinetuneOptions
from cnntune.policy import (
    FinetuneResult,
    build_options,
    check_optimizer_epoch,
    resolve_size,
    should_drop_last,
    steps_per_epoch,
    use_amp,
)

from . import pretrained
from .data import DecodedImages, ImageFolderDataset, list_images
from .distribute import data_parallel, select_device
from .models import get_model
from .optimizers import TabulatedSchedule
from .surgery import (
    InferenceOnly,
    classifier_layers,
    features_model,
    head_model,
    make_optimizer,
    replace_head,
    set_trainable,
)
from .weights import keras_load_error

# ----------------------------------------------------------------------------- model


def _check_weights_file(path: str | os.PathLike, model: str) -> Path:
    """A Keras ``.weights.h5``; a torch checkpoint gets the command that converts it."""
    if published.is_weights_name(path):  # published weights: converted once, cached under $KERAS_HOME
        return pretrained.ensure_converted(cnnspec.published_weights(model, path))
    p = Path(path)
    if p.suffix in TORCH_SUFFIXES:
        raise ValueError(
            f"{p} is a torch checkpoint; keras_impl takes Keras .weights.h5 files. Convert it first: "
            f"python -m parity convert --model {model} {p} {p.with_name(p.stem + '.weights.h5')}"
        )
    if not p.name.endswith(".weights.h5"):
        raise ValueError(f"weights must be a Keras .weights.h5 file (model.save_weights), received {p}")
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {p}")
    return p


def load_backbone(model: keras.Model, weights: str | os.PathLike, name: str | None = None) -> keras.Model:
    """Loads every weight but the classifier's from a ``.weights.h5`` of the same architecture
    (any number of classes, plain or MLP head: a fine-tuned checkpoint or a converted torchvision
    file). Keras matches layers by kind and order, so the classifier, last in that order, is
    skipped and everything before it must fit exactly."""
    path = _check_weights_file(weights, name or model.name)
    try:
        model.load_weights(str(path), objects_to_skip=classifier_layers(model))
    except (ValueError, KeyError) as err:
        raise ValueError(f"{path} does not fit the backbone of {model.name}: {keras_load_error(err)}") from None
    except OSError as err:  # h5py: not an HDF5 file, truncated
        raise ValueError(f"{path} is not a readable Keras .weights.h5 file: {err}") from None
    return model


def tuning_model(
    name: str,
    num_classes: int,
    *,
    weights: str | os.PathLike | None = None,
    hidden: int | None = None,
    size: int | None = None,
    model_options: dict | None = None,
) -> keras.Model:
    """The model a fine-tuning run trains: ``name`` (inputs ``size`` x ``size``) with its backbone
    from ``weights`` (or random init) and a fresh classifier that outputs logits, built with the
    core's options (``cnntune.policy.build_options``: no auxiliary heads, what published weights
    fix, then ``model_options``)."""
    options = build_options(name, weights, model_options)
    spec = cnnspec.get(name, **options)
    size = resolve_size(spec, size)
    model = get_model(name, input_shape=(size, size, spec.input_size[0]), classifier_activation=None, **options)
    if weights is not None:
        load_backbone(model, weights, name)
    return replace_head(model, num_classes, hidden)


# ----------------------------------------------------------------------------- data


def image_dataset(
    folder: str | os.PathLike,
    spec: cnnspec.ModelSpec,
    size: int,
    classes: list[str],
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    augment: bool = False,
    drop_last: bool = False,
    images: DecodedImages | None = None,
    workers: int = 0,
    mean=None,
    std=None,
    crop_scale: float = DEFAULT_CROP_SCALE,
    flip: str = "none",
) -> tuple[ImageFolderDataset, list[str]]:
    """(batches of normalised NHWC images and int labels, the file paths in ImageFolder order).
    ``shuffle_seed`` shuffles (and seeds the augmentation); ``images`` shares decoded images
    between epochs."""
    paths, labels = list_images(folder, classes)
    dataset = ImageFolderDataset(
        paths,
        labels,
        spec,
        size,
        batch_size,
        images=images,
        shuffle_seed=shuffle_seed,
        augment=augment,
        drop_last=drop_last,
        workers=workers,
        mean=mean,
        std=std,
        crop_scale=crop_scale,
        flip=flip,
    )
    return dataset, paths


def _labels(paths: list[str], classes: list[str]) -> np.ndarray:
    return np.array([classes.index(Path(p).parent.name) for p in paths], dtype="int32")


def extract_features(model: keras.Model, datasets: Sequence, progress: bool = False) -> list[np.ndarray]:
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


def _seed_epoch(seed: int) -> None:
    """Seeds what an epoch draws from, so that a resumed epoch repeats it: NumPy's and Python's
    global streams (the data's order and augmentation take their own seeded generators besides)
    and, off TensorFlow, all that ``keras.utils.set_random_seed`` seeds. On TensorFlow it leaves
    out ``tf.random.set_seed``: a new global seed clears TensorFlow's kernel caches, and every
    epoch paid for rebuilding them (0.1 s of lenet5's 0.3 s epoch on digits, one in four). Nothing in
    the loop draws from TensorFlow's global seed: Keras' dropout draws from each layer's own
    SeedGenerator, whose state the weights file keeps."""
    if keras.backend.backend() != "tensorflow":
        keras.utils.set_random_seed(seed)
        return
    random.seed(seed)
    np.random.seed(seed)


def _feed(data: ImageFolderDataset | tuple[np.ndarray, np.ndarray], batch_size: int):
    """What ``fit`` is given: on tensorflow, the same batches in the same order as a tf.data pipeline
    with tf.data's autotuning off and one batch prefetched; on other backends ``data`` itself.

    ``fit`` builds its own pipeline from a PyDataset or arrays with autotuning on, and on 2 cores
    the tuning's background work cost 5 of 6 epochs a flat 1.6 s (resnet18 on digits, 45 steps:
    5.1 s against 3.4-4.1 s with it off, alternating in one process). Keras itself turns it off for a
    PyDataset with worker threads (``--workers`` > 1), which is left to Keras."""
    if keras.backend.backend() != "tensorflow":
        return data
    import tensorflow as tf

    if isinstance(data, tuple):
        ds = tf.data.Dataset.from_tensor_slices(data).batch(batch_size)
    elif data.workers > 1 or data.use_multiprocessing:
        return data
    else:
        size, channels = data.size, data.images.channels
        signature = (
            tf.TensorSpec((None, size, size, channels), tf.float32),
            tf.TensorSpec((None,), tf.int32),
        )
        ds = tf.data.Dataset.from_generator(lambda: (data[i] for i in range(len(data))), output_signature=signature)
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(data)))  # the progress bar's total
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(1).with_options(options)


class _EpochClock(keras.callbacks.Callback):
    """Times the training part of an epoch, and stops ``fit`` after one epoch: the loop calls
    ``fit(initial_epoch=e - 1, epochs=total)`` once per epoch (each with its own seeded data), so
    Keras' progress bar still reads "Epoch e/total"."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        self.train_seconds: float | None = None

    def on_test_begin(self, logs=None):
        if self.train_seconds is None:
            # jax dispatches steps asynchronously: without waiting for the last one's results, its
            # time was counted as validation (the jax CLI's "validation" looked slower than training)
            variables = self.model.trainable_variables
            if variables:
                keras.ops.convert_to_numpy(variables[-1])
            self.train_seconds = time.perf_counter() - self.start

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start
        self.model.stop_training = True


# ----------------------------------------------------------------------------- checkpoints


def read_checkpoint_info(path: str | os.PathLike) -> dict[str, Any]:
    """A Keras fine-tune checkpoint's .json (a run folder, a .json, or its .weights.h5)."""
    return policy.read_checkpoint_info(path, KerasAdapter.framework)


def load_checkpoint(path: str | os.PathLike) -> tuple[keras.Model, dict[str, Any]]:
    """A fine-tuned model (logits output) and its checkpoint info (classes, size, history...)."""
    return loop.load_checkpoint(KerasAdapter(), path)


def _load_optimizer(optimizer: keras.optimizers.Optimizer, variables: list, path: Path, epoch: int) -> None:
    """Restores Adam's moments and step count (which carries the learning-rate schedule on)."""
    optimizer.build(variables)
    with np.load(path) as saved:
        check_optimizer_epoch(path.parent, epoch, int(saved["__epoch__"]))
        state = {k: saved[k] for k in saved.files if k != "__epoch__"}
    if len(state) != len(optimizer.variables):
        raise ValueError(
            f"{path}: optimizer state has {len(state)} variables, this run's optimizer has {len(optimizer.variables)}"
        )
    optimizer.load_own_variables(state)


def smoothed_crossentropy(label_smoothing: float):
    """Sparse cross-entropy on logits with label smoothing (Keras' sparse loss has none): the
    labels one-hot encoded, then ``categorical_crossentropy(label_smoothing=...)``, as torch's
    ``F.cross_entropy(label_smoothing=...)`` computes it."""
    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(y_true, logits):
        labels = keras.ops.one_hot(
            keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), keras.ops.shape(logits)[-1]
        )
        return keras.losses.categorical_crossentropy(labels, logits, from_logits=True, label_smoothing=label_smoothing)

    return loss


@contextlib.contextmanager
def _dtype_policy(name: str | None) -> Iterator[None]:
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


# ----------------------------------------------------------------------------- the adapter


class KerasAdapter:
    """Keras' part of a fine-tuning run (:class:`cnntune.loop.Adapter`), on the current backend:
    devices and DataParallel, PyDatasets, ``fit``, ``.weights.h5`` and ``.npz`` files."""

    framework = "keras"
    is_main = True
    weights_suffix = ".weights.h5"
    optimizer_suffix = ".optim.npz"

    def __init__(self) -> None:
        self.scope = contextlib.ExitStack()

    def setup(self, setup: RunSetup) -> str:
        opts, info = setup.opts, setup.info
        self.opts, self.setup_ = opts, setup
        if opts.weights is not None and info is None:
            _check_weights_file(opts.weights, opts.model)
        device = select_device(opts.device)
        amp = use_amp(opts.amp, device.is_gpu, "mixed_float16", "a GPU", device)
        self.batch = opts.batch_size
        if opts.distribute:  # every device (and host): the batch size is per device
            parallel = data_parallel()
            self.scope.enter_context(parallel.distribution.scope())
            self.batch, self.is_main = opts.batch_size * parallel.devices, parallel.is_main
            self.placement = Placement(parallel.kind, parallel.devices, f"{device.backend} DataParallel", "device")
            device = f"DataParallel over {parallel.devices} devices ({device.backend})"
        else:
            self.placement = Placement(device.name)
            self.scope.enter_context(keras.device(device.name))
        self.scope.enter_context(_dtype_policy("mixed_float16" if amp else None))
        keras.utils.set_random_seed(opts.seed)
        self.model = set_trainable(loop.starting_model(self, setup), setup.trainable)
        self.train_model = _training_model(self.model, opts, opts.use_cache)
        return str(device)

    def new_model(self, run: RunSetup) -> keras.Model:
        opts = run.opts
        return tuning_model(
            opts.model,
            len(run.classes),
            weights=opts.weights,
            hidden=opts.hidden,
            size=run.size,
            model_options=run.model_options,
        )

    def checkpoint_model(self, info: dict[str, Any]) -> keras.Model:
        model = tuning_model(
            info["model"],
            info["num_classes"],
            hidden=info["hidden"],
            size=info["size"],
            model_options=info.get("model_options"),
        )
        model.load_weights(str(Path(info["_dir"]) / info["weights"]))
        return model

    def _compile(self, steps: int) -> None:
        """AdamW (with the backbone's lower rate) stepping with the core's learning rates (its
        per-step table), the label-smoothed loss; the optimizer state of a resumed run, whose step
        count carries the schedule on."""
        opts, setup, info = self.opts, self.setup_, self.setup_.info
        lr = TabulatedSchedule(opts.learning_rate, setup.lr_factors(steps))
        optimizer = make_optimizer(self.model, lr, opts.backbone_lr_factor, weight_decay=opts.weight_decay or None)
        self.train_model.compile(
            optimizer=optimizer, loss=smoothed_crossentropy(opts.label_smoothing), metrics=["accuracy"]
        )
        if info is not None:
            _load_optimizer(
                self.train_model.optimizer,
                self.train_model.trainable_variables,
                Path(info["_dir"]) / info["optimizer"],
                info["epoch"],
            )

    def prepare(self, cache: bool) -> float | None:
        opts, setup = self.opts, self.setup_
        channels = setup.spec.input_size[0]
        # decoded images are kept across epochs; validation images in the weights' evaluation crop
        self.images = {
            # a crop cuts the decoded image before it is resized, as torchvision's RandomResizedCrop does
            "train": DecodedImages(setup.size, channels, source=opts.augment and opts.crop_scale < 1),
            "val": DecodedImages(setup.size, channels, resize=setup.eval_resize),
        }
        self.val_ds, val_paths = self._dataset("val")
        n_train = len(list_images(os.path.join(setup.root, "train"), setup.classes)[0])
        self._compile(steps_per_epoch(n_train, self.batch))
        self.cache = None
        if not cache:
            return None
        t0 = time.perf_counter()
        train_plain, train_paths = self._dataset("train")
        train_x, val_x = extract_features(self.model, [train_plain, self.val_ds], opts.progress)
        self.cache = {
            "train": (train_x, _labels(train_paths, setup.classes)),
            "val": (val_x, _labels(val_paths, setup.classes)),
        }
        return time.perf_counter() - t0

    def _dataset(self, split: str, **kwargs: Any) -> tuple[ImageFolderDataset, list[str]]:
        """``split``'s images (decoded once per run), batched for this run; ``kwargs`` as :func:`image_dataset`'s."""
        setup = self.setup_
        return image_dataset(
            os.path.join(setup.root, split),
            setup.spec,
            setup.size,
            setup.classes,
            self.batch,
            images=self.images[split],
            workers=self.opts.workers,
            mean=setup.mean,
            std=setup.std,
            **kwargs,
        )

    def epoch(self, epoch: int, seed: int, tag: str) -> dict[str, float]:
        opts = self.opts
        _seed_epoch(seed)
        clock = _EpochClock()
        fit = dict(epochs=opts.epochs, initial_epoch=epoch - 1, callbacks=[clock], verbose=1 if opts.progress else 0)
        if self.cache is not None:
            x, y = self.cache["train"]
            order = np.random.default_rng(seed).permutation(len(y))
            if should_drop_last(len(y), self.batch):
                order = order[:-1]
            if keras.backend.backend() == "tensorflow":
                train, val = _feed((x[order], y[order]), self.batch), _feed(self.cache["val"], self.batch)
                logs = self.train_model.fit(train, validation_data=val, shuffle=False, **fit).history
            else:
                logs = self.train_model.fit(
                    x[order],
                    y[order],
                    batch_size=self.batch,
                    shuffle=False,
                    validation_data=self.cache["val"],
                    validation_batch_size=self.batch,
                    **fit,
                ).history
        else:
            train_ds, _ = self._dataset(
                "train",
                shuffle_seed=seed,
                augment=opts.augment,
                drop_last=True,
                crop_scale=opts.crop_scale or DEFAULT_CROP_SCALE,
                flip=opts.flip or "none",
            )
            logs = self.train_model.fit(
                _feed(train_ds, self.batch),
                validation_data=_feed(self.val_ds, self.batch),
                shuffle=False,
                **fit,
            ).history
        return {
            "train_loss": float(logs["loss"][-1]),
            "train_acc": float(logs["accuracy"][-1]),
            "val_loss": float(logs["val_loss"][-1]),
            "val_acc": float(logs["val_accuracy"][-1]),
            "seconds": clock.seconds,
            "train_seconds": clock.train_seconds,
        }

    def save(self, out: Path, stem: str, epoch: int) -> None:
        atomic_write(
            out / f"{stem}{self.weights_suffix}",
            lambda tmp: self.model.save_weights(tmp, overwrite=True),
            suffix=self.weights_suffix,
        )
        state: dict[str, Any] = {}
        self.train_model.optimizer.save_own_variables(state)  # Keras' own (de)serialisation: {"0": array, "1": ...}

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, __epoch__=np.int64(epoch), **state)

        atomic_write(out / f"{stem}{self.optimizer_suffix}", write)

    def describe(self) -> dict[str, Any]:
        return {"backend": keras.backend.backend()}

    def close(self) -> None:
        self.scope.close()


def finetune(options: FinetuneOptions | None = None, **overrides: Any) -> FinetuneResult:
    """Trains ``options.model`` on ``options.data`` and returns the history and best accuracy.

    Keyword ``overrides`` are :class:`cnntune.FinetuneOptions` fields (``mode="fine-tune"``,
    ``epochs=3``...); ``workers`` > 1 decodes images in that many threads. Writes to the run
    folder: ``best``/``last`` checkpoints (``.weights.h5`` weights, ``.optim.npz`` optimizer state,
    ``.json`` info), ``history.json`` and ``curves.png``.
    """
    return loop.finetune(KerasAdapter(), options, **overrides)
