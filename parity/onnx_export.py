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

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from .files import atomic_path

PathLike = Union[str, os.PathLike]
OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
EXPORT_BATCH = 2  # traced with 2, declared dynamic; checked with another batch size


class ExportError(RuntimeError):
    """The exporter failed; the message carries the end of its log."""


@dataclass
class ExportInfo:
    path: str
    framework: str
    seconds: float
    peak_rss_mb: float  # this process, plus the export subprocess for keras
    size_mb: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def export_torch(model, path: PathLike, size: Optional[tuple] = None, opset: int = OPSET) -> ExportInfo:
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
                model, example, dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},), opset_version=opset, optimize=True, verbose=False,
            )
        with atomic_path(path, suffix=".onnx") as tmp:
            program.save(str(tmp))
    except Exception as err:
        raise ExportError(f"torch export of {spec.name} failed: {type(err).__name__}: {err}") from err
    finally:
        model.train(was_training)
    path = Path(path)
    return ExportInfo(str(path), "torch", round(time.perf_counter() - start, 2), round(_rss_mb(), 1), round(path.stat().st_size / 1e6, 1))


def export_keras(model, path: PathLike, opset: int = OPSET, timeout: float = 600) -> ExportInfo:
    """Exports a keras_impl model through a torch-backend subprocess (see the module docstring)."""
    start = time.perf_counter()
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="keras_onnx_") as tmp:
        config, weights = Path(tmp) / "model.json", Path(tmp) / "model.weights.h5"
        config.write_text(model.to_json())
        model.save_weights(str(weights))
        env = {
            **os.environ,
            "KERAS_BACKEND": "torch",
            "CUDA_VISIBLE_DEVICES": "",  # trace on the CPU
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
        with atomic_path(path, suffix=".onnx") as out:
            cmd = [sys.executable, "-m", "parity.keras_onnx_child", str(config), str(weights), str(out), "--opset", str(opset)]
            try:
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise ExportError(f"keras export of {model.name} did not finish in {timeout:.0f}s") from None
            if proc.returncode != 0:
                raise ExportError(f"keras export of {model.name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = _rss_mb() + _rss_mb(resource.RUSAGE_CHILDREN)
    return ExportInfo(str(path), "keras", round(time.perf_counter() - start, 2), round(peak, 1), round(path.stat().st_size / 1e6, 1))
