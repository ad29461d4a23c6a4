"""A conversion or an export killed mid-write (SIGKILL: no handler runs) leaves the target as it
was: absent, or the previous good file byte for byte. Every writer goes through
finetuning.atomic (a temp file next to the target, renamed when complete)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}


def kill_mid_write(cmd, target: Path, timeout: float = 300) -> bool:
    """Runs ``cmd`` and SIGKILLs it the moment its temp file for ``target`` appears; True when it
    was killed that way (False: it ended first, and the test cannot tell)."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if any(p.name.startswith(f".{target.name}.") for p in target.parent.iterdir()):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.001)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def resnet18_checkpoint(tmp_path_factory):
    import torch

    import torch_impl

    path = tmp_path_factory.mktemp("ckpt") / "resnet18.pth"
    torch.save(torch_impl.resnet18().state_dict(), path)
    return path


@pytest.mark.parametrize("previous", [None, b"the previous good file"])
def test_a_conversion_killed_mid_write_leaves_the_target_as_it_was(resnet18_checkpoint, tmp_path, previous):
    target = tmp_path / "resnet18.weights.h5"
    if previous is not None:
        target.write_bytes(previous)
    cmd = [sys.executable, "-m", "parity", "convert", "--model", "resnet18", str(resnet18_checkpoint), str(target)]
    assert kill_mid_write(cmd, target), "the conversion finished before its temp file was seen"
    assert (target.read_bytes() == previous) if previous is not None else not target.exists()


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_an_export_killed_mid_write_leaves_the_previous_file(tmp_path, framework):
    target = tmp_path / "resnet18.onnx"
    target.write_bytes(b"the previous good export")
    cmd = [sys.executable, "-m", "parity", "export", "resnet18", "--framework", framework, "--out", str(target), "--size", "64"]
    assert kill_mid_write(cmd, target), "the export finished before its temp file was seen"
    assert target.read_bytes() == b"the previous good export"
