"""keras_impl: every model from the same spec, the torch-semantics layers, keras.applications' VGG16."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import model_params

import cnnspec
import keras_impl
from cnnspec.edit import narrow_head
from keras_impl import LocalResponseNorm, TorchAdaptiveAvgPool2D, TorchMaxPool2D

ROOT = Path(__file__).resolve().parents[1]


def spec_for_keras(name: str) -> cnnspec.ModelSpec:
    return cnnspec.get(name, aux_logits=False) if name == "googlenet" else cnnspec.get(name)


def assert_matches_spec(model: keras.Model, spec: cnnspec.ModelSpec, size) -> None:
    analysis = cnnspec.analyse(spec, size, include_aux=False)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == analysis.total_params
    names = {layer.name for layer in model.layers}
    checked = 0
    for info in analysis.layers:
        if keras_impl.layer_name(info.path) in names:
            shape = tuple(model.get_layer(keras_impl.layer_name(info.path)).output.shape[1:])
            expected = (
                info.output_shape if len(info.output_shape) != 3 else info.output_shape[1:] + info.output_shape[:1]
            )
            assert shape == expected, info.path
            checked += 1
    assert checked >= len([lyr for lyr in analysis.leaves]) * 0.9  # nearly every spec node is a named layer


@pytest.mark.parametrize("name", model_params(cnnspec.names()))
def test_every_layer_matches_the_spec(name):
    spec = spec_for_keras(name)
    sizes = [spec.input_size[1:]] if spec.fixed_input else [(224, 224), (193, 161)]
    for size in sizes:
        model = keras_impl.get_model(name, input_shape=(*size, spec.input_size[0]))
        assert_matches_spec(model, spec, size)


def test_keras_applications_vgg16_weights_give_identical_outputs(tmp_path):
    reference = keras.applications.VGG16(weights=None, classifier_activation=None)
    rng = np.random.default_rng(0)
    reference.set_weights(
        [
            (rng.standard_normal(w.shape) / np.sqrt(np.prod(w.shape[:-1]) if w.ndim > 1 else 10)).astype("float32")
            for w in reference.get_weights()
        ]
    )
    x = rng.standard_normal((2, 224, 224, 3)).astype("float32")
    expected = np.asarray(reference(x, training=False))
    ours = keras_impl.load_keras_applications_vgg16(keras_impl.vgg16(classifier_activation=None), reference)
    assert np.abs(np.asarray(ours(x, training=False)) - expected).max() <= 1e-5
    path = tmp_path / "vgg16.weights.h5"
    reference.save_weights(path)
    from_file = keras_impl.load_keras_applications_vgg16(keras_impl.vgg16(classifier_activation=None), path)
    assert np.abs(np.asarray(from_file(x, training=False)) - expected).max() <= 1e-5
    with pytest.raises(ValueError, match="weighted layers"):
        keras_impl.load_keras_applications_vgg16(keras_impl.vgg19(), reference)


@pytest.mark.parametrize("size", [7, 8, 9, 10, 13, 15, 17, 28])
@pytest.mark.parametrize("kernel,stride,padding", [(3, 2, 0), (2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 2, 1)])
def test_torch_max_pool_matches_torch(size, kernel, stride, padding):
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, size, size + 1)
    for ceil_mode in (False, True):
        ref = (
            torch.nn.functional.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode).permute(0, 2, 3, 1).numpy()
        )
        layer = TorchMaxPool2D(kernel, stride, padding, ceil_mode)
        out = np.asarray(layer(x.permute(0, 2, 3, 1).numpy()))
        assert out.shape == ref.shape and np.array_equal(out, ref), (ceil_mode, out.shape, ref.shape)
        assert layer.compute_output_shape((2, size, size + 1, 3)) == (2,) + ref.shape[1:]


def test_local_response_norm_matches_torch():
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 11, 5, 4) * 3
    for size, alpha, beta, k in [(5, 5e-4, 0.75, 2.0), (4, 1e-2, 0.5, 1.0), (3, 1.0, 0.75, 1.0)]:
        ref = torch.nn.LocalResponseNorm(size, alpha, beta, k)(x).permute(0, 2, 3, 1).numpy()
        out = np.asarray(LocalResponseNorm(size, alpha, beta, k)(x.permute(0, 2, 3, 1).numpy()))
        assert np.abs(out - ref).max() <= 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("size", [7, 10, 13, 15, 17])
def test_adaptive_average_pooling_matches_torch(size):
    torch = pytest.importorskip("torch")
    x = torch.randn(1, 4, size, size)
    ref = torch.nn.AdaptiveAvgPool2d(6)(x).permute(0, 2, 3, 1).numpy()
    out = np.asarray(keras.layers.AdaptiveAveragePooling2D(6)(x.permute(0, 2, 3, 1).numpy()))
    assert np.abs(out - ref).max() <= 1e-6


def torch_adaptive_avg_pool(x: np.ndarray, out: tuple[int, int]) -> np.ndarray:
    """torch.nn.AdaptiveAvgPool2d's definition on NHWC in numpy: the mean of rows
    [floor(i*h/oh), ceil((i+1)*h/oh)) and the same for columns."""
    (h, w), (oh, ow) = x.shape[1:3], out
    rows = [(i * h // oh, -(-(i + 1) * h // oh)) for i in range(oh)]
    cols = [(j * w // ow, -(-(j + 1) * w // ow)) for j in range(ow)]
    return np.stack([np.stack([x[:, a:b, c:d].mean(axis=(1, 2)) for c, d in cols], 1) for a, b in rows], 1)


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 3), (5, 2), (6, 6), (7, 7), (9, 4), (15, 15)])
def test_torch_adaptive_pool_takes_any_map_size(size):
    """The layer keras_impl builds when a map is smaller than the pool's output (VGG below 224 px):
    torch's bins on every side of it, upsampling (3x3 to 7x7: NaN in Keras' own layer on jax) and
    shrinking, equal to torch.nn.AdaptiveAvgPool2d and to its definition."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(sum(size)).standard_normal((2, *size, 3)).astype("float32")
    for out in [(7, 7), (6, 6), (1, 1), (3, 5)]:
        got = keras.ops.convert_to_numpy(TorchAdaptiveAvgPool2D(out)(x))
        ref = torch.nn.AdaptiveAvgPool2d(out)(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        assert got.shape == ref.shape == (2, *out, 3)
        assert np.abs(got - ref).max() <= 1e-6 and np.abs(got - torch_adaptive_avg_pool(x, out)).max() <= 1e-6


def test_a_map_smaller_than_the_adaptive_pool_builds_torchs_layer():
    """keras_impl.vgg11 at 96 px pools a 3x3 map to 7x7 with TorchAdaptiveAvgPool2D; at 224 (7x7)
    the pool is the identity and at 256 (8x8) Keras' own layer, which agrees with torch there."""
    spec = narrow_head(cnnspec.get("vgg11", num_classes=10))  # VGG's graph without its 100 M-weight head
    kinds = {
        side: type(keras_impl.build_model(spec, input_shape=(side, side, 3)).get_layer("avgpool")).__name__
        for side in (96, 224, 256)
    }
    assert kinds == {96: "TorchAdaptiveAvgPool2D", 224: "Identity", 256: "AdaptiveAveragePooling2D"}


def test_keras_applications_style_arguments():
    base = keras_impl.resnet18(include_top=False, pooling="avg")
    assert base.output.shape == (None, 512) and base.input.shape == (None, None, None, 3)
    fmap = keras_impl.vgg11(include_top=False, input_shape=(64, 96, 3))
    assert fmap.output.shape == (None, 2, 3, 512)
    model = keras_impl.googlenet(aux_logits=True, classes=7)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 7)] * 3
    assert model.get_layer("fc").activation.__name__ == "softmax"
    inp = keras.Input((32, 32, 1))
    lenet = keras_impl.lenet5(input_tensor=inp, classifier_activation=None)
    assert lenet.inputs[0] is inp and lenet.get_layer("classifier_2").activation.__name__ == "linear"
    # the config rebuilds the model (custom layers are registered): needed for saving and export
    for m in (keras_impl.alexnet_original(), keras_impl.googlenet(transform_input=True)):
        clone = keras.Model.from_config(m.get_config())
        assert clone.count_params() == m.count_params()


