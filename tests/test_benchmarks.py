"""The benchmark suite's machinery (timings are never asserted) and the fast inference path."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import torch_impl
from parity.weights.randomise import randomise_torch
from torch_impl.fastpath import bf16_supported, cpu_bf16_feature, fast_inference, tolerance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import measure, report, torch_side


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


def test_the_process_tree_counts_a_childs_memory():
    """benchmarks.measure.tree_rss_bytes sums a command's processes (what /usr/bin/time does not):
    a child holding 300 MB makes the tree that much bigger than the parent alone."""
    import subprocess

    hold = "import numpy, sys; a = numpy.ones(300 * 2**20 // 8); print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        alone = measure.rss_bytes()
        assert measure.tree_rss_bytes(os.getpid()) - alone > 250 * 2**20
        assert measure.tree_rss_bytes(child.pid) > 250 * 2**20
    finally:
        child.communicate("")


def test_the_step_split_runs_and_writes_its_table(tmp_path):
    """benchmarks.train_step_split on LeNet-5, one round: both frameworks' parts, every convolution."""
    from benchmarks import train_step_split

    result = train_step_split.main(
        ["--model", "lenet5", "--batch", "2", "--rounds", "1", "--out", str(tmp_path / "split")]
    )
    assert set(result["step_ms"]) == {"forward", "forward + backward", "step"}
    assert set(result["step_ms"]["step"]) == {"torch", "tensorflow", "tensorflow train_on_batch"}
    assert [c["count"] for c in result["convolutions"]] == [1, 1, 1]  # C1, C3, and C5 as a 5x5 convolution
    assert "| step, Keras' train_on_batch |" in (tmp_path / "split.md").read_text()


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
    """bfloat16 autocast runs on every CPU (emulated where it lacks AVX512_BF16/AMX): not float32's
    numbers, but within bfloat16's own bound (fastpath.TOLERANCE), same classes."""
    x = torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = resnet18(x).numpy()
    out = fast_inference(resnet18, bf16=True)(x)
    assert out.dtype == torch.float32
    err, top1 = measure.relative_error(out.numpy(), expected), measure.top1_agreement(out.numpy(), expected)
    assert tolerance("bf16").accepts(err, top1), (err, top1)
    assert not tolerance("float32").accepts(err, top1), err  # twin: bfloat16 really is another precision


BF16_PROBE = """import numpy as np, torch, torch_impl
from parity.weights.randomise import randomise_torch
from torch_impl.fastpath import fast_inference
model = randomise_torch(torch_impl.resnet18(), 0).eval()
x = torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    np.savez({out!r}, ref=model(x).numpy(), out=fast_inference(model, bf16=True)(x).numpy())
"""


def test_bf16_agrees_on_the_emulated_path_too(tmp_path):
    """oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA) takes the path CPUs without native bfloat16 take,
    so both paths are checked on an AVX512_BF16 machine (on others both runs take the same one)."""
    import os
    import subprocess

    for isa in ("AVX2", "DEFAULT"):
        out = tmp_path / f"{isa}.npz"
        env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
        subprocess.run([sys.executable, "-c", BF16_PROBE.format(out=str(out))], env=env, check=True, timeout=120)
        got = np.load(out)
        err, top1 = measure.relative_error(got["out"], got["ref"]), measure.top1_agreement(got["out"], got["ref"])
        assert tolerance("bf16").accepts(err, top1), (isa, err, top1)


def test_tolerances_reject_what_their_precision_cannot_explain():
    assert tolerance("channels_last") == tolerance("compile") == tolerance("float32")
    assert tolerance("float32").accepts(9e-6, 1.0) and not tolerance("float32").accepts(5.7e-3, 1.0)
    assert tolerance("bf16").accepts(5.7e-3, 1.0) and not tolerance("bf16").accepts(0.1, 1.0)
    assert not tolerance("bf16").accepts(5.7e-3, 0.5)  # half the classes changed
    assert not any(
        tolerance(v).accepts(float("nan"), 1.0) or tolerance(v).accepts(0.0, float("nan")) for v in ("float32", "bf16")
    )


def test_torch_rows_and_the_report(tmp_path):
    """One small group end to end: rows, ratios, parity figures, the table and the chart."""
    # bf16=True: the bfloat16 row on every CPU (emulated where not native), held to its own bound; int8 too
    rows = torch_side.group_rows(
        "alexnet",
        [1, 2],
        64,
        rounds=1,
        target_s=0.0,
        compile=False,
        onnx=["torch"],
        bf16=True,
        int8=True,
        log=lambda line: None,
    )
    assert torch.is_grad_enabled()  # no global switch left behind for whatever runs next
    labels = {(r["batch"], r["impl"], r["variant"]) for r in rows}
    assert (2, "onnxruntime", "torch-export") in labels and (1, "torchvision", "channels_last") in labels
    assert {(1, "torch_impl", "bf16"), (2, "torch_impl", "bf16"), (2, "onnxruntime", "int8")} <= labels
    for r in rows:
        assert r["images_s"] > 0 and r["gflops"] > 0
        if r["impl"] == "torch_impl" and r["variant"] != "eager" or r["impl"] == "onnxruntime":
            assert r["agrees"] and r["speedup"] > 0, r
            bound = tolerance(r["variant"])
            assert r["tolerance"] == bound.rel_err and r["rel_err"] <= bound.rel_err and r["top1"] >= bound.top1, r
        if r["variant"] == "bf16":
            assert r["native"] is bf16_supported() and r["rel_err"] > 1e-5, r  # really bfloat16, not float32 again
        if r["variant"] == "int8":
            assert r["rel_err"] > 1e-5 and r["tolerance"] == tolerance("int8").rel_err, r  # really int8
        if r["impl"] == "torch_impl" and r["variant"] != "bf16":  # torchvision runs the float32 variants
            assert r["reference"] == f"torchvision {r['variant']}" and r["ratio"] > 0
    for r in rows:
        r["sgemm_fraction"] = r["gflops"] / 100.0
    meta = {
        "cpu": "test",
        "cores": 2,
        "device": "cpu",
        "sgemm_gflops": 100.0,
        "sgemm_library": "numpy",
        "bf16": "none",
        "command": "python -m benchmarks",
        "wall_s": 1.0,
        "versions": "torch",
    }
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
