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
from pathlib import Path
from typing import List, Sequence, Tuple

BACKENDS = ("tensorflow", "jax", "torch")


def installed() -> List[str]:
    """The Keras backends whose framework is importable here, in BACKENDS order."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def current() -> str:
    """The backend this process's Keras uses (imports Keras)."""
    import keras

    return keras.config.backend()


def resolve(requested: Sequence[str]) -> List[str]:
    """``requested`` checked against BACKENDS and what is installed; one clear line otherwise."""
    available = installed()
    for backend in requested:
        if backend not in BACKENDS:
            raise ValueError(f"unknown Keras backend {backend!r}: expected one of {', '.join(BACKENDS)}")
        if backend not in available:
            raise ValueError(f"Keras backend {backend!r} is not installed here (installed: {', '.join(available) or 'none'})")
    return list(dict.fromkeys(requested))


def run_in_subprocess(backend: str, argv: Sequence[str], timeout: float = 6 * 3600) -> Tuple[int, dict]:
    """``python -m parity *argv --json TMP`` with ``KERAS_BACKEND=backend``: its exit status and
    the JSON summary it wrote (``{}`` when it wrote none, e.g. a crash; the status says so)."""
    with tempfile.TemporaryDirectory(prefix="parity-backend-") as tmp:
        out = Path(tmp) / "summary.json"
        env = {**os.environ, "KERAS_BACKEND": backend}
        sys.stdout.flush()
        proc = subprocess.run([sys.executable, "-m", "parity", *argv, "--json", str(out)], env=env, timeout=timeout)
        summary = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, summary
