"""Feature pyramids and features by name on Keras (issue 31): ``keras_impl.get_model(name,
features_only=True, out_indices=...)``, ``keras_impl.features_only`` and
``keras_impl.feature_extractor``, each compared with torch_impl's after a weight transfer (random
BatchNorm statistics), one model per family, and ``python -m parity check NAME --features`` (on
the other Keras backends too, in subprocesses); each check with a twin that must fail."""

from __future__ import annotations

import functools
import inspect
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from feature_models import FAMILIES, small_vit_spec  # noqa: E402

import cnnspec  # noqa: E402
import keras_impl  # noqa: E402
import parity  # noqa: E402
import torch_impl  # noqa: E402
from keras_impl import layer_name  # noqa: E402
from parity.__main__ import main  # noqa: E402
from parity.comparison.compare import to_nhwc  # noqa: E402
from parity.comparison.features import compare_features  # noqa: E402

TOLERANCE = 1e-5  # max abs error relative to the torch map's scale


def spec_of(name: str) -> cnnspec.ModelSpec:
    return small_vit_spec() if name == "small_vit" else cnnspec.get(name)


def pair(name: str, seed: int = 1):
    """A torch model with random weights and BatchNorm statistics, eval mode, and its Keras twin
    (include_top=False, at the family's small side) with the weights transferred."""
    spec = spec_of(name)
    side = FAMILIES[name]
    torch_model = torch_impl.SpecModel(spec)
    parity.randomise_torch(torch_model, seed)
    torch_model.eval()
    keras_model = keras_impl.build_model(spec, include_top=False, input_shape=(side, side, spec.input_size[0]))
    if name == "small_vit":  # a spec the registry does not know: the transfer looks its name up
        keras_model = keras_impl.build_model(
            spec, include_top=True, input_shape=(side, side, 3), classifier_activation=None
        )
        _copy_by_spec(torch_model, keras_model)
    else:
        parity.transfer_weights(torch_model, keras_model)
    return torch_model, keras_model


@functools.cache
def cached_pair(name: str):
    return pair(name)


def _copy_by_spec(torch_model, keras_model) -> None:
    """The registered transfer, for a spec outside the registry (the small ViT)."""
    from parity.weights import copying

    copying._torch_to_keras(torch_model, keras_model)


def images(name: str, batch: int = 2, seed: int = 0) -> np.ndarray:
    side = FAMILIES[name]
    c = spec_of(name).input_size[0]
    return np.random.default_rng(seed).standard_normal((batch, c, side, side)).astype(np.float32)


def torch_maps(torch_model, x: np.ndarray, out_indices=None) -> list[np.ndarray]:
    with torch.no_grad():
        return [to_nhwc(m.numpy()) for m in torch_impl.features_only(torch_model, out_indices)(torch.from_numpy(x))]


def keras_maps(model, x: np.ndarray) -> list[np.ndarray]:
    out = model(to_nhwc(x), training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in out]


def rel(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / np.abs(a).max())


# ------------------------------------------------------------------------------------- agreement
@pytest.mark.parametrize("name", list(FAMILIES))
def test_keras_pyramid_equals_torch_after_transfer(name):
    torch_model, keras_model = cached_pair(name)
    x = images(name)
    backbone = keras_impl.features_only(keras_model, spec=torch_model.spec)
    reference = torch_maps(torch_model, x)
    ours = keras_maps(backbone, x)
    assert len(ours) == len(reference) == len(backbone.feature_info)
    errors = [rel(t, k) for t, k in zip(reference, ours)]
    assert max(errors) <= TOLERANCE, errors
    assert backbone.feature_info.channels() == torch_impl.features_only(torch_model).feature_info.channels()
    assert [m.shape[-1] for m in ours] == backbone.feature_info.channels()
    report = compare_features(torch_model, keras_model, x)
    assert report.passed and report.first_divergence is None and len(report.layers) == len(reference)


def test_vit_levels_are_token_maps_on_the_patch_grid():
    torch_model, keras_model = cached_pair("small_vit")
    backbone = keras_impl.features_only(keras_model, out_indices=(-1,), spec=torch_model.spec)
    assert tuple(backbone.outputs[0].shape) == (None, 4, 4, 64)  # 32 / 8 patches a side, NHWC
    assert backbone.layers[-1].name.endswith("_map")


def test_get_model_features_only_loads_weights_and_selects_levels(tmp_path):
    torch_model, keras_model = cached_pair("resnet18")
    path = tmp_path / "resnet18.weights.h5"
    keras_model.save_weights(path)
    backbone = keras_impl.get_model(
        "resnet18", weights=str(path), input_shape=(64, 64, 3), features_only=True, out_indices=(1, -1)
    )
    assert backbone.feature_info.channels() == [64, 512] and backbone.feature_info.module_name() == ["layer1", "layer4"]
    assert backbone.output_names == ["layer1", "layer4"]  # the stage's module name where Keras allows
    x = images("resnet18")
    errors = [rel(t, k) for t, k in zip(torch_maps(torch_model, x, (1, -1)), keras_maps(backbone, x))]
    assert max(errors) <= TOLERANCE, errors
    factory = keras_impl.resnet18(weights=None, include_top=False, features_only=True, out_indices=2)
    assert factory.feature_info.channels() == [256, 512] and len(factory.outputs) == 2
    assert [tuple(o.shape) for o in factory.outputs] == [(None, None, None, 256), (None, None, None, 512)]


