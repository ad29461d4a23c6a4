"""parity: transfer both ways, compare by layer, and a deliberately broken twin for each convention."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import torch
import torchvision
from conftest import model_params, small_options

import cnnspec
import keras_impl
import parity
import torch_impl
from keras_impl import builder as keras_builder
from keras_impl import layer_name
from parity.comparison.check import check
from parity.comparison.compare import figures, to_nhwc
from parity.twins import build_pair


def small_size(name):
    spec = cnnspec.get(name, **small_options(name))
    return tuple(spec.input_size[1:]) if spec.fixed_input else (72, 64)


def inputs_for(name, size, batch=2, seed=0):
    c = cnnspec.get(name).input_size[0]
    return np.random.default_rng(seed).standard_normal((batch, c, *size)).astype(np.float32)


def transferred_pair(name, size, seed=1, keras_spec=None, **options):
    torch_model, keras_model = build_pair(name, size, **options)
    if keras_spec is not None:  # a keras model built from a deliberately different spec
        keras_model = keras_impl.build_model(
            keras_spec, input_shape=(*size, keras_spec.input_size[0]), classifier_activation=None
        )
    parity.randomise_torch(torch_model, seed)
    parity.transfer_weights(torch_model, keras_model)
    return torch_model, keras_model


# ------------------------------------------------------------------------------------------ passing
@pytest.mark.parametrize("name", cnnspec.names())
def test_check_passes_at_a_small_size_both_directions(name):
    result = check(name, size=small_size(name), direction="both", options=small_options(name))
    assert [r.label for r in result.reports] == ["torch -> keras", "keras -> torch"]
    for r in result.reports:
        assert r.passed and r.output.max_rel <= 1e-5 and r.output.top1 == 1.0, r.to_dict()["output"]


@pytest.mark.parametrize("name", model_params(cnnspec.names()))
def test_check_passes_at_the_default_size(name):
    result = check(name, batch=1, direction="torch2keras")
    assert result.passed and result.input_shape[2:] == cnnspec.get(name).input_size[1:]


@pytest.mark.parametrize("name", model_params(cnnspec.names()))
def test_round_trip_torch_keras_torch_is_bit_identical(name):
    options = {"aux_logits": True} if name == "googlenet" else {}
    first = parity.randomise_torch(torch_impl.get_model(name, init_weights=False, **options), seed=3)
    keras_model = keras_impl.get_model(name, classifier_activation=None, **options)
    second = parity.randomise_torch(torch_impl.get_model(name, init_weights=False, **options), seed=4)
    assert parity.transfer_weights(first, keras_model) == len(parity.layer_mappings(first.spec))
    parity.transfer_weights(keras_model, second)
    a, b = first.state_dict(), second.state_dict()
    assert list(a) == list(b)
    for key in a:
        if not key.endswith("num_batches_tracked"):  # no Keras counterpart (documented)
            assert torch.equal(a[key], b[key]), key


def test_layer_report_names_every_node_and_no_divergence():
    torch_model, keras_model = transferred_pair("googlenet", (96, 96))
    report = parity.compare(torch_model, keras_model, inputs_for("googlenet", (96, 96)), layers=True)
    names = [f.name for f in report.layers]
    assert "inception3a" in names and "inception3a.branch4.0" in names and names[-1] == "fc"
    assert report.passed and report.first_divergence is None


def test_transfer_to_a_headless_keras_model_copies_the_backbone():
    torch_model = parity.randomise_torch(torch_impl.resnet18(), seed=2).eval()
    backbone = keras_impl.resnet18(include_top=False, pooling="avg")
    parity.transfer_weights(torch_model, backbone)
    x = inputs_for("resnet18", (64, 64))
    with torch.no_grad():
        expected = torch.flatten(torch_model.avgpool(torch_model.forward_features(torch.from_numpy(x))), 1).numpy()
    assert figures("pooled", expected, np.asarray(backbone(to_nhwc(x))), 1e-5, 0).passed


# ------------------------------------------------------------------------------------------ failing
def test_mismatched_pairs_raise_and_copy_nothing():
    keras_model = keras_impl.resnet34(classifier_activation=None)
    before = [w.copy() for w in keras_model.get_weights()]
    with pytest.raises(parity.TransferError, match="layer1.2.conv1|layer2.0.conv1|does not fit|no counterpart"):
        parity.transfer_weights(torch_impl.resnet18(), keras_model)
    with pytest.raises(parity.TransferError, match=r"layer 'fc' does not fit"):
        parity.transfer_weights(torch_impl.resnet34(num_classes=10), keras_model)
    assert all(np.array_equal(a, b) for a, b in zip(before, keras_model.get_weights()))
    with pytest.raises(TypeError, match="one torch_impl model and one keras_impl model"):
        parity.transfer_weights(torch_impl.resnet18(), torch_impl.resnet18())


def broken_report(name, size, breaker=None, keras_spec=None, **options):
    torch_model, keras_model = transferred_pair(name, size, keras_spec=keras_spec, **options)
    if breaker is not None:
        breaker(torch_model, keras_model)
    report = parity.compare(torch_model, keras_model, inputs_for(name, size), layers=True)
    return report


def set_keras(keras_model, path, fn):
    layer = keras_model.get_layer(layer_name(path))
    layer.set_weights([fn(i, w) for i, w in enumerate(layer.get_weights())])


@pytest.mark.parametrize("name,path", [("resnet18", "conv1"), ("vgg11_bn", "features.0"), ("googlenet", "conv1.conv")])
def test_perturbing_one_weight_by_1e_3_is_caught_at_that_layer(name, path):
    # a first-layer weight: its input (the image) is never all zero, so the change must show
    def perturb(torch_model, keras_model):
        def fn(i, w):
            if i == 0:
                w = w.copy()
                w[w.shape[0] // 2, w.shape[1] // 2, 0, 0] += 1e-3
            return w

        set_keras(keras_model, path, fn)

    report = broken_report(name, (64, 64), perturb)
    assert not report.passed and report.first_divergence.name == path


def test_wrong_conv_kernel_layout_is_caught():
    # (kh, kw) swapped: transpose (3, 2, 1, 0) style mistake on one 3x3 kernel
    report = broken_report(
        "vgg11",
        (64, 64),
        lambda t, k: set_keras(k, "features.3", lambda i, w: w.transpose(1, 0, 2, 3) if i == 0 else w),
    )
    assert not report.passed and report.first_divergence.name == "features.3"


def test_untransposed_square_linear_is_caught():
    report = broken_report(
        "alexnet", (96, 96), lambda t, k: set_keras(k, "classifier.4", lambda i, w: w.T if i == 0 else w)
    )
    assert not report.passed and report.first_divergence.name == "classifier.4"


@pytest.mark.parametrize(
    "name,first_linear", [("alexnet", "classifier.1"), ("vgg11", "classifier.0"), ("lenet5", None)]
)
def test_skipping_the_flatten_permutation_is_caught(name, first_linear, monkeypatch):
    size = small_size(name)
    original = parity.weights.mapping.layer_mappings

    def without_permutation(spec, include_aux=True):
        from dataclasses import replace

        return [replace(m, flatten_from=None) for m in original(spec, include_aux)]

    monkeypatch.setattr(parity.weights.copying, "layer_mappings", without_permutation)
    report = broken_report(name, size)
    if first_linear is None:  # lenet5 flattens a 120x1x1 map: order does not matter, nothing breaks
        assert report.passed
    else:
        assert not report.passed and report.first_divergence.name == first_linear


def test_tf_same_padding_at_stride_2_is_caught(monkeypatch):
    def conv_same(node, x, path, ctx):
        return keras.layers.Conv2D(
            node.out,
            node.kernel,
            strides=node.stride,
            padding="same",
            use_bias=node.bias,
            groups=node.groups,
            name=layer_name(path),
        )(x)

    monkeypatch.setitem(keras_builder._BUILDERS, cnnspec.Conv, conv_same)
    report = broken_report("resnet18", (64, 64))
    assert not report.passed and report.first_divergence.name == "conv1"


def test_dropping_ceil_mode_is_caught():
    spec = cnnspec.get("googlenet", aux_logits=False)
    broken = cnnspec.replace_at(spec, "maxpool2", ceil_mode=False)
    # at 96x96 maxpool2 sees a 24x24 map: 12x12 with ceil mode, 11x11 without
    report = broken_report("googlenet", (96, 96), keras_spec=broken)
    assert not report.passed and report.first_divergence.name == "maxpool2"


def test_fixed_window_adaptive_pool_is_caught(monkeypatch):
    # alexnet at 351x351 has a 10x10 map before its 6x6 adaptive pool: fixed windows differ from torch's bins
    def fixed_window(node, x, path, ctx):
        k = x.shape[1] - node.output[0] + 1
        return keras.layers.AveragePooling2D(k, 1, name=layer_name(path))(x)

    monkeypatch.setitem(keras_builder._BUILDERS, cnnspec.AdaptiveAvgPool, fixed_window)
    torch_model, keras_model = transferred_pair("alexnet", (351, 351))
    report = parity.compare(torch_model, keras_model, inputs_for("alexnet", (351, 351), batch=1), layers=True)
    assert not report.passed and report.first_divergence.name == "avgpool"


def test_batchnorm_eps_mismatch_is_caught():
    spec = cnnspec.get("vgg11_bn")
    broken = cnnspec.replace_at(spec, "features.5", eps=1e-3)  # Keras' default instead of torch's
    report = broken_report("vgg11_bn", (64, 64), keras_spec=broken)
    assert not report.passed and report.first_divergence.name == "features.5"


def _bn_update(keras_momentum=None):
    """One training-mode forward in both frameworks; returns (torch, keras) running means of bn1."""
    torch_model, keras_model = transferred_pair("resnet18", (32, 32))
    if keras_momentum is not None:
        keras_model.get_layer("bn1").momentum = keras_momentum
    x = inputs_for("resnet18", (32, 32), batch=4)
    torch_model.train()
    with torch.no_grad():
        torch_model(torch.from_numpy(x))
    keras_model(to_nhwc(x), training=True)
    return torch_model.bn1.running_mean.numpy(), np.asarray(keras_model.get_layer("bn1").moving_mean)


def test_batchnorm_momentum_conversion_is_checked():
    t, k = _bn_update()
    assert figures("bn1.running_mean", t, k, 1e-5, 1e-7).passed  # keras momentum = 1 - torch momentum
    t, k = _bn_update(keras_momentum=0.1)  # torch's number used as is
    assert not figures("bn1.running_mean", t, k, 1e-5, 1e-7).passed


def test_lrn_alpha_convention_is_caught():
    spec = cnnspec.get("alexnet_original")
    alpha = spec.node("features.2").alpha
    broken = cnnspec.replace_at(spec, "features.2", alpha=alpha * 5)  # TF's convention: alpha not divided by size
    report = broken_report("alexnet_original", (227, 227), keras_spec=broken)
    assert not report.passed and report.first_divergence.name == "features.2"


def test_nan_never_passes():
    a = np.ones((2, 10))
    b = a.copy()
    b[0, 3] = np.nan
    assert not figures("x", a, b, 1e-5, 0, classes=True).passed
    assert not figures("x", b, b, 1e-5, 0, classes=True).passed
    assert not figures("x", a * np.inf, a * np.inf, 1e-5, 0).passed

    def poison(torch_model, keras_model):
        set_keras(keras_model, "features.0", lambda i, w: np.full_like(w, np.nan) if i == 1 else w)

    report = broken_report("lenet5", (32, 32), poison)
    assert not report.passed and not report.output.finite and report.first_divergence.name == "features.0"


def test_compare_refuses_softmax_outputs_and_bad_inputs():
    torch_model = torch_impl.lenet5()
    with pytest.raises(ValueError, match="classifier_activation=None"):
        parity.compare(torch_model, keras_impl.lenet5(), inputs_for("lenet5", (32, 32)))
    with pytest.raises(ValueError, match=r"expected inputs of shape \(N, 1, H, W\)"):
        parity.compare(torch_model, keras_impl.lenet5(classifier_activation=None), np.zeros((2, 32, 32, 1), np.float32))
    keras_model = keras_impl.lenet5(classifier_activation=None)
    with pytest.raises(ValueError, match="expected at least one image, received an empty batch"):
        parity.compare(torch_model, keras_model, np.zeros((0, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="expected finite inputs, received 32 NaN/Inf"):
        parity.compare(
            torch_model,
            keras_model,
            np.where(np.arange(32) == 3, np.nan, 0).astype(np.float32) * np.ones((1, 1, 32, 32), np.float32),
        )
    with pytest.raises(ValueError, match="only takes 32x32"):
        parity.compare(torch_model, keras_model, np.zeros((1, 1, 28, 28), np.float32))


def test_empty_arrays_never_pass():
    empty = np.zeros((0, 10))
    assert not figures("x", empty, empty, 1e-5, 0).passed
    assert not figures("x", empty, empty, 1e-5, 0, classes=True).passed


# ------------------------------------------------------------------------------------------ files and CLI
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "parity", *args], capture_output=True, text=True)


def test_convert_torchvision_checkpoint_to_keras_and_back(tmp_path):
    tv = parity.randomise_torch(torchvision.models.resnet18(weights=None, num_classes=7), seed=5).eval()
    pth = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), pth)
    h5 = tmp_path / "resnet18.weights.h5"
    proc = run_cli("convert", "--model", "resnet18", str(pth), str(h5))
    assert proc.returncode == 0, proc.stderr
    keras_model = keras_impl.resnet18(weights=h5, classes=7, classifier_activation=None, input_shape=(80, 80, 3))
    x = inputs_for("resnet18", (80, 80))
    with torch.no_grad():
        expected = tv(torch.from_numpy(x)).numpy()
    assert figures("logits", expected, np.asarray(keras_model(to_nhwc(x))), 1e-5, 0, classes=True).passed
    back = tmp_path / "back.safetensors"
    from parity.weights.convert import convert

    convert("resnet18", h5, back)
    again = torch_impl.resnet18(weights=back, num_classes=7).eval()
    for key, value in tv.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, again.state_dict()[key]), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.safetensors", "resnet18.pth", "resnet18.weights.h5"]


def test_convert_errors_leave_no_file(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    proc = run_cli("convert", "--model", "resnet18", str(bad), str(tmp_path / "out.weights.h5"))
    assert proc.returncode == 2 and "weights_only=True" in proc.stderr
    proc = run_cli("convert", "--model", "resnet18", str(bad), str(tmp_path / "out.onnx"))
    assert proc.returncode == 2 and "expected a torch checkpoint" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["bad.pth"]


def test_cli_check_json_and_exit_codes(tmp_path, capsys):
    """The command as users run it (a process of its own) passes; a failed check exits 1 and an
    unknown model 2 (the same entry point, in this process: each new process costs both frameworks' imports)."""
    from parity.__main__ import main

    out = tmp_path / "result.json"
    proc = run_cli("check", "lenet5", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout and "1/1 models agree" in proc.stdout
    data = json.loads(out.read_text())
    assert data["passed"] and data["results"][0]["reports"][0]["output"]["top1"] == 1.0
    capsys.readouterr()
    strict = ["check", "resnet18", "--size", "32", "--rtol", "1e-12", "--layers", "--direction", "torch2keras"]
    assert main([*strict, "--no-onnx"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL" in printed and "first divergence" in printed
    with pytest.raises(SystemExit) as exited:  # argparse's choices
        main(["check", "resnet17"])
    assert exited.value.code == 2 and "resnet17" in capsys.readouterr().err


def test_cli_check_with_a_torchvision_checkpoint(tmp_path):
    tv = parity.randomise_torch(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False), seed=6)
    path = tmp_path / "googlenet.pth"
    torch.save(tv.state_dict(), path)
    proc = run_cli("check", "googlenet", "--weights", str(path), "--size", "96", "--no-onnx")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_list_and_side_by_side_summary():
    assert "vgg19_bn" in run_cli("list").stdout
    proc = run_cli("summary", "alexnet_original")
    assert proc.returncode == 0, proc.stderr
    assert "features.2" in proc.stdout and "all layers agree" in proc.stdout


# ------------------------------------------- the conventions MobileNetV2 and EfficientNet bring
SE = "features.1.0.block.1"  # efficientnet_b0's first squeeze-and-excitation gate


def test_se_gate_placement_is_caught():
    """The sigmoid closes the gate after fc2; a Keras twin that applies it before fc2 diverges at fc2."""
    spec = cnnspec.get("efficientnet_b0")
    gate = spec.node(SE)
    order = {c.name: c for c in gate.body}
    moved = tuple(order[k] for k in ("avgpool", "fc1", "activation", "scale_activation", "fc2"))
    broken = cnnspec.map_nodes(spec, lambda p, node: cnnspec.Gate(body=moved, name=node.name) if p == SE else node)
    report = broken_report("efficientnet_b0", (64, 64), keras_spec=broken)
    assert not report.passed and report.first_divergence.name == f"{SE}.fc2"


def test_se_gate_that_adds_instead_of_scaling_is_caught(monkeypatch):
    def additive_gate(node, x, path, ctx):
        gate = x
        for child in node.body:
            gate = keras_builder.build_node(child, gate, f"{path}.{child.name}", ctx)
        return keras.layers.Add(name=layer_name(path))([x, gate])

    monkeypatch.setitem(keras_builder._BUILDERS, cnnspec.Gate, additive_gate)
    report = broken_report("efficientnet_b0", (64, 64))
    assert not report.passed and report.first_divergence.name == SE


def test_relu6_without_its_cap_is_caught(monkeypatch):
    monkeypatch.setitem(
        keras_builder._BUILDERS, cnnspec.ReLU6, lambda node, x, path, ctx: keras.layers.ReLU(name=layer_name(path))(x)
    )
    torch_model, keras_model = transferred_pair("mobilenet_v2", (64, 64))
    report = parity.compare(
        torch_model, keras_model, 100 * inputs_for("mobilenet_v2", (64, 64)), layers=True
    )  # activations beyond 6
    assert not report.passed and report.first_divergence.name == "features.0.2"


def test_depthwise_kernels_in_a_plain_conv_layout_do_not_transfer(monkeypatch):
    """torch's (C, 1, kh, kw) goes to DepthwiseConv2D's (kh, kw, C, 1); the plain conv transpose
    would give (kh, kw, 1, C): the transfer refuses it at the first depthwise layer."""
    monkeypatch.setitem(parity.weights.mapping.KERAS_AXES, "depthwise", (2, 3, 1, 0))
    torch_model, keras_model = build_pair("mobilenet_v2", (64, 64))
    with pytest.raises(parity.TransferError, match=r"features\.0\.0|features\.1\.conv\.0\.0"):
        parity.transfer_weights(torch_model, keras_model)


def test_mobilenet_linear_bottleneck_has_no_activation_after_the_sum():
    """torchvision's inverted residual returns x + conv(x): a ReLU6 after the sum (ResNet's habit) diverges at that
    block."""
    spec = cnnspec.get("mobilenet_v2")
    from dataclasses import replace

    block = "features.3"  # the first residual block (24 -> 24 channels, stride 1)
    assert isinstance(spec.node(block), cnnspec.Residual) and spec.node(block).post is None
    broken = cnnspec.map_nodes(
        spec, lambda p, node: replace(node, post=cnnspec.ReLU6(name="relu")) if p == block else node
    )
    torch_model, keras_model = transferred_pair("mobilenet_v2", (64, 64), keras_spec=broken)
    report = parity.compare(torch_model, keras_model, inputs_for("mobilenet_v2", (64, 64)), layers=True)
    assert not report.passed and report.first_divergence.name.startswith("features.4")


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_is_the_identity_in_inference_and_torchvisions_rule_in_training(mode):
    from torchvision.ops import StochasticDepth as Reference

    from torch_impl.layers import StochasticDepth

    x = torch.randn(4000, 3, 2, 2)
    ours, reference = StochasticDepth(0.3, mode), Reference(0.3, mode)
    assert torch.equal(ours.eval()(x), x)
    torch.manual_seed(5)
    expected = reference.train()(x)
    torch.manual_seed(5)
    assert torch.equal(ours.train()(x), expected)  # the same draws, the same scaling

    layer = keras_impl.StochasticDepth(0.3, mode, seed=5)
    assert np.array_equal(
        np.asarray(layer(x.permute(0, 2, 3, 1).numpy(), training=False)), x.permute(0, 2, 3, 1).numpy()
    )
    out = np.asarray(layer(np.ones((4000, 2, 2, 3), np.float32), training=True))
    assert np.all((out == 0) | np.isclose(out, 1 / 0.7, rtol=1e-6))  # survivors scaled by 1 / (1 - p)
    if mode == "row":  # whole samples: each row is all kept or all dropped, about 30% dropped
        rows = out.reshape(4000, -1)
        assert (rows.min(1) == rows.max(1)).all() and abs((rows[:, 0] == 0).mean() - 0.3) < 0.05
