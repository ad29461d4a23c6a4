"""parity.check_training: both frameworks take the same optimizer steps, and each training convention,
broken on purpose, makes the check fail at the first layer it touches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import small_options

import cnnspec
from parity.training.steps import OPTIMIZERS, check_training, compare_training, input_size, training_pair

# A plain CNN, GoogLeNet with both auxiliary heads, and ResNet at a small size with every
# optimizer; the rest of the 17 (VGG's 100 M-parameter classifier is slow in float64) under the slow mark.
FAST = ["lenet5", "googlenet", "resnet18"]
SIZES = {
    "vgg11_bn": (32, 32),
    "vgg11": (32, 32),
    "vgg13": (32, 32),
    "vgg13_bn": (32, 32),
    "vgg16": (32, 32),
    "vgg16_bn": (32, 32),
    "vgg19": (32, 32),
    "vgg19_bn": (32, 32),
    # below their default training size (96: parity.training.steps.input_size) for CI's time; both agree to 1e-9 here
    "resnet18": (64, 64),
    "googlenet": (64, 64),
}


def batch_for(name, size, batch=4, seed=10):
    spec = cnnspec.get(name)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, spec.input_size[0], *size)).astype(np.float32)
    return x, rng.integers(0, spec.num_classes, size=batch)


# Every optimizer on lenet5 and resnet18; GoogLeNet (both aux heads) with SGD; the other
# GoogLeNet pairs under the slow mark (the CI budget).
MATRIX = (
    [(name, opt) for name in ("lenet5", "resnet18") for opt in OPTIMIZERS]
    + [("googlenet", "sgd")]
    + [pytest.param("googlenet", opt, marks=pytest.mark.slow) for opt in ("adam", "adamw")]
)


@pytest.mark.parametrize("name,optimizer", MATRIX)
def test_three_steps_agree(name, optimizer):
    report = check_training(name, optimizer, size=SIZES.get(name))
    assert report.passed, (report.first_divergence, report.worst())
    kinds = report.worst()
    assert set(kinds) >= {"loss", "grad", "param"} and all(v <= 1e-5 for v in kinds.values()), kinds
    # float64 agrees to rounding: a float32 leak (a hyper-parameter rounded to float32, a Keras op
    # computing in float32) shows as 1e-8..1e-6 and passes 1e-5, so the bound here is tighter
    assert all(v <= 2e-9 for k, v in kinds.items() if k != "param"), (
        kinds
    )  # measured worst 8.4e-10 (googlenet adamw grad)
    # Adam's step m / (sqrt(v) + eps) turns the rounding of a near-zero gradient into a visible
    # step difference: measured worst 1.75e-8 (googlenet adamw, aux2.fc1.weight, step 3); SGD's is linear
    assert kinds["param"] <= (2e-9 if optimizer == "sgd" else 5e-8), kinds
    assert len(report.losses) == 3
    if name == "googlenet":  # the auxiliary heads train too (weighted 0.3)
        assert any(f.name.startswith("grad aux1.fc2.weight") for f in report.rows)


def memory_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            return int(next(line for line in f if line.startswith("MemTotal")).split()[1]) / 2**20
    except (OSError, StopIteration, ValueError):  # not Linux: assume enough
        return float("inf")


# Every commit: one model per family and node kind that FAST does not train (LRN, depthwise and
# ReLU6, squeeze-and-excitation and stochastic depth, the bottleneck, VGG's deep conv stack, the
# transformer), at a small size. A float64 training check holds the weights about ten times over
# (both frameworks, gradients, momentum, the comparison's copies): AlexNet's and VGG's 4096-wide
# hidden layers (58 M and 119 M parameters) are what make it slow and big, so they train here
# 256 wide, every other layer and every convention (the flatten of a CxHxW map into a Linear)
# as it is; the full run (--full) trains them at full width below.
def narrow_classifier(name: str, width: int = 256) -> cnnspec.ModelSpec:
    """``name``'s spec with every hidden Linear ``width`` wide (the output layer keeps its classes)."""
    spec = cnnspec.get(name)
    return cnnspec.map_nodes(
        spec,
        lambda path, node: (
            replace(node, out=width) if isinstance(node, cnnspec.Linear) and path != spec.classifier else node
        ),
    )


