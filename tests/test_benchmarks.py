"""The benchmark suite's machinery (timings are never asserted) and the fast inference path."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import torch_impl
from parity.randomise import randomise_torch
from torch_impl.fastpath import bf16_supported, cpu_bf16_feature, fast_inference

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import measure, report, torch_side  # noqa: E402


def test_interleaved_rotates_and_gives_every_contender_the_same_calls():
    order = []
    contenders = {name: (lambda name=name: order.append(name)) for name in "abc"}
    timings = measure.interleaved(contenders, rounds=3, target_s=0.0)
    assert {len(t.seconds) for t in timings.values()} == {3}
    timed = order[3:]  # after one warm-up call each
    assert [timed[i * 3] for i in range(3)] == ["a", "b", "c"]  # each round starts with another one


def test_peak_memory_sees_an_allocation_and_nothing_else():
    with measure.PeakMemory() as peak:
        block = np.ones(64 * 2**20 // 8)  # 64 MB, touched
    del block
    assert 48 < peak.mb < 200
    with measure.PeakMemory() as idle:
        pass
    assert idle.mb < 16


@pytest.mark.parametrize("bad", [np.array([[np.nan, 1.0]]), np.array([[np.inf, 1.0]]), np.zeros((0, 2))])
def test_a_broken_output_never_looks_exact(bad):
    good = np.ones_like(bad) if bad.size else bad
    assert math.isnan(measure.relative_error(bad, good))


def test_parity_figures():
    a = np.array([[1.0, 2.0], [3.0, 1.0]])
    assert measure.relative_error(a, a) == 0.0
    assert measure.relative_error(a * 1.01, a) == pytest.approx(0.01)
    assert measure.top1_agreement(a, a) == 1.0
    assert measure.top1_agreement(a, a[:, ::-1]) == 0.0


def test_calls_per_round_bounds():
    assert measure.calls_per_round(3.0, 1.0, 3) == 1  # a slow model: one call per round
    assert measure.calls_per_round(0.001, 1.0, 3) == 13  # a fast one: capped (40 calls in all)
    assert measure.calls_per_round(float("nan"), 1.0, 3) == 1


@pytest.fixture(scope="module")
def resnet18():
    return randomise_torch(torch_impl.resnet18(), 0).eval()


def test_fast_paths_compute_the_same_logits(resnet18):
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = resnet18(x).numpy()
    for options in ({"channels_last": True}, {"channels_last": False}):
        out = fast_inference(resnet18, **options)(x).numpy()
        assert measure.relative_error(out, expected) < 1e-5, options
    assert isinstance(bf16_supported(), bool)
    assert cpu_bf16_feature() in (None, "amx_bf16", "avx512_bf16")


def test_bf16_is_a_different_path_that_still_agrees(resnet18):
    """bfloat16 autocast runs (emulated where the CPU lacks it): not float32's numbers, same classes mostly."""
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        expected = resnet18(x).numpy()
    out = fast_inference(resnet18, bf16=True)(x)
    assert out.dtype == torch.float32
    err = measure.relative_error(out.numpy(), expected)
    assert 1e-5 < err < 0.2


def test_torch_rows_and_the_report(tmp_path):
    """One small group end to end: rows, ratios, parity figures, the table and the chart."""
    rows = torch_side.group_rows("alexnet", [1, 2], 64, rounds=1, target_s=0.0, compile=False, onnx=["torch"], log=lambda line: None)
    assert torch.is_grad_enabled()  # no global switch left behind for whatever runs next
    labels = {(r["batch"], r["impl"], r["variant"]) for r in rows}
    assert (2, "onnxruntime", "torch-export") in labels and (1, "torchvision", "channels_last") in labels
    for r in rows:
        assert r["images_s"] > 0 and r["gflops"] > 0
        if r["impl"] == "torch_impl" and r["variant"] != "eager" or r["impl"] == "onnxruntime":
            assert r["top1"] == 1.0 and r["rel_err"] < 1e-5 and r["speedup"] > 0, r
        if r["impl"] == "torch_impl":
            assert r["reference"] == f"torchvision {r['variant']}" and r["ratio"] > 0
    for r in rows:
        r["sgemm_fraction"] = r["gflops"] / 100.0
    meta = {"cpu": "test", "cores": 2, "device": "cpu", "sgemm_gflops": 100.0, "sgemm_library": "numpy", "bf16": "none",
            "command": "python -m benchmarks", "wall_s": 1.0, "versions": "torch"}
    table = report.markdown(rows, meta)
    assert table.count("\n| alexnet |") == len(rows)
    report.chart(rows, meta, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_keras_rows():
    from benchmarks import keras_side

    rows = keras_side.group_rows("resnet18", [1], 64, rounds=1, target_s=0.0, log=lambda line: None)
    assert {r["variant"] for r in rows} >= {"xla"}
    assert all(r["impl"] == "keras_impl" and r["images_s"] > 0 for r in rows)  # keras.applications has no ResNet18


def test_the_suite_refuses_bad_arguments_before_measuring():
    from benchmarks import suite

    with pytest.raises(KeyError, match="did you mean 'resnet50'"):
        suite.parse(["--models", "resnet5O"])
    with pytest.raises(ValueError, match="batches, rounds and size must be >= 1"):
        suite.parse(["--batches", "0"])
    with pytest.raises(ValueError, match="not installed|unknown Keras backend"):
        suite.parse(["--keras-backends", "theano"])
