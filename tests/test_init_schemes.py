"""torchvision's initialisation schemes are written once (:mod:`cnnspec.init`) and both frameworks
draw what they say: every parameter of a model of each scheme, in torch and in Keras, is the
constant the scheme names or has the standard deviation of its normal or uniform."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cnnspec
import keras_impl
import torch_impl
from cnnspec import init as spec_init
from keras_impl.builder import layer_name

# one model per scheme, built small
MODELS = {
    "lenet5": {},
    "vgg11": {"num_classes": 10},
    "resnet18": {"num_classes": 10, "zero_init_residual": True},
    "googlenet": {"num_classes": 10, "aux_logits": False},
    "mobilenet_v2": {"num_classes": 10},
    "efficientnet_b0": {"num_classes": 10},
    "vit_b_16": {"num_classes": 10, "image_size": 32},
}
KERAS_NAMES = {"weight": ("kernel", "gamma", "depthwise_kernel"), "bias": ("bias", "beta")}


def torch_values(model, key: str) -> np.ndarray:
    return model.get_parameter(key).detach().numpy()


def keras_values(model, path: str, node, name: str) -> np.ndarray | None:
    """The Keras variable of a conv, linear or batch norm parameter (others are left to test_vit)."""
    if not isinstance(node, cnnspec.Conv | cnnspec.Linear | cnnspec.BatchNorm):
        return None
    layer = model.get_layer(layer_name(path))
    for variable in layer.weights:
        if variable.path.split("/")[-1] in KERAS_NAMES[name]:
            return np.asarray(variable)
    return None


def mismatch(draw: spec_init.Draw, values: np.ndarray) -> str | None:
    """Why ``values`` were not drawn as ``draw`` says, or None. Random draws are judged by their
    standard deviation on tensors large enough for it to settle (2,000 values: within 12%)."""
    if not np.isfinite(values).all():
        return "non-finite values"
    if draw.kind == "constant":
        return None if np.all(values == draw.scale) else f"expected all {draw.scale}, got std {values.std():.3g}"
    if values.size < 2000:
        return None
    expected = draw.scale if draw.kind == "normal" else draw.scale / math.sqrt(3.0)
    got = float(values.std())
    return None if abs(got - expected) <= 0.12 * expected else f"std {got:.4g}, expected {expected:.4g}"


def problems(name: str, options: dict) -> list[str]:
    torch_model = torch_impl.get_model(name, **options)
    size = torch_model.spec.input_size
    keras_model = keras_impl.get_model(name, input_shape=(*size[1:], size[0]), **options)
    spec = torch_model.spec
    widths = {p: info.in_features for p, info in cnnspec.analyse(spec).by_path().items()}
    found = []
    for path, node in spec.walk():
        for pname in spec_init.parameter_names(node):
            key = f"{path}.{pname}" if pname else path
            draw = spec_init.draw(spec, path, node, pname, widths[path])
            for side, values in (
                ("torch", torch_values(torch_model, key)),
                ("keras", keras_values(keras_model, path, node, pname) if pname in KERAS_NAMES else None),
            ):
                why = None if values is None else mismatch(draw, values)
                if why:
                    found.append(f"{side} {key}: {why}")
    return found


@pytest.mark.parametrize("name", MODELS)
def test_both_frameworks_draw_what_the_scheme_says(name: str) -> None:
    assert problems(name, MODELS[name]) == []


def test_a_scheme_changed_in_one_place_changes_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin: a new VGG linear rule, written only in cnnspec.init, reaches both frameworks."""
    original = spec_init.SCHEMES["vgg"]

    def wider(p: spec_init.Param):
        return spec_init.normal(0.05) if isinstance(p.node, cnnspec.Linear) and p.is_weight else original(p)

    monkeypatch.setitem(spec_init.SCHEMES, "vgg", wider)
    assert problems("vgg11", MODELS["vgg11"]) == []
    torch_model = torch_impl.get_model("vgg11", num_classes=10)
    assert 0.04 < float(torch_model.classifier[0].weight.detach().std()) < 0.06


def test_a_framework_that_draws_otherwise_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras_impl.builder as builder

    original = builder.keras_initializer
    monkeypatch.setattr(builder, "keras_initializer", lambda d: "ones" if d.kind == "constant" else original(d))
    found = problems("resnet18", MODELS["resnet18"])
    assert any(f.startswith("keras layer1.0.bn2.weight") for f in found), found  # zero_init_residual's zeros


def test_the_judge_refuses_nan_and_a_wrong_spread() -> None:
    rng = np.random.default_rng(0)
    assert mismatch(spec_init.normal(0.01), rng.normal(0, 0.01, 5000)) is None
    assert mismatch(spec_init.normal(0.01), rng.normal(0, 0.02, 5000))
    assert mismatch(spec_init.uniform(0.1), np.full(5000, np.nan))
    assert mismatch(spec_init.constant(0.0), np.zeros(3)) is None
    assert mismatch(spec_init.constant(0.0), np.array([0.0, 1e-9]))


