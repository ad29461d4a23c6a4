"""The int8 fast path (parity.onnx.int8): a torch_impl model's static int8 ONNX graph stays within
int8's own tolerance of float32 eager, on every CPU (onnxruntime runs the u8s8 kernels with or
without VNNI). Twins: a classifier changed after the export, and calibration on unnormalised
images (0-255, the classic mistake), both fail that tolerance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from benchmarks.measure import relative_error, top1_agreement
from parity.onnx.int8 import export_int8, int8_inference
from parity.weights.randomise import randomise_torch
from torch_impl import lenet5, resnet18
from torch_impl.fastpath import tolerance

SIZE = 32
MODELS = {"lenet5": lenet5, "resnet18": resnet18}  # no BatchNorm / folded BatchNorm, residual adds, pooling


def images(channels: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, channels, SIZE, SIZE)).astype(np.float32)


@pytest.fixture(scope="module", params=list(MODELS))
def quantized(request, tmp_path_factory):
    model = MODELS[request.param](num_classes=10).eval()
    randomise_torch(model, 0)  # random weights, BatchNorm statistics and affine parameters
    channels = model.spec.input_size[0]
    run = int8_inference(model, images(channels, 32, 0), workdir=tmp_path_factory.mktemp(request.param))
    return model, run, images(channels, 32, 1)


def logits(model, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


def accepted(out: np.ndarray, ref: np.ndarray) -> bool:
    return tolerance("int8").accepts(relative_error(out, ref), top1_agreement(out, ref))


def test_int8_agrees_with_float32_eager_within_its_tolerance(quantized):
    model, run, x = quantized
    out, ref = run(x), logits(model, x)
    assert accepted(out, ref), (relative_error(out, ref), top1_agreement(out, ref))
    assert relative_error(out, ref) > 1e-5  # it is really int8, not float32 under another name
    assert run(torch.from_numpy(x)).shape == out.shape  # torch tensors in, as fast_inference takes


def test_the_file_holds_int8_weights(quantized):
    import onnx

    _, run, _ = quantized
    graph = onnx.load(run.export.path).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops, ops
    assert any(i.data_type == onnx.TensorProto.INT8 for i in graph.initializer)
    assert run.export.size_mb < 0.4 * (sum(p.numel() for p in quantized[0].parameters()) * 4 / 1e6)


def test_a_classifier_changed_after_the_export_fails(quantized):
    model, run, x = quantized
    weight = model.get_parameter(f"{model.spec.classifier}.weight")  # changed in place, restored after
    saved = weight.data.clone()
    try:
        weight.data.neg_()
        assert not accepted(run(x), logits(model, x))
    finally:
        weight.data.copy_(saved)


def test_calibrating_on_unnormalised_images_fails(quantized, tmp_path):
    model, _, x = quantized
    wrong = np.clip(images(model.spec.input_size[0], 32, 0) * 64 + 128, 0, 255)  # pixel values, not normalised
    run = int8_inference(model, wrong, workdir=tmp_path)
    assert not accepted(run(x), logits(model, x))


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 1, SIZE, SIZE), np.float32), "non-empty"),
        (np.zeros((4, 3, SIZE, SIZE), np.float32), "(N, 1, H, W)"),
        (np.full((4, 1, SIZE, SIZE), np.nan, np.float32), "NaN or Inf"),
    ],
    ids=["empty", "channels", "nan"],
)
def test_bad_calibration_is_one_line(bad, message, tmp_path):
    with pytest.raises(ValueError, match=r"calibration images: expected") as err:
        export_int8(lenet5(num_classes=10), bad, tmp_path / "x.onnx")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing written
