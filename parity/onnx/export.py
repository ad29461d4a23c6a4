"""Exporting torch_impl and keras_impl models to ONNX, atomically, with a dynamic batch axis.

torch: ``torch.onnx.export(..., dynamo=True)`` with the batch dimension declared dynamic.

keras: Keras' own ``model.export(format="onnx")`` on the TensorFlow backend goes through tf2onnx,
which does not finish for VGG16 on a 24 GB machine. Measured cause: tf2onnx's optimizer rewrites
every node's attributes, weights included, once per optimizer pass, and with protobuf's C backend
(upb) the replaced sub-messages are only freed with the whole graph, so each pass leaks a full copy
of the weights (~0.5 GB per pass for VGG16); grappler's constant folding adds a 12 GB peak before
that. Instead, the keras model is rebuilt in a subprocess on the **torch** Keras backend from its
config and ``.weights.h5`` (a Keras model is a torch.nn.Module there) and exported with the same
dynamo exporter as the torch side. That is a faithful export of the Keras graph (NHWC, Keras'
layers), bounded at ~3 GB for VGG19, and works from a session on any backend. The subprocess also
keeps the exporter's memory out of the caller's process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cnnbase.atomic import atomic_path, process_alive

PathLike = str | os.PathLike
OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
EXPORT_BATCH = 2  # traced with 2, declared dynamic; checked with another batch size
CHILD = Path(__file__).with_name("keras_child.py")
# The Keras export's work folder (the model's config and weights for the child) in the system's
# temp folder: keras_onnx_<parent pid>_<random>; one whose parent was killed outright is removed by
# the next export (:func:`remove_stale_work_folders`).
WORK_PREFIX = "keras_onnx_"
_WORK_FOLDER = re.compile(re.escape(WORK_PREFIX) + r"(\d+)_[a-z0-9_]{8}")
# Runs CHILD so that it dies with the parent (Linux' PR_SET_PDEATHSIG): a parent killed outright
# (SIGKILL) takes the child along instead of leaving it to write the temp ONNX file after the next
# writer of the target cleaned up. Started with the parent's id: a parent that died before the
# prctl call is noticed. (The signal follows the thread that started the child: this project
# starts them from the main thread.) Elsewhere the child just runs (its id in the temp name keeps its file
# until it ends, and the next export removes it).
_CHILD_WITH_PARENT = """\
import ctypes, os, runpy, signal, sys
parent, child = int(sys.argv[1]), sys.argv[2]
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    sys.exit(3)
sys.argv = [child]
runpy.run_path(child, run_name="__main__")
"""


class ExportError(RuntimeError):
    """The exporter failed; the message carries the end of its log."""


@dataclass
class ExportInfo:
    path: str
    framework: str
    seconds: float
    peak_rss_mb: float  # this process, plus the export subprocess for keras
    size_mb: float
    phases: dict | None = None  # keras: the child's seconds per phase (imports, read_weights, export, save)
    exporter: str | None = None  # keras: "torchscript", or "dynamo" when the tracer failed (5x slower)
    parent_backend: str | None = None  # keras: the backend the model was built on before the child rebuilt it

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def export_torch(model, path: PathLike, size: tuple | None = None, opset: int = OPSET) -> ExportInfo:
    """Exports a torch_impl model (eval mode) to ``path`` with input (batch, C, H, W); H, W are
    ``size`` or the spec's input size."""
    import torch

    spec = model.spec
    c = spec.input_size[0]
    h, w = size or spec.input_size[1:]
    start = time.perf_counter()
    was_training = model.training
    model.eval()
    example = (torch.zeros(EXPORT_BATCH, c, h, w),)
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                example,
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
        with atomic_path(path, suffix=".onnx") as tmp:
            program.save(str(tmp))
    except Exception as err:
        raise ExportError(f"torch export of {spec.name} failed: {type(err).__name__}: {err}") from err
    finally:
        model.train(was_training)
    path = Path(path)
    return ExportInfo(
        str(path),
        "torch",
        round(time.perf_counter() - start, 2),
        round(_rss_mb(), 1),
        round(path.stat().st_size / 1e6, 1),
    )


