"""torchrun: two gloo processes on the CPU train like one process with the doubled batch, and a
resumed two-process run ends where an uninterrupted one does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from image_folders import write_colours
from run_records import check_run_record
from safetensors.torch import load_file

import torch_impl.finetune as ft

ROOT = Path(__file__).resolve().parents[1]
# LeNet-5: no BatchNorm, no dropout, so nothing but the sharding can tell the runs apart
COMMON = ["--model", "lenet5", "--mode", "fine-tune", "--no-augment", "--epochs", "2", "--lr", "3e-3", "--no-progress"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """Three classes of noisy colour squares, 8 training images each: 24 = 3 steps of 8."""
    return write_colours(tmp_path_factory.mktemp("dist"), train=8, val=4, noise=60.0)


def _torchrun(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "torch_impl",
        "finetune",
        *args,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "last.safetensors"))


def _changed(start: dict, end: dict) -> set:
    """The weights a run moved from where it started."""
    assert start.keys() == end.keys()
    return {k for k in start if not torch.equal(start[k], end[k])}


def _single_run(monkeypatch, skip_steps: bool = False, **kwargs):
    """ft.finetune in this process, with the weights it started from (its seeded build, caught as
    the run makes it); ``skip_steps``: every optimizer step does nothing."""
    start = {}
    build, make_optimizer = ft.tuning_model, ft.make_optimizer

    def spy_build(*args, **kw):
        model = build(*args, **kw)
        start.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return model

    def no_steps(*args, **kw):
        optimizer = make_optimizer(*args, **kw)
        optimizer.step = lambda *a, **k: None
        return optimizer

    with monkeypatch.context() as patch:
        patch.setattr(ft, "tuning_model", spy_build)
        if skip_steps:
            patch.setattr(ft, "make_optimizer", no_steps)
        result = ft.finetune(**kwargs)
    return result, start


def test_two_processes_equal_one_with_the_doubled_batch(digits, tmp_path, monkeypatch):
    single, start = _single_run(
        monkeypatch,
        data=str(digits),
        model="lenet5",
        mode="fine-tune",
        augment=False,
        epochs=2,
        lr=3e-3,
        batch_size=8,
        progress=False,
        out=str(tmp_path / "one"),
    )
    proc = _torchrun("--data", str(digits), *COMMON, "--batch-size", "4", "--out", str(tmp_path / "two"))
    assert proc.stdout.count("best val accuracy") == 1  # rank 0 alone reports (and writes)
    # rank 0's header says the run is distributed; the single run's (the twin) says it is not
    assert proc.stdout.count("torch finetune: lenet5, ") == 1
    two_run, one_run = (json.loads((tmp_path / d / "history.json").read_text())["run"] for d in ("two", "one"))
    assert proc.stdout.splitlines()[0] == two_run["line"]
    check_run_record(two_run, "torch", world_size=2, backend="gloo", batch=4)
    check_run_record(one_run, "torch", world_size=1, backend=None, batch=8)
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert _changed(start, one) == set(one)  # it trained: every weight moved from the run's own (seeded) start
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=1e-6)
    assert [round(h["val_acc"], 6) for h in single.history] == [
        round(h["val_acc"], 6) for h in ft.read_checkpoint_info(tmp_path / "two")["history"]
    ]
    # twin: the same two processes with the single run's batch per process step differently
    _torchrun("--data", str(digits), *COMMON, "--batch-size", "8", "--out", str(tmp_path / "two-big"))
    assert not all(torch.allclose(_weights(tmp_path / "two-big")[k], one[k], rtol=1e-5, atol=1e-6) for k in one)


def test_the_it_trained_check_sees_a_run_that_never_stepped(digits, tmp_path, monkeypatch):
    """The twin of "it trained" above: a run whose optimizer steps do nothing ends where it started
    (its start is the run's seeded build, not another random one)."""
    _, start = _single_run(
        monkeypatch,
        skip_steps=True,
        data=str(digits),
        model="lenet5",
        mode="fine-tune",
        augment=False,
        epochs=1,
        lr=3e-3,
        batch_size=8,
        progress=False,
        out=str(tmp_path / "still"),
    )
    assert start and _changed(start, _weights(tmp_path / "still")) == set()


def test_resumed_distributed_run_equals_an_uninterrupted_one(digits, tmp_path):
    _torchrun("--data", str(digits), *COMMON, "--batch-size", "4", "--out", str(tmp_path / "straight"))
    _torchrun(
        "--data", str(digits), *COMMON, "--batch-size", "4", "--out", str(tmp_path / "resumed"), "--stop-after", "1"
    )
    assert ft.read_checkpoint_info(tmp_path / "resumed")["epoch"] == 1
    proc = _torchrun("--data", str(digits), *COMMON, "--batch-size", "4", "--resume", str(tmp_path / "resumed"))
    assert "lenet5, fine-tune resumed at epoch 1, 32x32 px, batch 4 per process (8 total)" in proc.stdout
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-5, atol=1e-6)
