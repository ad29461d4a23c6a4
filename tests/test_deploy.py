"""Deployment targets (parity/deploy): each export runs in its own runtime and agrees with the torch
model within float32's tolerance; its twin (a weight changed after export) fails; LiteRT keeps
NHWC (no Transpose op); a missing runtime is one line naming the extra; the CLI wiring."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from parity.comparison.compare import DEFAULT_RTOL
from parity.deploy import check, keras_export, runtimes, table
from parity.deploy import rows as deploy_rows
from parity.twins import build_pair
from parity.weights.copying import transfer_weights
from parity.weights.randomise import randomise_torch

pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")

ALL = list(table.TARGETS)
PAIRS = [(t, fw) for t, spec in table.TARGETS.items() for fw in spec.frameworks]
MODELS = [("lenet5", None), ("resnet18", (64, 64))]  # no BatchNorm / BatchNorm, residual adds, global pooling


def runnable(name: str) -> bool:
    return table.runtime_missing(name) is None


@pytest.fixture(scope="module", params=MODELS, ids=[m for m, _ in MODELS])
def exported(request, tmp_path_factory):
    """Both models (equal weights), every target exported once, and a batch of inputs."""
    name, size = request.param
    torch_model, keras_model = build_pair(name, size)
    randomise_torch(torch_model, 0)
    transfer_weights(torch_model, keras_model)
    spec = torch_model.spec
    h, w = size or spec.input_size[1:]
    inputs = np.random.default_rng(1).standard_normal((3, spec.input_size[0], h, w)).astype(np.float32)
    names = [t for t in ALL if runnable(t)]
    exports, missing = check.export_all(torch_model, keras_model, names, tmp_path_factory.mktemp(name), size=size)
    assert not missing
    return torch_model, exports, inputs


@pytest.fixture(scope="module")
def rows(exported):
    torch_model, exports, inputs = exported
    return {
        (r.target, r.framework): r for r in deploy_rows.compare_all(torch_model, exports, inputs, DEFAULT_RTOL, 0.0)
    }


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{t}-{fw}" for t, fw in PAIRS])
def test_export_agrees_with_torch(rows, pair):
    if not runnable(pair[0]):
        pytest.skip(table.runtime_missing(pair[0]))
    row = rows[pair]
    assert row.passed and row.max_rel <= DEFAULT_RTOL and row.top1 == 1.0, row
    assert row.size_mb > 0 and row.export_s > 0


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{t}-{fw}" for t, fw in PAIRS])
def test_weight_changed_after_export_fails(exported, pair):
    """The twin: the torch reference's last layer changed after the export; the artifact must disagree."""
    if not runnable(pair[0]):
        pytest.skip(table.runtime_missing(pair[0]))
    torch_model, exports, inputs = exported
    changed = copy.deepcopy(torch_model)
    weight = changed.get_parameter(f"{changed.spec.classifier}.weight")
    weight.data[0] += 1e-3 * weight.data.abs().max()
    (row,) = deploy_rows.compare_all(changed, {pair: exports[pair]}, inputs, DEFAULT_RTOL, 0.0)
    assert not row.passed and row.max_rel > DEFAULT_RTOL, row


def test_litert_is_nhwc_end_to_end(rows, exported):
    if not runnable("litert"):
        pytest.skip(table.runtime_missing("litert"))
    _, exports, _ = exported
    ops = runtimes.litert_ops(exports[("litert", "keras")].path)
    assert ops.get("CONV_2D", 0) >= 2, ops
    assert rows[("litert", "keras")].transposes == ops.get("TRANSPOSE", 0) == 0, ops


def test_missing_runtime_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    real = table.importlib.import_module

    def refuse(name, *args):
        if name in ("ai_edge_litert", "openvino"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(table.importlib, "import_module", refuse)
    line = table.runtime_missing("litert")
    assert line is not None and "\n" not in line and "pip install 'classic-cnns[deploy]'" in line
    torch_model, keras_model = build_pair("lenet5")
    exports, missing = check.export_all(torch_model, keras_model, ["litert", "openvino"], tmp_path)
    assert exports == {} and not list(tmp_path.iterdir())  # nothing exported
    assert {(r.target, r.framework) for r in missing} == {
        ("litert", "keras"),
        ("openvino", "torch"),
        ("openvino", "keras"),
    }
    assert all(not r.passed and "classic-cnns[deploy]" in r.note for r in missing)
    assert deploy_rows.DeployResult(missing).passed is False


def test_failed_export_keeps_the_old_artifact(tmp_path):
    """Atomic: a Keras export stopped by its time bound leaves the old file and folder as they were, no temp files."""
    _, keras_model = build_pair("lenet5")
    old_file, old_dir = tmp_path / "m.tflite", tmp_path / "m.saved_model"
    old_file.write_bytes(b"old")
    old_dir.mkdir()
    (old_dir / "keep").write_text("old")
    with pytest.raises(RuntimeError, match="did not finish in 1s"):
        keras_export.export_keras(keras_model, {"litert": old_file, "saved_model": old_dir}, timeout=1)
    assert old_file.read_bytes() == b"old" and (old_dir / "keep").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["m.saved_model", "m.tflite"]
    assert sorted(os.listdir(old_dir)) == ["keep"]


def test_cli_wiring(capsys):
    from parity.__main__ import build_parser, main

    assert main(["export", "lenet5", "--format", "pt2", "--framework", "keras", "--out", "x.pt2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "torch only" in err
    args = build_parser().parse_args(["check", "lenet5", "--targets", "litert,pt2,litert"])
    assert args.targets == ["litert", "pt2"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["check", "lenet5", "--targets", "tflite"])
    assert build_parser().parse_args(["check", "lenet5"]).targets is None  # today's ONNX check stays the default
