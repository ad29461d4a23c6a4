"""The Keras fine-tuning suite passes on the jax backend where ``import tensorflow`` fails.

A ``sitecustomize`` on PYTHONPATH puts ``None`` in ``sys.modules["tensorflow"]`` in every Python
process of the run (the CLI test's child included), which makes ``import tensorflow`` raise
ImportError as in an environment without it; then test_transfer_keras.py's tests that go through
the whole pipeline (the CLI, resume, the feature cache, a diverged run's checkpoints) run in a
subprocess. Its other tests are backend-neutral layer and data checks, which the main suite runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from nested_pytest import run_pytest

pytest.importorskip("jax")
ROOT = Path(__file__).resolve().parents[1]
# the CLI on Keras' torch backend runs in the main suite already
JAX_WITHOUT_TF = "(end_to_end and not torch) or resume or cached_feature_extraction or diverged"


def test_keras_finetune_suite_on_jax_without_tensorflow(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nsys.modules['tensorflow'] = None  # import tensorflow fails\n"
    )
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "CUDA_VISIBLE_DEVICES": "",
        "CLASSIC_CNNS_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    check = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "import of tensorflow halted" in check.stderr  # the hiding works
    proc = run_pytest(ROOT / "tests" / "test_transfer_keras.py", JAX_WITHOUT_TF, env, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    last = proc.stdout.splitlines()[-1]
    assert "4 passed" in last and "skipped" not in last, last  # a renamed test would drop out of JAX_WITHOUT_TF
