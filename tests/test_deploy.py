"""Deployment targets (parity/deploy): each export runs in its own runtime and agrees with the torch
model within float32's tolerance; its twin (a weight changed after export) fails; LiteRT keeps
NHWC (no Transpose op); a quantized variant passes on its own criterion and its twin fails; a
missing runtime or variant is one line; the README's table is the committed JSON's; the CLI wiring.

Every family, small on purpose (the per-commit suite's budget): lenet5 (no BatchNorm), resnet18 at
64x64 (BatchNorm, residual adds, global pooling) and the small ViT (patches, class token,
attention, LayerNorm) through every target; AlexNet and VGG-11 (adaptive pooling that upsamples a
small map, a flatten into Linear; hidden Linears narrowed to 64, the ops unchanged), GoogLeNet
(inception branches, aux heads dropped), MobileNetV2 (depthwise convs, ReLU6) and EfficientNet-B0
(squeeze-and-excitation, SiLU) through every target but ONNX, which tests/test_onnx.py's four-way
check covers for each of them at a small size. Every family at its README size is
``python -m parity deploy-table``'s."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import cnnspec
from cnnspec.edit import narrow_head
from parity.comparison.compare import DEFAULT_RTOL
from parity.deploy import check, keras_export, report, runtimes, table, torch_export
from parity.deploy import rows as deploy_rows
from parity.twins import build_pair, inference_options

pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")

ALL = list(table.TARGETS)
PAIRS = [(t, fw) for t, spec in table.TARGETS.items() for fw in spec.frameworks]
NOT_ONNX = [t for t in ALL if t != "onnx"]
# name: (input side, targets, hidden Linears narrowed); built from the spec with 10 classes; the
# slowest to export first, so that the two xdist workers finish together
MODELS = {
    "efficientnet_b0": (32, NOT_ONNX, False),
    "googlenet": (64, NOT_ONNX, False),
    "mobilenet_v2": (32, NOT_ONNX, False),
    "resnet18": (64, ALL, False),
    "vit": (32, ALL, False),
    "alexnet": (64, NOT_ONNX, True),
    "vgg11": (32, NOT_ONNX, True),
    "lenet5": (32, ALL, False),
}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runnable(name: str) -> bool:
    return table.runtime_missing(name) is None


def small_spec(name: str):
    """``name``'s spec with 10 classes (and its hidden Linears narrowed where :data:`MODELS` says)."""
    if name == "vit":
        return report.small_vit_spec()
    spec = cnnspec.get(name, **inference_options(name), num_classes=10)
    return narrow_head(spec) if MODELS[name][2] else spec


# One test per model, a subtest per (target, framework) and per twin: a model's exports are made
# once, by the worker that runs it (per-pair tests had both xdist workers export every model).
@pytest.mark.parametrize("model", list(MODELS))
def test_every_target_agrees_and_its_twin_fails(model, tmp_path, subtests):
    side, targets, _ = MODELS[model]
    torch_model, keras_model = report.spec_pair(small_spec(model), side)
    names = [t for t in targets if runnable(t)]
    exports, missing = check.export_all(torch_model, keras_model, names, tmp_path, size=(side, side))
    assert not missing
    assert {t for t, _ in exports} == set(names), exports
    c = torch_model.spec.input_size[0]
    inputs = np.random.default_rng(1).standard_normal((3, c, side, side)).astype(np.float32)
    outputs: dict = {}  # each artifact runs once; the twin compares the same outputs with a changed reference
    rows = {
        (r.target, r.framework): r
        for r in deploy_rows.compare_all(torch_model, exports, inputs, DEFAULT_RTOL, 0.0, outputs)
    }
    for pair, row in rows.items():
        with subtests.test("agrees", pair="-".join(pair)):
            assert row.passed and row.max_rel <= DEFAULT_RTOL and row.top1 == 1.0, row
            assert row.size_mb > 0 and row.export_s > 0

    # the twin: the torch reference's last layer changed after the export; every artifact must disagree
    changed = copy.deepcopy(torch_model)
    weight = changed.get_parameter(f"{changed.spec.classifier}.weight")
    weight.data[0] += 1e-3 * weight.data.abs().max()
    assert set(outputs) == set(exports)
    for row in deploy_rows.compare_all(changed, exports, inputs, DEFAULT_RTOL, 0.0, outputs):
        with subtests.test("twin fails", pair=f"{row.target}-{row.framework}"):
            assert not row.passed and row.max_rel > DEFAULT_RTOL, row

    if ("litert", "keras") in exports:
        with subtests.test("LiteRT is NHWC end to end"):
            # no Transpose op around the convolutions; the ViT's are its attention heads' (2 per layer)
            ops = runtimes.litert_ops(exports[("litert", "keras")].path)
            assert ops.get("CONV_2D", 0) + ops.get("DEPTHWISE_CONV_2D", 0) >= 1, ops
            heads = 4 * len(torch_model.get_submodule("encoder.layers")) if torch_model.spec.family == "vit" else 0
            assert rows[("litert", "keras")].transposes == ops.get("TRANSPOSE", 0) == heads, ops


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


# ------------------------------------------------------------------------------ quantized variants
# one (target, framework, mode) per quantizer: Keras' ONNX and OpenVINO variants go through the same
# post-processing of the float export as torch's (parity.deploy.quantize); deploy-table runs them all
QUANTIZED = [
    ("onnx", "torch", "dynamic-int8"),
    ("openvino", "torch", "float16"),
    ("litert", "keras", "float16"),
    ("litert", "keras", "dynamic-int8"),
]


