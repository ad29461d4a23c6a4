"""Framework start-up lines kept off a command line's stderr, whatever CPU or GPU the machine has.

TensorFlow 2.21 logs through absl. ``TF_CPP_MIN_LOG_LEVEL=3`` silences what it logs once it runs
(XLA's "service initialized", "Compiled cluster using XLA!"), but not what its shared libraries log
while they load: absl has not been initialised then, so it writes everything to stderr, preceded
by its own "WARNING: All log messages before absl::InitializeLog()". Which lines come depends on
the machine: oneDNN's notice on CPUs where TensorFlow turns oneDNN on (AVX-512 machines), the
CPU feature guard where the level is below 3, the CUDA plugin registrations and "Could not find
cuda drivers" where a CUDA build meets no driver.

:func:`install` therefore runs the first ``import tensorflow`` with file descriptor 2 pointed at a
temporary file, then writes back every line that is not one of :data:`STARTUP_LINES` (a real
error while importing still reaches the user). Nothing about numerics changes (oneDNN stays on).
Framework-free, like the rest of ``cnnspec``: it never imports TensorFlow itself.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from re import Pattern

# glog/absl prefixes: "I0000 00:00:1796542920.704829    1918 port.cc:153] " (absl) and
# "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] " (tsl)
_PREFIX = r"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ |\d{4}-\d\d-\d\d [\d:.]+: [IWEF] )\S*?"

# Each: the source file TensorFlow 2.16-2.21 logs from and the start of its message (seen in
# tensorflow/tensorflow issues #100442, #85604, #66750, #62994 and on this project's machines).
STARTUP_LINES: list[Pattern[str]] = [
    re.compile(p)
    for p in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        _PREFIX + r"port\.cc:\d+\] oneDNN custom operations are on",
        _PREFIX + r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
        r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$",
        _PREFIX + r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
        _PREFIX + r"cuda_(?:fft|dnn|blas)\.cc:\d+\] Unable to register cu(?:FFT|DNN|BLAS) factory",
        _PREFIX + r"computation_placer\.cc:\d+\] computation placer already registered",
        _PREFIX + r"py_utils\.cc:\d+\] TF-TRT Warning: Could not find TensorRT",
        _PREFIX + r"cuda_(?:executor|platform|driver)\.cc:\d+\] failed call to cuInit",
        _PREFIX + r"cuda_executor\.cc:\d+\] successful NUMA node read from SysFS had negative value",
        _PREFIX + r"cuda_diagnostics\.cc:\d+\] ",
        _PREFIX + r"gpu_device\.cc:\d+\] Cannot dlopen some GPU libraries",
        r"^Skipping registering GPU devices\.\.\.$",
        r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$",  # LiteRT's interpreter, once per process
    )
]

# The modules whose first import is captured: TensorFlow prints while its libraries load.
NOISY_MODULES = ("tensorflow",)


def is_startup_line(line: str) -> bool:
    """Whether ``line`` is one of the known framework start-up lines."""
    return any(p.search(line) for p in STARTUP_LINES)


def without_startup_lines(text: str) -> str:
    """``text`` with every start-up line removed; every other line kept, in order."""
    return "".join(line for line in text.splitlines(keepends=True) if not is_startup_line(line.rstrip("\r\n")))


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """File descriptor 2 (what C++ libraries write to) goes to a temporary file inside the block;
    afterwards every line that is not a start-up line is written to the real stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = without_startup_lines(captured.read().decode("utf-8", "replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """The real loader of a noisy module, executing it under :func:`filtered_stderr`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with filtered_stderr():
            self._loader.exec_module(module)

    def __getattr__(self, name: str):  # get_resource_reader, is_package, ...: the real loader's
        return getattr(self._loader, name)


class QuietImports(importlib.abc.MetaPathFinder):
    """A finder placed first on ``sys.meta_path`` that wraps the loader of :data:`NOISY_MODULES`."""

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in NOISY_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Captures the start-up lines of the noisy modules not imported yet (idempotent)."""
    if not any(isinstance(f, QuietImports) for f in sys.meta_path):
        sys.meta_path.insert(0, QuietImports())