FAMILIES = {
    "alexnet": (64, 64),
    "alexnet_original": None,
    "vgg16_bn": (64, 64),  # narrow classifiers
    "mobilenet_v2": (64, 64),
    "efficientnet_b0": (64, 64),
    "resnet50": (64, 64),
}
NARROW = {"alexnet", "alexnet_original", "vgg16_bn"}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_agrees_with_sgd_at_a_small_size(name):
    spec = narrow_classifier(name) if name in NARROW else None
    report = check_training(name, "sgd", size=FAMILIES[name], spec=spec)
    assert report.passed, (report.first_divergence, report.worst())
    # float64 rounding only (a float32 leak shows as 1e-8 and more); measured worst: vgg16_bn's grads, 2.5e-9
    assert all(v <= 5e-9 for v in report.worst().values()), report.worst()
    if name in NARROW:  # the first Linear after the flatten trained too
        first = next(p for p, node in spec.walk() if isinstance(node, cnnspec.Linear))
        assert any(f.name.startswith(f"grad {first}.weight") for f in report.rows)


def test_twin_a_flatten_in_torch_order_is_caught_at_the_first_linear():
    from keras_impl import layer_name
    from parity.training.steps import compare_training, training_pair

    torch_model, keras_model = training_pair("vgg16_bn", (64, 64), spec=narrow_classifier("vgg16_bn"))
    layer = keras_model.get_layer(layer_name("classifier.0"))
    kernel, bias = layer.get_weights()
    # the rows of the first Linear taken in torch's C,H,W order instead of Keras' H,W,C
    layer.set_weights([kernel.reshape(7, 7, 512, -1).transpose(2, 0, 1, 3).reshape(kernel.shape), bias])
    x, y = batch_for("vgg16_bn", (64, 64))
    report = compare_training(torch_model, keras_model, x, y, "sgd", steps=1)
    assert not report.passed and report.first_divergence.name == "loss@1"  # the forward pass already differs
    failed = {f.name for f in report.rows if not f.passed}
    assert "grad classifier.0.weight@1" in failed, sorted(failed)[:10]


def test_a_small_vit_agrees_with_sgd():
    from cnnspec.models.vit import vision_transformer

    spec = vision_transformer(
        "small_vit", image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10
    )
    report = check_training("vit_b_16", "sgd", spec=spec)
    assert report.passed, (report.first_divergence, report.worst())
    assert any(
        f.name.startswith("grad encoder.layers.encoder_layer_0.self_attention.in_proj_weight") for f in report.rows
    )


# The full run (--full): every other model at its own size. A full-width VGG's 123 M-parameter
# classifier in float64, both frameworks, weights, gradients, momentum and the comparison's
# copies: vgg11 alone reached 16 GB and was OOM-killed on a 24 GB machine beside the other xdist
# worker (full run, 2026-12-06), so every full-width VGG needs a 32 GB machine (and then takes
# the most_of_the_memory lock); per commit the family trains with a narrow classifier above.
NEEDS_32GB = {"vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=pytest.mark.skipif(
                n in NEEDS_32GB and memory_gb() < 32, reason="float64 VGG training parity needs >= 32 GB"
            ),
        )
        for n in cnnspec.names()
        if n not in FAST
    ],
)
def test_every_other_model_agrees_with_sgd(name, request):
    if name.startswith("vgg"):
        request.getfixturevalue("most_of_the_memory")
    report = check_training(name, "sgd", size=SIZES.get(name), options=small_options(name))
    assert report.passed, (report.first_divergence, report.worst())


