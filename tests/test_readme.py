"""The README's test command is the one CI runs: keep the promise checkable."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    command = ci[ci.index("# README-TEST-COMMAND") + 1]
    assert f"```\n{command}\n```" in (ROOT / "README.md").read_text()
