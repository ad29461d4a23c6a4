"""ruff, configured in pyproject.toml, holds the whole tree: lint rules and the formatter's layout.

Run by ``.ci/run`` through this test, so the README's one test command stays the whole check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_tree_passes_ruff_check() -> None:
    done = ruff("check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_tree_is_formatted() -> None:
    done = ruff("format", "--check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_under_the_project_config_rejects_bad_code(tmp_path: Path) -> None:
    """The twin: the same configuration fails on an unused import, a line over the limit and an
    unformatted file, so the two tests above can fail."""
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx = {  'a':1}\n" + "# " + "x" * 130 + "\n")
    done = ruff("check", "--no-cache", "bad.py", cwd=tmp_path)
    assert done.returncode == 1 and "F401" in done.stdout and "E501" in done.stdout, done.stdout + done.stderr
    assert ruff("format", "--check", "--no-cache", "bad.py", cwd=tmp_path).returncode == 1
