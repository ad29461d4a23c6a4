"""Transfer learning, Keras side (the twin of test_transfer_torch.py): head surgery, freezing,
the lower backbone learning rate, training modes, feature cache, resume, CLI and data-layout
errors. Tiny data (32px, a few images per class); runs on the TensorFlow backend, and on jax with
TensorFlow hidden (test_keras_without_tensorflow.py). This file imports no torch (conftest may
have, first, for the other files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from divergence import check_divergence_keeps_the_good_run
from image_folders import interrupted_after_first_epoch, write_colours
from PIL import Image
from run_records import check_run_record

import cnnspec
import cnntoydata
import keras_impl
import keras_impl.finetune as ft
from cnntune import FinetuneOptions
from cnntune.folders import DataLayoutError
from keras_impl.__main__ import main as cli_main
from keras_impl.distribute import select_device
from keras_impl.optimizers import TorchAdam
from keras_impl.surgery import (
    InferenceOnly,
    freeze_backbone,
    frozen_batchnorms,
    layer_paths,
    make_optimizer,
    param_groups,
    replace_head,
    trainable_names,
    unfreeze,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(size=32, batch_size=8, progress=False)
pytestmark = [
    pytest.mark.filterwarnings("ignore:feature extraction without weights"),
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]


def randomise(model: keras.Model, seed: int = 0) -> keras.Model:
    """Every weight random, BatchNorm moving statistics included (zero means and unit variances
    would hide a statistic that moved and came back)."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        shape, name = tuple(v.shape), v.path.rsplit("/", 1)[-1]
        if name == "moving_variance":
            value = rng.uniform(0.5, 1.0, shape)
        elif name == "gamma":
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif len(shape) > 1:
            value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
        else:
            value = 0.1 * rng.standard_normal(shape)
        v.assign(value.astype("float32"))
    return model


def _weights(model: keras.Model) -> dict[str, np.ndarray]:
    return {v.path: np.array(v.numpy()) for v in model.weights}