def test_an_unknown_scheme_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown init scheme 'xavier'; expected one of \['default'"):
        spec_init.check_scheme("xavier")


# ----------------------------------------------------------------------- NumPy draws on jax
@pytest.fixture
def host_draws_everywhere(monkeypatch: pytest.MonkeyPatch):
    """keras_impl's jax path (NumPy draws, Keras' initialisers recorded) on whatever backend runs."""
    import keras

    import keras_impl.builder as builder
    from keras_impl.host_draws import DRAWN, HostDraw

    def wrap(initializer):
        initializer = keras.initializers.get(initializer)
        return HostDraw(initializer) if type(initializer) in DRAWN else initializer

    monkeypatch.setattr(builder, "on_host", wrap)


@pytest.mark.parametrize("name", ["googlenet", "vit_b_16"])  # truncated normals; attention's cloned initialisers
def test_numpy_draws_follow_the_scheme_and_leave_keras_own_initializers(name, host_draws_everywhere):
    import json

    assert problems(name, MODELS[name]) == []
    model = keras_impl.get_model(name, **MODELS[name])
    config = json.dumps(model.get_config())
    assert "HostDraw" not in config and ("TruncatedNormal" in config or "RandomNormal" in config)


def test_numpy_draws_are_keras_distributions_and_follow_set_random_seed() -> None:
    import keras

    from keras_impl.host_draws import HostDraw

    def draw(initializer, seed: int = 0) -> np.ndarray:
        keras.utils.set_random_seed(seed)
        return keras.ops.convert_to_numpy(HostDraw(initializer)((400, 500)))

    normal, uniform = (
        draw(keras.initializers.RandomNormal(0.5, 0.02)),
        draw(keras.initializers.RandomUniform(-0.3, 0.1)),
    )
    truncated = draw(keras.initializers.TruncatedNormal(0.0, 0.1))
    assert normal.dtype == np.float32 and abs(normal.mean() - 0.5) < 1e-3 and abs(normal.std() - 0.02) < 1e-3
    assert -0.3 <= uniform.min() < -0.299 and 0.099 < uniform.max() < 0.1 and abs(uniform.std() - 0.4 / 12**0.5) < 1e-3
    assert np.abs(truncated).max() <= 0.2 and abs(truncated.std() - 0.088) < 2e-3  # std of a 2-deviation cut
    assert np.array_equal(truncated, draw(keras.initializers.TruncatedNormal(0.0, 0.1)))  # the same seed
    assert not np.array_equal(truncated, draw(keras.initializers.TruncatedNormal(0.0, 0.1), seed=1))
    keras.utils.set_random_seed(3)
    expected = np.random.random_sample()
    keras.utils.set_random_seed(3)
    HostDraw(keras.initializers.RandomNormal(0.0, 1.0))((10, 10))
    assert np.random.random_sample() == expected  # a draw leaves NumPy's global stream alone
    again = HostDraw.from_config(HostDraw(keras.initializers.RandomNormal(0.5, 0.02)).get_config())
    assert again.equivalent.get_config() == keras.initializers.RandomNormal(0.5, 0.02).get_config()


def test_numpy_draws_serve_jax_only_and_the_record_is_what_tells() -> None:
    """On another backend Keras draws (no compilation per shape to save); the twin: a model whose
    HostDraws were not put back says so in its config."""
    import json

    import keras

    from keras_impl.host_draws import HostDraw, on_host

    normal = keras.initializers.RandomNormal(0.0, 0.01)
    assert (type(on_host(normal)) is HostDraw) is (keras.backend.backend() == "jax")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer=HostDraw(normal))(inputs))
    assert "HostDraw" in json.dumps(model.get_config())


def test_a_build_whose_weights_follow_draws_nothing_and_records_keras_initializers() -> None:
    """Inside ``weights_follow`` (parity's builds, whose every weight is transferred next) kernels
    start at zero and the config names Keras' own initialisers; outside, the same build draws; the
    twin: an ``Undrawn`` left in a layer shows in its config."""
    import json

    import keras

    from keras_impl.host_draws import Undrawn, on_host, weights_follow

    with weights_follow():
        model = keras_impl.get_model("vit_b_16", image_size=32, num_classes=10)  # attention clones its initialisers
        assert type(on_host(keras.initializers.RandomNormal(0.0, 0.01))) is Undrawn
    assert type(on_host(keras.initializers.RandomNormal(0.0, 0.01))) is not Undrawn  # the context ends
    kernels = [w for w in model.weights if w.path.endswith("kernel")]
    assert len(kernels) > 20 and all(not keras.ops.convert_to_numpy(w).any() for w in kernels)
    config = json.dumps(model.get_config())
    assert "Undrawn" not in config and ("TruncatedNormal" in config or "RandomNormal" in config)
    drawn = keras_impl.get_model("vit_b_16", image_size=32, num_classes=10)
    drawn_kernels = [keras.ops.convert_to_numpy(w) for w in drawn.weights if w.path.endswith("kernel")]
    assert sum(k.any() for k in drawn_kernels) == len(kernels) - 1  # all but the head, which the scheme zeroes
    inputs = keras.Input((4,))
    left = keras.Model(inputs, keras.layers.Dense(2, kernel_initializer=Undrawn("random_normal"))(inputs))
    assert "Undrawn" in json.dumps(left.get_config())


def test_a_rebuild_without_initializers_reads_back_every_weight(tmp_path):
    """keras_impl.weights.without_initializers (what parity's export children rebuild from): every
    initialiser of the config becomes zeros, and the weights file then gives back the model exactly.
    The twin: without the weights file the rebuilt kernels are zeros, not the model's."""
    import json

    import keras
    import numpy as np

    import keras_impl
    from keras_impl.weights import config_json, load_variables, save_variables, without_initializers

    model = keras_impl.resnet18(classes=5, input_shape=(32, 32, 3))
    save_variables(model, tmp_path / "w.safetensors")
    config = without_initializers(json.loads(config_json(model)))
    named = [
        v for layer in config["config"]["layers"] for k, v in layer["config"].items() if k.endswith("_initializer")
    ]
    assert named and all(v["class_name"] == "Zeros" for v in named)
    rebuilt = keras.models.model_from_json(json.dumps(config))
    assert not np.any(rebuilt.get_layer("conv1").get_weights()[0])
    load_variables(rebuilt, tmp_path / "w.safetensors")
    for a, b in zip(model.weights, rebuilt.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
