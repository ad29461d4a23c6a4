"""Which Keras backend runs the Keras side, and running a check on another one.

Keras picks its backend once per process (``KERAS_BACKEND``, read at ``import keras``), so a check
on a backend other than the current process's runs ``python -m parity`` again in a subprocess with
``KERAS_BACKEND`` set, and reads back the JSON summary it writes. Its lines go straight to the
terminal, so a long run still shows progress.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")


def installed() -> list[str]:
    """The Keras backends whose framework is importable here, in BACKENDS order."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def current() -> str:
    """The backend this process's Keras uses (imports Keras)."""
    import keras

    return keras.config.backend()


def resolve(requested: Sequence[str]) -> list[str]:
    """``requested`` checked against BACKENDS and what is installed; one clear line otherwise."""
    available = installed()
    for backend in requested:
        if backend not in BACKENDS:
            raise ValueError(f"unknown Keras backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        if backend not in available:
            raise ValueError(
                f"Keras backend {backend!r} is not installed here (installed: {', '.join(available) or 'none'})"
            )
    return list(dict.fromkeys(requested))


def run_in_subprocess(backend: str, argv: Sequence[str], timeout: float = 6 * 3600) -> tuple[int, dict]:
    """``python -m parity *argv --json TMP`` with ``KERAS_BACKEND=backend``: its exit status and
    the JSON summary it wrote (``{}`` when it wrote none, e.g. a crash; the status says so)."""
    with tempfile.TemporaryDirectory(prefix="parity-backend-") as tmp:
        out = Path(tmp) / "summary.json"
        env = {**os.environ, "KERAS_BACKEND": backend}
        sys.stdout.flush()
        proc = subprocess.run([sys.executable, "-m", "parity", *argv, "--json", str(out)], env=env, timeout=timeout)
        summary = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, summary


def requested(keras_backend: str | None, all_backends: bool) -> list[str]:
    """The backends a command's ``--keras-backend NAME`` / ``--all-backends`` ask for ([]: this process's)."""
    if keras_backend and all_backends:
        raise ValueError("pass --keras-backend NAME or --all-backends, not both")
    return resolve(installed() if all_backends else [keras_backend] if keras_backend else [])


def run_on_each(
    backends: Sequence[str], run_here: Callable[[], dict], child_argv: Sequence[str], title: str = ""
) -> dict[str, dict]:
    """``{backend: JSON summary}``: ``run_here()`` for this process's backend, ``python -m parity
    *child_argv`` in a subprocess for any other (``{"error": ...}`` when it wrote no summary).
    With no ``backends``, this process's alone, without a header line."""
    here = current()
    summaries: dict[str, dict] = {}
    for backend in backends or [here]:
        if backends:
            print(f"== {title}Keras on {backend}" + ("" if backend == here else " (subprocess)"), flush=True)
        if backend == here:
            summaries[backend] = run_here()
        else:
            code, summary = run_in_subprocess(backend, child_argv)
            summaries[backend] = summary or {
                "error": f"the {backend} run exited with status {code} and wrote no summary"
            }
    return summaries
