"""The check of history.json's "run" (cnntune.header) that every test of a real run shares."""

from __future__ import annotations

from typing import Any


def check_run_record(
    run: dict[str, Any], framework: str, world_size: int, backend: str | None, batch: int, unit: str = "process"
) -> None:
    """``run`` (history.json's "run") describes ``world_size`` processes or devices of ``backend``
    (None: one process) with ``batch`` each, and its line says the same."""
    assert run["framework"] == framework
    assert (run["world_size"], run["backend"], run["unit"]) == (world_size, backend, unit)
    assert (run["batch_per_process"], run["batch_total"]) == (batch, batch * world_size)
    line = run["line"]
    assert f"batch {batch} per {unit} ({batch * world_size} total), device {run['device']}, " in line
    if backend is None:
        assert "1 process;" in line and "gloo" not in line and "DataParallel" not in line
    else:
        assert f"{world_size} {unit}{'es' if unit == 'process' else 's'}, {backend};" in line