def test_clear_errors():
    with pytest.raises(ValueError, match="expects 3 input channels"):
        keras_impl.resnet18(input_shape=(224, 224, 1))
    with pytest.raises(ValueError, match="only takes 227x227"):
        keras_impl.alexnet_original(input_shape=(224, 224, 3))
    with pytest.raises(ValueError, match="pooling must be None, 'avg' or 'max'"):
        keras_impl.vgg11(include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="alexnet_original has no published weights"):
        keras_impl.alexnet_original(weights="imagenet")
    with pytest.raises(ValueError, match="with include_top=True, classes must be 1000"):
        keras_impl.vgg16(weights="imagenet", classes=10)
    with pytest.raises(FileNotFoundError):
        keras_impl.lenet5(weights="missing.weights.h5")
    with pytest.raises(ValueError, match="weights.h5"):
        keras_impl.lenet5(weights=__file__)
    with pytest.raises(TypeError, match="does not accept"):
        keras_impl.vgg16(aux_logits=True)


def test_weights_file_round_trip(tmp_path):
    model = keras_impl.lenet5(classifier_activation=None)
    path = tmp_path / "lenet5.weights.h5"
    model.save_weights(path)
    again = keras_impl.lenet5(weights=path, classifier_activation=None)
    x = np.random.default_rng(1).standard_normal((3, 32, 32, 1)).astype("float32")
    assert np.array_equal(np.asarray(model(x)), np.asarray(again(x)))
    with pytest.raises(ValueError, match="does not fit"):
        keras_impl.alexnet(weights=path)


