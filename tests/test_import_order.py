"""torchvision's native extension segfaults when TensorFlow loaded first: importing this project in
that order works where torchvision is not needed, and says why where it is, instead of a crash."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_keras_first_then_parity_works_and_torchvision_is_one_clear_error():
    done = _run(
        "import keras\nimport parity, torch_impl\nm = torch_impl.resnet18()\nprint('built', type(m).__name__)\n"
        "import torch_impl.finetune\n"
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])  # not -11 (SIGSEGV)
    assert "built SpecModel" in done.stdout
    assert (
        done.stderr.strip().splitlines()[-1].startswith("ImportError: torchvision cannot be imported after tensorflow")
    )


@pytest.mark.parametrize("first", ["torch_impl.finetune", "parity"])
def test_the_documented_order_loads_both(first):
    done = _run(f"import {first}\nimport keras\nimport torchvision\nprint('ok')")
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