def test_quantized_variants_pass_on_their_own_criterion_and_their_twin_fails(tmp_path):
    """lenet5's variants: each passes on top-1 agreement (not float32's tolerance, which it misses);
    the twin, the reference's classifier rows shuffled after export, makes top-1 agreement collapse."""
    torch_model, keras_model = report.model_pair("lenet5", 32)
    exports = {}
    for name, framework, mode in QUANTIZED:
        if not runnable(name):
            continue
        out = tmp_path / f"{name}.{mode}{table.TARGETS[name].suffix.strip('/')}"
        if framework == "torch":
            exports[(name, framework, mode)] = torch_export.export_torch(name, torch_model, out, quantize=mode)
        else:
            exports[(name, framework, mode)] = keras_export.export_keras(keras_model, {name: out}, quantize=mode)[name]
    inputs = np.random.default_rng(1).standard_normal((2, 1, 32, 32)).astype(np.float32)
    outputs: dict = {}
    found = deploy_rows.compare_all(torch_model, exports, inputs, DEFAULT_RTOL, 0.0, outputs)
    assert {(r.target, r.framework, r.quantize) for r in found} == {q for q in QUANTIZED if runnable(q[0])}
    for row in found:
        assert row.passed and row.top1 >= deploy_rows.QUANTIZED_TOP1[row.quantize], row
        assert row.max_rel > DEFAULT_RTOL, row  # not float32: held to top-1 agreement, not to rtol
        assert "top-1 >=" in row.criterion and row.size_mb > 0
    sizes = {(r.target, r.framework, r.quantize): r.size_mb for r in found}
    assert sizes[("litert", "keras", "dynamic-int8")] < sizes[("litert", "keras", "float16")]

    changed = copy.deepcopy(torch_model)
    for suffix in ("weight", "bias"):
        p = changed.get_parameter(f"{changed.spec.classifier}.{suffix}")
        p.data = p.data.roll(1, dims=0)
    for row in deploy_rows.compare_all(changed, exports, inputs, DEFAULT_RTOL, 0.0, outputs):
        assert not row.passed and row.top1 < deploy_rows.QUANTIZED_TOP1[row.quantize], row


def test_a_variant_a_target_lacks_is_one_line(tmp_path):
    torch_model, keras_model = build_pair("lenet5")
    for name, mode in (("saved_model", "float16"), ("pt2", "dynamic-int8"), ("onnx", "float16")):
        line = table.quantize_missing(name, mode)
        assert line and "\n" not in line and name in line
        with pytest.raises(ValueError, match=name):
            table.check_quantize(name, mode)
    exports, noted = check.export_all(torch_model, keras_model, ["pt2"], tmp_path, quantize="float16")
    assert set(exports) == {("pt2", "torch")}  # the float32 export, no variant
    assert [(r.target, r.passed, r.quantize) for r in noted] == [("pt2", True, "float16")]
    with pytest.raises(ValueError, match="--quantize takes"):
        table.quantize_missing("onnx", "int4")


def test_quantize_cli_wiring(capsys):
    from parity.__main__ import build_parser, main

    assert (
        main(["export", "lenet5", "--format", "pt2", "--framework", "torch", "--out", "x.pt2", "--quantize", "float16"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pt2 has no quantized variant" in err
    with pytest.raises(SystemExit):
        main(["check", "lenet5", "--quantize", "float16"])
    assert "name them with --targets" in capsys.readouterr().err
    args = build_parser().parse_args(["check", "lenet5", "--targets", "litert", "--quantize", "dynamic-int8"])
    assert args.quantize == "dynamic-int8"
    help_text = build_parser()._subparsers._group_actions[0].choices["export"].format_help()
    assert "litert: float16, dynamic-int8" in " ".join(help_text.split())


# ------------------------------------------------------------------------------ the README's table
def test_readme_table_is_the_committed_json():
    """The README's deployment tables are rendered from benchmarks/results/deploy_targets.json
    (``python -m parity deploy-table``): no figure typed by hand, every family, every target."""
    import json

    with open(os.path.join(ROOT, "benchmarks", "results", "deploy_targets.json")) as f:
        data = json.load(f)
    with open(os.path.join(ROOT, "README.md")) as f:
        section = report.readme_section(f.read())
    assert section is not None, "README.md has no deploy-table markers"
    assert section == report.markdown(data), "README's table differs from the JSON: paste report.markdown(json)"
    assert [m["model"] for m in data["models"]] == list(report.FAMILIES)
    for m in data["models"]:
        assert {(r["target"], r["framework"]) for r in m["rows"] if not r["quantize"]} == set(report.PAIRS), m["model"]


def test_readme_table_twin():
    """A figure changed in the JSON changes the rendered table (the comparison above can fail)."""
    row = dict(
        target="onnx",
        framework="torch",
        passed=True,
        max_rel=1e-7,
        top1=1.0,
        size_mb=1.0,
        transposes=None,
        note="",
        quantize=None,
    )
    data = {"models": [{"model": "lenet5", "input": "32x32", "rows": [row]}]}
    before = report.markdown(data)
    row["max_rel"] = 2e-7
    assert report.markdown(data) != before and "2.0e-07, 1 MB" in report.markdown(data)