class KerasExport:
    """A Keras export running in its subprocess (:func:`start_export_keras`); ``wait()`` returns
    its :class:`ExportInfo` once the file is in place. Meanwhile the caller can work on: the torch
    export, comparisons. On 2 cores that hides most of the child's start-up."""

    def __init__(self, model, path: PathLike, opset: int = OPSET, timeout: float = 600) -> None:
        self.name, self.path, self.timeout = model.name, Path(path), timeout
        self._start = time.perf_counter()
        self._stack = contextlib.ExitStack()
        try:
            self._proc = _take_spare() or _spawn_child()
            # the child writes the temp file: named after both processes, it is stale once both ended
            out = self._stack.enter_context(atomic_path(self.path, suffix=".onnx", writers=(self._proc.pid,)))
            remove_stale_work_folders()
            tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}_")))
            config, weights = tmp / "model.json", tmp / "model.safetensors"
            from keras_impl.weights import config_json, save_variables

            config.write_text(config_json(model))
            job = {
                "config": str(config),
                "weights": str(weights),
                "out": str(out),
                "opset": opset,
                "batch": EXPORT_BATCH,
                "input_name": INPUT_NAME,
                "output_name": OUTPUT_NAME,
            }
            self._tell(json.dumps(job))  # it builds the model while the weights are written
            save_variables(model, weights)
            self._tell("weights written")
        except BaseException as err:
            self._abandon(err)
            raise

    def _tell(self, line: str) -> None:
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:  # the child already failed: wait() reports its error
            pass

    def cancel(self) -> None:
        """Stops the child if it still runs and removes its temp files (a no-op after ``wait``)."""
        self._abandon(ExportError(f"keras export of {self.name} cancelled"))

    def _abandon(self, err: BaseException) -> None:
        """Kills the child if any and unwinds the temp files as after an error: the temp ONNX file
        is removed, never renamed onto the target (a plain close would count as success)."""
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        self._stack.__exit__(type(err), err, err.__traceback__)

    def wait(self) -> ExportInfo:
        with self._stack:
            try:
                stdout, stderr = self._proc.communicate(
                    timeout=max(1.0, self.timeout - (time.perf_counter() - self._start))
                )
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.communicate()
                raise ExportError(f"keras export of {self.name} did not finish in {self.timeout:.0f}s") from None
            except BaseException:  # Ctrl-C: no orphan child
                self._proc.kill()
                raise
            if self._proc.returncode != 0:
                raise ExportError(
                    f"keras export of {self.name} failed (exit {self._proc.returncode}):\n{stderr[-3000:]}"
                )
        peak = _rss_mb() + _rss_mb(resource.RUSAGE_CHILDREN)
        try:
            report = json.loads(stdout.strip().splitlines()[-1])
            phases, exporter = report.get("seconds"), report.get("exporter")
        except (ValueError, IndexError, AttributeError):
            phases, exporter = None, None
        return ExportInfo(
            str(self.path),
            "keras",
            round(time.perf_counter() - self._start, 2),
            round(peak, 1),
            round(self.path.stat().st_size / 1e6, 1),
            phases,
            exporter,
        )


_spare: subprocess.Popen | None = None  # one export child, imported and waiting for its job


def _spawn_child() -> subprocess.Popen:
    """Starts :data:`CHILD` on Keras' torch backend; it imports (~6 s) and then waits for a job on stdin.
    Run by path (through :data:`_CHILD_WITH_PARENT`), not ``-m parity...``: it needs keras_impl and
    torch, not parity's package imports (torchvision and the comparison modules, ~3 s)."""
    env = {
        **os.environ,
        "KERAS_BACKEND": "torch",
        "CUDA_VISIBLE_DEVICES": "",  # trace on the CPU
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD_WITH_PARENT, str(os.getpid()), str(CHILD)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def remove_stale_work_folders() -> list:
    """Removes the work folders (:data:`WORK_PREFIX`) of Keras exports whose process has ended:
    what a parent killed outright left in the system's temp folder (the model's weights)."""
    root = Path(tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        match = _WORK_FOLDER.fullmatch(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not process_alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def prestart_keras_export() -> None:
    """Starts an export child now, so that the next :func:`start_export_keras` finds it imported
    (``parity check`` calls this before building its models; ``check --all`` for every model).
    An unused spare exits by itself when this process ends (its stdin closes)."""
    global _spare
    if _spare is None or _spare.poll() is not None:
        _spare = _spawn_child()


def _take_spare() -> subprocess.Popen | None:
    global _spare
    proc, _spare = _spare, None
    return proc if proc is not None and proc.poll() is None else None


def start_export_keras(model, path: PathLike, opset: int = OPSET, timeout: float = 600) -> KerasExport:
    """Starts exporting a keras_impl model through a torch-backend subprocess (see the module
    docstring); the model's weights are saved before this returns, so it may change afterwards."""
    return KerasExport(model, path, opset, timeout)


def export_keras(model, path: PathLike, opset: int = OPSET, timeout: float = 600) -> ExportInfo:
    """Exports a keras_impl model through a torch-backend subprocess (see the module docstring)."""
    return start_export_keras(model, path, opset, timeout).wait()