def test_default_size_gives_every_batchnorm_a_3x3_map():
    sizes = {
        name: input_size(cnnspec.get(name))
        for name in ("resnet18", "resnet152", "googlenet", "vgg16_bn", "alexnet", "lenet5")
    }
    # a ResNet's or GoogLeNet's last stage is 2x2 at 64 px; VGG's last BatchNorm sees 4x4 there
    assert sizes == {
        "resnet18": (96, 96),
        "resnet152": (96, 96),
        "googlenet": (96, 96),
        "vgg16_bn": (64, 64),
        "alexnet": (64, 64),
        "lenet5": (32, 32),
    }
    assert input_size(cnnspec.get("resnet18"), (48, 40)) == (48, 40)


@pytest.mark.slow
def test_the_deepest_resnet_agrees_with_adam_at_the_default_size():
    # at 64 px (a 2x2 last stage) this pair failed at 1.3e-5 by step 2; at the default 96 px: 3.2e-7
    report = check_training("resnet152", "adam")
    assert report.input_shape[2:] == (96, 96)
    assert report.passed, (report.first_divergence, report.worst())


# ------------------------------------------------------------------------------------------ twins
def _resnet_pair():
    size = (64, 64)
    torch_model, keras_model = training_pair("resnet18", size)
    return torch_model, keras_model, batch_for("resnet18", size)


def test_biased_running_variance_is_caught_at_that_layer():
    torch_model, keras_model, (x, y) = _resnet_pair()
    keras_model.get_layer("layer1_0_bn2").unbiased_running_variance = False  # Keras' own rule
    report = compare_training(torch_model, keras_model, x, y, "sgd", steps=1)
    assert not report.passed and report.first_divergence.name == "layer1.0.bn2.running_var@1"


def test_momentum_taken_as_is_is_caught_at_that_layer():
    torch_model, keras_model, (x, y) = _resnet_pair()
    keras_model.get_layer("layer2_0_bn1").momentum = 0.1  # torch's number, not 1 - it
    report = compare_training(torch_model, keras_model, x, y, "sgd", steps=1)
    assert not report.passed and report.first_divergence.name == "layer2.0.bn1.running_mean@1"


def test_keras_adam_epsilon_placement_is_caught_at_the_first_layer():
    import keras

    torch_model, keras_model, (x, y) = _resnet_pair()
    # Keras' Adam with torch's hyper-parameters: the only difference left is where epsilon goes
    report = compare_training(
        torch_model,
        keras_model,
        x,
        y,
        "adam",
        steps=1,
        weight_decay=0.0,
        keras_opt=keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-8),
    )
    assert not report.passed and report.first_divergence.name == "conv1.weight@1"


def test_keras_sgd_decoupled_weight_decay_is_caught():
    import keras

    torch_model, keras_model, (x, y) = _resnet_pair()
    # equal at step 1; from step 2 torch's momentum buffer carries the decay term, Keras' does not
    report = compare_training(
        torch_model,
        keras_model,
        x,
        y,
        "sgd",
        steps=2,
        weight_decay=0.05,
        keras_opt=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, weight_decay=0.05),
    )
    assert not report.passed and report.first_divergence.name.endswith("@2")


def test_bad_arguments_are_one_clear_error():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        check_training("lenet5", "rmsprop")
    with pytest.raises(ValueError, match="batch must be >= 2"):
        check_training("lenet5", batch=1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        check_training("lenet5", steps=0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        check_training("lenet5", dtype="float16")


def test_cli_train_prints_one_line_per_model_and_exit_status(capsys, tmp_path):
    from parity.__main__ import main

    out = tmp_path / "train.json"
    assert main(["check", "lenet5", "--train", "--steps", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lenet5" in printed and "PASS" in printed and "1/1 models train the same" in printed
    import json

    assert json.loads(out.read_text())["passed"] is True


@pytest.mark.parametrize("flags", [["--batch", "0"], ["--train", "--weights", "x.pth"]])
def test_cli_refuses_an_empty_batch_and_weights_with_train(flags):
    from parity.__main__ import main

    with pytest.raises(SystemExit) as err:
        main(["check", "lenet5", *flags])
    assert err.value.code == 2