def _checkpoint(path: Path) -> dict[str, np.ndarray]:
    return _weights(ft.load_checkpoint(path)[0])


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    """Three classes told apart by colour alone (see image_folders.write_colours)."""
    return write_colours(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A resnet18 .weights.h5 with random weights and random BatchNorm statistics, 1000 classes."""
    path = tmp_path_factory.mktemp("weights") / "resnet18.weights.h5"
    randomise(keras_impl.resnet18(), seed=1).save_weights(str(path))
    return path


@pytest.fixture(scope="module")
def pretrained_weights(pretrained) -> dict[str, np.ndarray]:
    model = keras_impl.resnet18()
    model.load_weights(str(pretrained))
    return _weights(model)


def _backbone(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in weights.items() if not k.startswith("fc/")}


# ----------------------------------------------------------------------------- surgery


def test_replace_head_keeps_name_and_shared_layers_and_outputs_logits():
    base = keras_impl.resnet18(input_shape=(32, 32, 3))
    model = replace_head(base, num_classes=5)
    assert model.name == "resnet18" and model.output.shape == (None, 5)
    fc = model.get_layer("fc")
    assert fc is not base.get_layer("fc") and fc.units == 5 and fc.activation is keras.activations.linear
    assert model.get_layer("layer4_1_conv2") is base.get_layer("layer4_1_conv2")  # shared, weights too
    assert len(model.layers) == len(base.layers)
    logits = model.predict(np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32"), verbose=0)
    assert not np.allclose(np.asarray(logits).sum(1), 1.0)  # no softmax
    lenet = replace_head(keras_impl.lenet5(), num_classes=4, hidden=16)
    assert [lyr.name for lyr in lenet.layers[-4:]] == [
        "classifier_2_0",
        "classifier_2_1",
        "classifier_2_2",
        "classifier_2_3",
    ]
    assert lenet.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0).shape == (2, 4)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        replace_head(lenet, 0)
    with pytest.raises(ValueError, match="include_top=False"):
        replace_head(keras_impl.lenet5(include_top=False), 3)
    renamed = keras.Model(base.inputs, base.outputs, name="mine")
    with pytest.raises(ValueError, match="'mine' is not named after a keras_impl spec"):
        freeze_backbone(renamed)


def test_unfreeze_last_block_makes_exactly_the_last_stage_and_head_trainable():
    model = replace_head(keras_impl.resnet18(input_shape=(32, 32, 3)), 3)
    names = [v.path for v in model.trainable_variables]
    unfreeze(model, last_n_blocks=1)
    assert trainable_names(model) == [n for n in names if n.startswith(("layer4_", "fc/"))]
    held = frozen_batchnorms(model)
    assert "layer3_1_bn2" in held and "bn1" in held and not any(n.startswith("layer4") for n in held)
    # helper layers belong to their node: layer4's padding and residual sums, not layer3's
    assert model.get_layer("layer4_0_conv1_pad").trainable and model.get_layer("layer4_1_add").trainable
    assert not model.get_layer("layer3_0_conv1_pad").trainable and not model.get_layer("layer3_1_add").trainable
    groups = {g["name"]: g for g in param_groups(model, lr=1e-2, backbone_lr_factor=0.1)}
    assert groups["classifier"]["lr"] == 1e-2 and groups["backbone"]["lr"] == pytest.approx(1e-3)
    assert [v.path for v in groups["classifier"]["variables"]] == ["fc/kernel", "fc/bias"]
    assert len(groups["backbone"]["variables"]) == sum(n.startswith("layer4_") for n in names)
    optimizer = make_optimizer(model, lr=1e-2, backbone_lr_factor=0.1)
    assert set(optimizer.lr_multipliers) == {n for n in names if n.startswith("layer4_")}
    freeze_backbone(model)
    assert trainable_names(model) == ["fc/kernel", "fc/bias"]
    unfreeze(model)
    assert trainable_names(model) == names and frozen_batchnorms(model) == []
    owners = layer_paths(cnnspec.get("vgg11"))  # spec path of each keras layer: features_1 is not under features.10
    assert (
        owners["features_1"] == "features.1"
        and owners["features_10"] == "features.10"
        and owners["features_16"] == "features.16"
    )
    assert layer_paths(cnnspec.get("resnet18"))["layer4_0_conv1_pad"] == "layer4.0.conv1"
    lenet = unfreeze(replace_head(keras_impl.lenet5(), 3), last_n_blocks=1)
    assert trainable_names(lenet) == [
        "features_6/kernel",
        "features_6/bias",
        "classifier_0/kernel",
        "classifier_0/bias",
        "classifier_2/kernel",
        "classifier_2/bias",
    ]
    with pytest.raises(ValueError, match="from 0 to 5 .*received last_n_blocks=6"):
        unfreeze(model, last_n_blocks=6)


def test_frozen_batchnorm_keeps_its_statistics_in_training_mode():
    model = freeze_backbone(replace_head(randomise(keras_impl.resnet18(input_shape=(32, 32, 3)), seed=2), 3))
    before = _weights(model)
    x = [np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")]  # a list: the model's input structure
    model(x, training=True)
    assert all(np.array_equal(before[k], v) for k, v in _weights(model).items())
    unfreeze(model)
    model(x, training=True)
    assert not np.array_equal(before["bn1/moving_mean"], model.get_layer("bn1").moving_mean.numpy())


def test_inference_only_runs_dropout_as_at_prediction_inside_fit_mode():
    """A frozen Dropout still drops in training; the wrapper the live feature extraction uses does not."""
    inner = keras.Sequential([keras.Input((64,)), keras.layers.Dropout(0.5)])
    inputs = keras.Input((64,))
    wrapped = keras.Model(inputs, InferenceOnly(inner)(inputs))
    x = np.ones((4, 64), "float32")
    assert np.array_equal(np.asarray(wrapped(x, training=True)), x)
    assert not np.array_equal(np.asarray(inner(x, training=True)), x)  # the twin: unwrapped, it drops


def test_adam_multipliers_give_the_listed_variables_a_lower_learning_rate():
    """Factor 0 freezes the listed variables through the optimizer alone (all are trainable);
    factor 1 (plain Adam) is the twin that shows the check can fail."""
    x = np.random.default_rng(0).normal(size=(16, 32, 32, 1)).astype("float32")
    y = np.arange(16) % 3
    for factor in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        model = unfreeze(replace_head(keras_impl.lenet5(), 3))
        optimizer = make_optimizer(model, lr=1e-2, backbone_lr_factor=factor)
        assert isinstance(optimizer, TorchAdam) and len(optimizer.lr_multipliers) == 8
        model.compile(optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        before = _weights(model)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        changed = {k for k, v in _weights(model).items() if not np.array_equal(before[k], v)}
        head = {"classifier_2/kernel", "classifier_2/bias"}
        assert changed == (head if factor == 0.0 else set(before))


def test_select_device():
    assert str(select_device("cpu")) == "cpu:0" and not select_device("cpu").is_gpu
    if not select_device(None).is_gpu:  # conftest hides GPUs: the CPU path is what CI has
        assert select_device("auto").name == "cpu:0"
        with pytest.raises(ValueError, match="sees 0 GPU"):
            select_device("cuda")
    with pytest.raises(ValueError, match="auto, cpu, cuda, cuda:N or mps"):
        select_device("tpu")


# ----------------------------------------------------------------------------- training


def test_feature_extraction_leaves_backbone_bit_identical_and_trains_the_head(
    colours, pretrained, pretrained_weights, tmp_path, monkeypatch
):
    initial = {}

    def spy(model, num_classes, hidden=None):  # the new head as finetune creates it
        model = keras_impl.surgery.replace_head(model, num_classes, hidden)
        initial.update({v.path: np.array(v.numpy()) for v in model.get_layer("fc").weights})
        return model

    monkeypatch.setattr(ft, "replace_head", spy)
    # augment: no cache, so the live backbone runs inside fit (training=True) every step
    result = ft.finetune(
        data=str(colours),
        mode="feature-extract",
        weights=str(pretrained),
        augment=True,
        epochs=1,
        out=str(tmp_path),
        **TINY,
    )
    assert result.cache_seconds is None and [h["epoch"] for h in result.history] == [1]
    before, after = _backbone(pretrained_weights), _checkpoint(tmp_path / "last.json")
    assert set(before) == set(_backbone(after)) and any("moving_variance" in k for k in before)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics
    assert not np.array_equal(initial["fc/kernel"], after["fc/kernel"]) and after["fc/kernel"].shape == (512, 3)


def test_fine_tuning_the_last_block_changes_it_and_nothing_before(colours, pretrained, pretrained_weights, tmp_path):
    ft.finetune(
        data=str(colours),
        mode="fine-tune",
        weights=str(pretrained),
        last_n_blocks=1,
        epochs=1,
        out=str(tmp_path),
        **TINY,
    )
    before, after = _backbone(pretrained_weights), _checkpoint(tmp_path / "last.json")
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert {"layer4_1_conv2/kernel", "layer4_0_bn1/moving_mean", "layer4_0_bn1/gamma"} <= changed
    assert all(k.startswith("layer4_") for k in changed)


def test_fine_tuning_changes_the_whole_backbone_at_the_lower_rate(colours, tmp_path):
    """lenet5 (no BatchNorm): with backbone_lr_factor=0 the backbone stays bit-identical while the
    head trains; with the default 0.1 every layer moves."""
    common = dict(data=str(colours), model="lenet5", mode="fine-tune", epochs=1, batch_size=8, progress=False)
    keras.utils.set_random_seed(0)
    start = _weights(replace_head(keras_impl.lenet5(), 3))  # what finetune builds with seed 0
    ft.finetune(**common, backbone_lr_factor=0.0, out=str(tmp_path / "zero"))
    ft.finetune(**common, out=str(tmp_path / "tenth"))
    zero, tenth = _checkpoint(tmp_path / "zero"), _checkpoint(tmp_path / "tenth")
    head = {"classifier_2/kernel", "classifier_2/bias"}
    assert {k for k in start if not np.array_equal(start[k], zero[k])} == head
    assert {k for k in start if not np.array_equal(start[k], tenth[k])} == set(start)


def test_cached_feature_extraction_learns_and_matches_the_live_model(colours, tmp_path):
    with pytest.warns(UserWarning, match="GPU only"):
        result = ft.finetune(
            data=str(colours),
            mode="feature-extract",
            epochs=5,
            amp=True,
            out=str(tmp_path),
            schedule="constant",
            label_smoothing=0.0,
            **TINY,
        )  # the plain head training this test was sized for
    assert (
        result.cache_seconds is not None and len(result.epoch_times) == 5
    )  # 5: every backend's seeded init gets there
    assert result.best_val_acc >= 0.9  # three colours, chance is 1/3
    # the cache holds what the model computes: the best checkpoint scores the same on the images
    model, info = ft.load_checkpoint(result.best_checkpoint)
    val, paths = ft.image_dataset(colours / "val", keras_impl.model_info("resnet18"), 32, info["classes"], 8)
    predicted = np.argmax(model.predict(val, verbose=0), axis=1)
    assert np.mean(predicted == ft._labels(paths, info["classes"])) == pytest.approx(result.best_val_acc)


def _torchvision_crops(source: Image.Image, size: int, smallest: int) -> set[bytes]:
    """Every image ``F.resized_crop`` makes of ``source`` from a box of whole source pixels at least
    ``smallest`` on a side: what torchvision's RandomResizedCrop draws from (a superset)."""
    import torchvision.transforms.functional as F

    width, height = source.size
    boxes = [
        (top, left, h, w)
        for h in range(smallest, height + 1)
        for w in range(smallest, width + 1)
        for top in range(height - h + 1)
        for left in range(width - w + 1)
    ]
    return {np.asarray(F.resized_crop(source, *box, [size, size])).tobytes() for box in boxes}


def test_the_crop_cuts_whole_source_pixels_as_torchvisions_does(tmp_path):
    """An 8x8 digit enlarged to 32 px: torchvision crops the 8x8 image (7 of its 8 columns, say)
    and then resizes; the Keras pipeline makes only images torchvision can make. Twin: cropping the
    32x32 enlargement instead (a sub-pixel cut) makes images torchvision never does."""
    from keras_impl.data import DecodedImages, _augment

    pixels = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    possible = _torchvision_crops(Image.fromarray(pixels), 32, 6)  # 0.8 of 8x8 at ratio 3/4-4/3
    source = DecodedImages(32, 1, source=True)(str(tmp_path / "digit.png"))
    made = [_augment(source, np.random.default_rng(i), 0.8, "none", 32)[:, :, 0] for i in range(40)]
    assert all(m.shape == (32, 32) and m.tobytes() in possible for m in made)
    assert len({m.tobytes() for m in made}) > 3  # it does crop
    enlarged = DecodedImages(32, 1)(str(tmp_path / "digit.png"))
    sub_pixel = [_augment(enlarged, np.random.default_rng(i), 0.8, "none", 32)[:, :, 0] for i in range(40)]
    assert any(m.tobytes() not in possible for m in sub_pixel)


def test_decoded_images_resize_as_torchvisions_resize_and_centre_crop(tmp_path):
    """``resize``: short side to 40, centre crop 32, as torchvision's ``Resize(40)`` + ``CenterCrop(32)``;
    a crop without a ``size`` keeps a non-square image's own height and width (no squashing)."""
    from torchvision.transforms import v2

    from keras_impl.data import DecodedImages, _augment

    pixels = np.random.default_rng(0).integers(0, 256, (48, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    ours = DecodedImages(32, 3, resize=40)(str(tmp_path / "wide.png"))
    theirs = np.asarray(v2.CenterCrop(32)(v2.Resize(40)(Image.fromarray(pixels))))
    assert ours.shape == (32, 32, 3) and np.abs(ours.astype(int) - theirs).max() <= 1
    squashed = np.asarray(Image.fromarray(pixels).resize((32, 32)))
    assert np.abs(ours.astype(int) - squashed).max() > 1  # the twin: a plain resize is not it
    assert _augment(pixels, np.random.default_rng(0), 0.5).shape == (48, 60, 3)


def test_resume_continues_like_an_uninterrupted_run(colours, tmp_path, monkeypatch):
    options = FinetuneOptions(
        data=str(colours), model="lenet5", mode="fine-tune", augment=True, lr=3e-3, batch_size=8, progress=False
    )
    straight = ft.finetune(options, epochs=2, out=str(tmp_path / "straight"))
    first = interrupted_after_first_epoch(
        ft, ft.KerasAdapter, options, monkeypatch, epochs=2, out=str(tmp_path / "resumed")
    )
    resumed = ft.finetune(options, epochs=2, resume=str(tmp_path / "resumed"))
    assert [h["epoch"] for h in resumed.history] == [1, 2] and len(resumed.epoch_times) == 1
    assert resumed.history[0] == first["history"][0]
    assert [h["val_acc"] for h in resumed.history] == [h["val_acc"] for h in straight.history]
    a, b = _checkpoint(tmp_path / "straight"), _checkpoint(tmp_path / "resumed")
    for key in a:  # without the optimizer state (Adam's moments and step) the second epoch differs
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert json.loads((tmp_path / "resumed" / "history.json").read_text())["epochs"] == resumed.history
    model, info = ft.load_checkpoint(tmp_path / "resumed" / "last.weights.h5")
    assert info["epoch"] == 2 and model.output.shape[-1] == 3 and info["classes"] == ["blue", "green", "red"]
    with pytest.raises(ValueError, match="cannot resume .*--hidden None.*received --hidden 8"):
        ft.finetune(options, epochs=3, hidden=8, resume=str(tmp_path / "resumed"))


# ----------------------------------------------------------------------------- CLI and errors


SUITE_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")  # see test_keras_without_tensorflow.py


@pytest.mark.parametrize("backend", sorted({SUITE_BACKEND, "torch"}))
def test_cli_runs_end_to_end_on_the_embedded_data(tmp_path, backend):
    """On the suite's backend, and on torch, where Keras built variables under keras.device("cpu:0")
    as copies whose trainable flag cannot be set (the CLI failed before its first epoch)."""
    out = tmp_path / "run"
    env = {
        **os.environ,
        "CLASSIC_CNNS_CACHE": str(tmp_path / "cache"),
        "CUDA_VISIBLE_DEVICES": "",
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    args = [
        "finetune",
        "--model",
        "lenet5",
        "--mode",
        "fine-tune",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        str(out),
        "--no-progress",
    ]
    # keras_impl must run without torch (but on its backend): the child fails if anything imported it
    code = (
        "import runpy, sys; sys.argv = ['keras_impl'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('keras_impl', run_name='__main__')\n"
        f"finally:\n    assert {backend!r} == 'torch' or 'torch' not in sys.modules, 'keras_impl imported torch'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best val accuracy" in proc.stdout
    for name in (
        "best.weights.h5",
        "best.json",
        "best.optim.npz",
        "last.weights.h5",
        "last.optim.npz",
        "history.json",
        "curves.png",
    ):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert history["classes"] == sorted(cnntoydata.PARTS["target"]) and [h["epoch"] for h in history["epochs"]] == [1]
    assert history["framework"] == "keras" and history["backend"] == backend
    assert proc.stdout.splitlines()[0] == history["run"]["line"] and proc.stdout.count(" finetune: lenet5, ") == 1
    assert history["run"]["line"].startswith(f"keras/{backend} finetune: lenet5, fine-tune from scratch, 32x32 px")
    check_run_record(history["run"], "keras", world_size=1, backend=None, batch=32)
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith("cnntoydata-")]
    assert _checkpoint(out / "best.json")["classifier_2/kernel"].shape == (84, 5)


def test_bad_inputs_say_what_was_expected(tmp_path, capsys):
    for split, cls in (("train", "a"), ("train", "b"), ("val", "a")):
        (tmp_path / "mismatch" / split / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "mismatch" / split / cls / "0.png")
    (tmp_path / "noval" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataLayoutError, match=r"only in train/: \['b'\]"):
        ft.finetune(data=str(tmp_path / "mismatch"), **TINY)
    with pytest.raises(DataLayoutError, match="has no val/ subfolder.*expected an image folder laid out as"):
        ft.finetune(data=str(tmp_path / "noval"), **TINY)
    assert cli_main(["finetune", "--data", str(tmp_path / "missing"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "DIR/train/<class_a>/*.png" in err
    with pytest.raises(ValueError, match="lenet5 takes only 32x32 inputs"):
        ft.finetune(data=str(tmp_path / "mismatch"), model="lenet5", size=64, progress=False)
    torch_file = tmp_path / "resnet18.pth"
    torch_file.write_bytes(b"not read")
    fixed = tmp_path / "fixed"
    for split in ("train", "val"):
        for cls in ("a", "b"):  # two classes: one is refused before the weights are looked at
            (fixed / split / cls).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(fixed / split / cls / "0.png")
    assert cli_main(["finetune", "--data", str(fixed), "--weights", str(torch_file), "--no-progress"]) == 2
    assert (
        f"python -m parity convert --model resnet18 {torch_file} {tmp_path / 'resnet18.weights.h5'}"
        in capsys.readouterr().err
    )
    with pytest.raises(
        ValueError, match="is a torch checkpoint; resume it with python -m torch_impl finetune --resume"
    ):
        (tmp_path / "torch-run").mkdir()
        (tmp_path / "torch-run" / "last.json").write_text(json.dumps({"format": 1, "model": "resnet18"}))
        ft.finetune(data=str(fixed), resume=str(tmp_path / "torch-run"), **TINY)


def test_a_diverged_run_stops_with_one_line_and_keeps_the_good_checkpoint(colours, tmp_path, capsys, monkeypatch):
    """A real divergence through the CLI (tests/divergence.py, the same for both frameworks)."""
    check_divergence_keeps_the_good_run("keras", cli_main, colours, tmp_path, capsys, monkeypatch)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the tf.data feed is tensorflow's")
def test_on_tensorflow_fit_is_fed_the_same_batches_with_autotuning_off(colours):
    """keras_impl.finetune._feed: tf.data's autotuning cost 5 of 6 fits a flat 1.6 s on 2 cores, so
    on tensorflow the CLI gives fit its own pipeline with it off: the same batches, in the same order
    (the PyDataset's, and arrays batched as fit would). A PyDataset with worker threads is left to
    Keras (its enqueuer turns autotuning off itself)."""
    import tensorflow as tf

    spec = keras_impl.model_info("resnet18")
    ds, _ = ft.image_dataset(colours / "train", spec, 32, ["blue", "green", "red"], 4, shuffle_seed=3)
    fed = ft._feed(ds, 4)
    assert isinstance(fed, tf.data.Dataset) and fed.options().autotune.enabled is False
    assert int(fed.cardinality()) == len(ds)  # the progress bar knows its total
    batches = list(fed.as_numpy_iterator())
    assert len(batches) == len(ds)
    for (x, y), i in zip(batches, range(len(ds))):
        np.testing.assert_array_equal(x, ds[i][0])
        np.testing.assert_array_equal(y, ds[i][1])
    arrays = (np.arange(10, dtype="float32").reshape(5, 2), np.arange(5, dtype="int32"))
    assert [b[1].tolist() for b in ft._feed(arrays, 2).as_numpy_iterator()] == [[0, 1], [2, 3], [4]]
    threaded, _ = ft.image_dataset(colours / "train", spec, 32, ["blue", "green", "red"], 4, workers=2)
    assert ft._feed(threaded, 4) is threaded
