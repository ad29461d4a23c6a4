"""Runs part of the suite again in a child pytest under another environment (a Keras backend,
TensorFlow hidden): the child's tests and their twins, not a copy of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(test_file: str | Path, keyword: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """``pytest -q -k keyword test_file`` in a child process (no cache, no xdist), from the repository root."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-x"]
    return subprocess.run(
        [*argv, "-k", keyword, str(test_file)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
