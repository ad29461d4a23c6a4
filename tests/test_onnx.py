"""ONNX: both exports validate, keep a dynamic batch axis, match the spec and agree four ways."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import model_params

import cnnspec
import parity
from parity.comparison.check import check
from parity.comparison.compare import figures
from parity.onnx.export import export_torch
from parity.onnx.fourway import corrupt_initializer, expected_weight_elements, graph_info, run_onnx
from parity.twins import build_pair

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def assert_onnx_passes(result, exporter="torchscript"):
    onnx = result.onnx
    assert onnx is not None and not onnx.problems, onnx.problems
    for r in onnx.reports:
        assert r.passed and r.output.max_rel <= 1e-5 and r.output.top1 == 1.0, (r.label, r.output)
    assert onnx.exports["keras"].exporter == exporter  # torchscript: not the 5x slower torch.export fallback
    for framework, g in onnx.graphs.items():
        assert g.dynamic_batch, framework
        assert g.weight_elements == expected_weight_elements(
            cnnspec.get(result.model, **parity.twins.inference_options(result.model)), framework=framework
        )


# Every commit, one model per family and node kind (ViT's attention: tests/test_vit.py), small:
# LRN (alexnet_original, fixed at 227), adaptive pooling into a flatten (alexnet, vgg11_bn),
# inception branches and aux heads dropped at export (googlenet), basic and bottleneck blocks,
# depthwise convs and ReLU6 (mobilenet_v2), squeeze-and-excitation and SiLU (efficientnet_b0).
SMALL_ONNX = {
    "lenet5": None,
    "alexnet": (64, 64),
    "alexnet_original": None,
    "vgg11_bn": (32, 32),
    "googlenet": (96, 96),
    "resnet18": (64, 64),
    "resnet50": (64, 64),
    "mobilenet_v2": (64, 64),
    "efficientnet_b0": (64, 64),
}
# Below 224 px AlexNet's and VGG's adaptive pooling upsamples (a 1x1 map to 6x6 / 7x7): Keras'
# side is keras_impl.TorchAdaptiveAvgPool2D there, static slices the TorchScript tracer exports
# (Keras' own layer made it fall back to the 5x slower torch.export), so every family takes the tracer.


@pytest.mark.parametrize("name", list(SMALL_ONNX))
def test_four_way_agreement_at_a_small_size(name):
    result = check(name, size=SMALL_ONNX[name], direction="torch2keras", onnx=True)
    assert result.passed
    assert_onnx_passes(result)
    assert [r.label for r in result.onnx.reports] == ["torch vs keras", "torch vs onnx(torch)", "torch vs onnx(keras)"]
    g = result.onnx.graphs
    assert list(g["torch"].inputs) == list(g["keras"].inputs) == ["input"]
    assert list(g["torch"].outputs) == list(g["keras"].outputs) == ["logits"]


@pytest.mark.slow
@pytest.mark.parametrize("name", model_params([n for n in cnnspec.names() if n not in ("lenet5",)]))
def test_four_way_agreement_at_the_default_size(name):
    result = check(name, batch=1, direction="torch2keras", onnx=True)
    assert result.passed, result.to_dict()
    assert_onnx_passes(result)


def test_a_corrupted_initializer_is_caught(tmp_path):
    torch_model, _ = build_pair("lenet5")
    parity.randomise_torch(torch_model, 0)
    path = tmp_path / "lenet5.onnx"
    export_torch(torch_model, path)
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    import torch

    with torch.no_grad():
        reference = torch_model(torch.from_numpy(x)).numpy()
    assert figures("ok", reference, run_onnx(path, x), 1e-5, 0, classes=True).passed
    bad = tmp_path / "corrupt.onnx"
    name = corrupt_initializer(path, bad)
    assert name and graph_info(bad).weight_elements == graph_info(path).weight_elements
    assert not figures("corrupt", reference, run_onnx(bad, x), 1e-5, 0, classes=True).passed


def _export_keras_cli(out, backend: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if backend:
        env["KERAS_BACKEND"] = backend
    proc = subprocess.run(
        [sys.executable, "-m", "parity", "export", "lenet5", "--framework", "keras", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_export_cli_writes_one_file_atomically(tmp_path):
    out = tmp_path / "lenet5.keras.onnx"
    info = _export_keras_cli(out, backend=None)
    assert info["framework"] == "keras" and out.is_file()
    assert info["parent_backend"] == "torch"  # no KERAS_BACKEND: the backend already loaded, not TensorFlow
    assert graph_info(out).inputs == {"input": ["batch", 32, 32, 1]}
    assert [p.name for p in tmp_path.iterdir()] == ["lenet5.keras.onnx"]  # no temp files left
    # the twin: a TensorFlow parent, as KERAS_BACKEND asks, writes a file that computes the same numbers
    other = tmp_path / "other" / "lenet5.keras.onnx"
    other.parent.mkdir()
    assert _export_keras_cli(other, backend="tensorflow")["parent_backend"] == "tensorflow"
    x = np.random.default_rng(0).standard_normal((4, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(run_onnx(out, x), run_onnx(other, x))
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "parity",
            "export",
            "lenet5",
            "--framework",
            "torch",
            "--out",
            str(tmp_path / "x.onnx"),
            "--weights",
            str(tmp_path / "none.pth"),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not found" in bad.stderr


def test_a_cancelled_keras_export_leaves_no_file_and_no_child(tmp_path):
    """check() starts the Keras export early; after an error it cancels it: no orphan, no temp file."""
    from parity.onnx.export import start_export_keras

    _, keras_model = build_pair("lenet5")
    export = start_export_keras(keras_model, tmp_path / "lenet5.onnx")
    export.cancel()
    assert export._proc.poll() is not None
    assert list(tmp_path.iterdir()) == []


def test_a_prestarted_export_child_takes_the_next_job_and_an_unused_one_exits_quietly(tmp_path):
    """parity check starts the Keras export child before building its models (its ~6 s of imports
    run beside them); the next export takes that very process, and a spare nobody needs ends with
    status 0 once its stdin closes (a CLI that exits without teardown leaves no orphan)."""
    from parity.onnx import export as onnx_export

    onnx_export.prestart_keras_export()
    spare = onnx_export._spare
    _, keras_model = build_pair("lenet5")
    export = onnx_export.start_export_keras(keras_model, tmp_path / "lenet5.onnx")
    assert export._proc is spare and onnx_export._spare is None
    info = export.wait()
    assert info.phases["imports"] > 0 and graph_info(tmp_path / "lenet5.onnx").dynamic_batch
    onnx_export.prestart_keras_export()
    unused = onnx_export._take_spare()
    unused.stdin.close()
    assert unused.wait(timeout=120) == 0 and unused.stderr.read() == ""
