"""int8 inference for torch_impl models: post-training static quantization of their ONNX export.

    run = int8_inference(model, calibration)   # calibration: (N, C, H, W) float32 images, preprocessed
    logits = run(x)                             # float32 logits of the int8 graph

Why this path (measured, ``benchmarks/int8.py``): torch's own PT2E quantizer left torch for
torchao (not installed here, and its x86 path needs torch.compile); OpenVINO's NNCF gave a similar
int8 graph but pulls scikit-learn and a dozen packages into the install, and its runtime was no
faster here than onnxruntime's. onnxruntime's ``quantize_static`` needs nothing new: the ONNX
export the parity check already proves, calibrated on the user's images, QDQ format (int8
weights per output channel, uint8 activations: the u8s8 kernels that VNNI CPUs run fastest).

int8 does not hold float32's tolerance; :data:`torch_impl.fastpath.TOLERANCE` ``["int8"]`` bounds
it, and the benchmark reports top-1 agreement and held-out accuracy beside the speed.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnbase.atomic import atomic_path

from .export import export_torch
from .fourway import onnx_session

PathLike = str | os.PathLike
CALIBRATION_BATCH = 8


@dataclass(frozen=True)
class Int8Export:
    path: str
    float_path: str
    seconds: float  # export + calibration + quantization
    size_mb: float


class _Batches:
    """onnxruntime's CalibrationDataReader over an array, ``CALIBRATION_BATCH`` images at a time."""

    def __init__(self, name: str, images: np.ndarray) -> None:
        self.name, self.images = name, images
        self.rewind()

    def rewind(self) -> None:
        self._it: Iterator[np.ndarray] = (
            self.images[i : i + CALIBRATION_BATCH] for i in range(0, len(self.images), CALIBRATION_BATCH)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self.name: batch}


def check_calibration(images: np.ndarray, channels: int) -> np.ndarray:
    """One clear line for calibration data that cannot calibrate: not (N, C, H, W), empty, NaN/Inf."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != channels or len(images) == 0:
        raise ValueError(
            f"calibration images: expected a non-empty (N, {channels}, H, W) array, got shape {images.shape}"
        )
    if not np.isfinite(images).all():
        raise ValueError("calibration images: expected finite values, got NaN or Inf")
    return images


def quantize_onnx(float_path: PathLike, calibration: np.ndarray, out: PathLike) -> Path:
    """Writes the static int8 (QDQ) version of ``float_path`` to ``out``, atomically."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = onnx_session(float_path).get_inputs()[0].name
    with tempfile.TemporaryDirectory() as work, atomic_path(out, suffix=".onnx") as tmp:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared))  # shape inference + BatchNorm/Conv fusion first
        quantize_static(
            str(prepared),
            str(tmp),
            _Batches(name, calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return Path(out)


def export_int8(model, calibration: np.ndarray, out: PathLike, size: tuple | None = None) -> Int8Export:
    """Exports ``model`` (a torch_impl model) to ONNX beside ``out`` and quantizes it with ``calibration``."""
    calibration = check_calibration(calibration, model.spec.input_size[0])
    size = size or tuple(calibration.shape[2:])
    out = Path(out)
    float_path = out.with_name(out.stem + ".float32.onnx")
    start = time.perf_counter()
    export_torch(model, float_path, size=size)
    quantize_onnx(float_path, calibration, out)
    return Int8Export(
        str(out), str(float_path), round(time.perf_counter() - start, 2), round(out.stat().st_size / 1e6, 2)
    )


class Int8Inference:
    """The int8 fast path: called with (N, C, H, W) float32 images (numpy or torch), returns float32
    logits (numpy) of ``model``'s int8 graph, run in onnxruntime. The ONNX files go to ``workdir``
    (a temp folder that lives as long as this object, when None); ``export`` says where they are."""

    def __init__(self, model, calibration: np.ndarray, workdir: PathLike | None = None, spinning: bool = True):
        self._temp = tempfile.TemporaryDirectory(prefix="int8_") if workdir is None else None
        folder = Path(self._temp.name if self._temp else workdir)
        self.export = export_int8(model, calibration, folder / f"{model.spec.name}.int8.onnx")
        self._session = onnx_session(self.export.path, spinning=spinning)
        self._input = self._session.get_inputs()[0].name

    def __call__(self, x) -> np.ndarray:
        x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        return self._session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0]


int8_inference = Int8Inference  # named like torch_impl.fastpath.fast_inference