def test_feature_extractor_returns_named_maps_as_torch():
    torch_model, keras_model = cached_pair("resnet18")
    names = ["layer2.1", "layer1", "layer3.0.conv1", "relu"]
    x = images("resnet18")
    extractor = keras_impl.feature_extractor(keras_model, names)
    ours = extractor(to_nhwc(x), training=False)
    assert list(ours) == names
    with torch.no_grad():
        theirs = torch_impl.feature_extractor(torch_model, names)(torch.from_numpy(x))
    for name in names:
        assert rel(to_nhwc(theirs[name].numpy()), np.asarray(ours[name])) <= TOLERANCE, name


# ------------------------------------------------------------------------------------------ twins
def test_swapped_levels_fail_the_comparison():
    torch_model, keras_model = cached_pair("vgg11_bn")
    backbone = keras_impl.features_only(keras_model)
    swapped = type(backbone)(backbone.inputs[0], [backbone.outputs[1], backbone.outputs[0], *backbone.outputs[2:]])
    report = compare_features(torch_model, keras_model, images("vgg11_bn"), keras_features=swapped)
    assert not report.passed and report.first_divergence.name == backbone.feature_info.module_name()[0]


def test_a_perturbed_weight_fails_at_its_level():
    torch_model, keras_model = pair("resnet18", seed=5)
    layer = keras_model.get_layer(layer_name("layer3.0.conv1"))
    kernel = layer.get_weights()[0].copy()
    kernel *= 1.001  # one conv, 0.1% off (a single channel may be one the ReLU after it always zeroes)
    layer.set_weights([kernel])
    report = compare_features(torch_model, keras_model, images("resnet18"))
    assert not report.passed and report.first_divergence.name == "layer3"
    assert [f.passed for f in report.layers] == [True, True, True, False, False]


# ------------------------------------------------------------------------------- one-line errors
def test_misspelt_name_is_one_line_naming_the_closest():
    _, keras_model = cached_pair("resnet18")
    with pytest.raises(ValueError) as err:
        keras_impl.feature_extractor(keras_model, ["layer2.1.cnv1"])
    assert "\n" not in str(err.value) and "closest is 'layer2.1.conv1'" in str(err.value)


@pytest.mark.parametrize("bad", [(7,), 0, "a", ()])
def test_bad_out_indices_is_one_line(bad):
    with pytest.raises(ValueError) as err:
        keras_impl.get_model("resnet18", features_only=True, out_indices=bad)
    assert "\n" not in str(err.value) and "resnet18 has 5 feature levels" in str(err.value)
    with pytest.raises(ValueError, match="pass features_only=True"):
        keras_impl.get_model("resnet18", out_indices=(1,))


def test_constructors_take_the_pyramid_keywords():
    for constructor in (keras_impl.ResNet50, keras_impl.resnet18, keras_impl.VGG16):
        params = inspect.signature(constructor).parameters
        assert params["features_only"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["features_only"].annotation == "bool" and params["features_only"].default is False
        assert params["out_indices"].annotation == "int | Sequence[int] | None"


# ----------------------------------------------------------------------------------------- CLI
def test_cli_features_prints_one_row_per_level_and_fails_a_twin(capsys):
    assert main(["check", "lenet5", "--features", "--no-onnx", "--direction", "torch2keras"]) == 0
    out = capsys.readouterr().out
    assert "first divergence: none" in out
    for module in cnnspec.feature_info(cnnspec.get("lenet5")).module_name():
        assert f"    {module} " in out
    # the twin: no tolerance at all, which float32 arithmetic in two frameworks cannot meet
    assert main(["check", "lenet5", "--features", "--no-onnx", "--direction", "torch2keras", "--rtol", "0"]) == 1
    assert "first divergence: features.1" in capsys.readouterr().out


def test_cli_features_on_every_backend(tmp_path, capsys):
    """resnet18 (BatchNorm, residual sums) at 64x64 on each installed Keras backend, the others in
    subprocesses: every level within 1e-5."""
    out = tmp_path / "features.json"
    argv = ["check", "resnet18", "--size", "64", "--features", "--no-onnx", "--direction", "torch2keras"]
    assert main([*argv, "--all-backends", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    backends = summary.get("backends") or {summary["keras_backend"]: summary}
    for backend, result in backends.items():
        (report,) = [r for r in result["results"][0]["reports"] if r["label"].endswith("features")]
        assert report["passed"] and len(report["layers"]) == 5, backend
        assert max(level["max_rel"] for level in report["layers"]) <= TOLERANCE, backend
    print(capsys.readouterr().out)