def test_keras_impl_imports_no_torch():
    code = (
        "import sys, keras_impl; keras_impl.resnet18(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


BACKEND_SCRIPT = """
import json, sys, numpy as np, keras, cnnspec, keras_impl, keras_impl.host_draws
out = {"backend": keras.backend.backend()}
for name in sys.argv[1:]:
    options = cnnspec.options_for_size(name, 32, {})  # a small ViT; the others as they are
    spec = cnnspec.get(name, **options)
    size = spec.input_size[1:] if spec.fixed_input else (64, 64)
    model = keras_impl.get_model(name, input_shape=(*size, spec.input_size[0]), classifier_activation=None, **options)
    x = np.ones((1, *size, spec.input_size[0]), "float32")
    if out["backend"] == "jax":  # one compiled graph: jax compiles an eager call op by op (GoogLeNet 14.5 s, not 3.7)
        y = model.predict(x, verbose=0)
    else:  # eager: tensorflow's predict traces a graph per model (20 models: 43 s eager, 64 s)
        y = keras.ops.convert_to_numpy(model(x, training=False))
    out[name] = [list(y.shape), bool(np.isfinite(y).all()), "HostDraw" in json.dumps(model.get_config())]
# jax: weights drawn by NumPy (no compilation per shape), Keras' own initialisers recorded
out["draws"] = type(keras_impl.host_draws.on_host(keras.initializers.RandomNormal())).__name__
# torch's adaptive pooling of maps smaller than its output (Keras' own layer: NaN on jax at 3x3 -> 7x7)
x = np.arange(2 * 3 * 3 * 2, dtype="float32").reshape(2, 3, 3, 2)
y = keras.ops.convert_to_numpy(keras_impl.TorchAdaptiveAvgPool2D(7)(x))
bins = [(0, 1), (0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 3)]  # torch's for 3 -> 7
ref = np.stack([np.stack([x[:, a:b, c:d].mean(axis=(1, 2)) for c, d in bins], 1) for a, b in bins], 1)
out["adaptive_pool_error"] = float(np.abs(y - ref).max())
print(json.dumps(out))
"""


# every registered model on tensorflow; on jax and torch one model per family and block kind (the
# deeper VGGs and ResNets repeat these layers; jax compiles each new weight shape's initializer)
ONE_PER_NODE_KIND = [
    "lenet5",
    "alexnet",
    "alexnet_original",
    "vgg11_bn",
    "googlenet",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "efficientnet_b0",
    "vit_b_16",
]


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_model_suite_runs_on_every_backend(backend):
    if backend == "jax":
        pytest.importorskip("jax")
    names = cnnspec.names() if backend == "tensorflow" else ONE_PER_NODE_KIND
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-c", BACKEND_SCRIPT, *names]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result.pop("backend") == backend
    assert result.pop("adaptive_pool_error") <= 1e-6
    assert result.pop("draws") == ("HostDraw" if backend == "jax" else "RandomNormal")
    assert sorted(result) == sorted(names)
    for name, (shape, finite, host_draw_in_config) in result.items():
        assert shape == [1, cnnspec.get(name).num_classes] and finite and not host_draw_in_config, name


def test_a_saved_keras_file_loads_back_after_importing_the_layers(tmp_path):
    """``import keras_impl`` loads Keras lazily, so a ``.keras`` file holding this package's layers
    loads after ``import keras_impl.layers`` (which registers them), in safe mode; without it,
    Keras cannot find the classes (the twin)."""
    model = keras_impl.mobilenet_v2(input_shape=(32, 32, 3), classes=10)
    path = tmp_path / "mobilenet_v2.keras"
    model.save(path)
    load = f"import keras; m = keras.saving.load_model({str(path)!r}, safe_mode=True); print(m.count_params())"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, "-c", "import keras_impl.layers; " + load], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) == model.count_params()
    without = subprocess.run(
        [sys.executable, "-c", "import keras_impl; " + load], capture_output=True, text=True, env=env
    )
    assert without.returncode != 0 and "TorchBatchNormalization" in without.stderr
