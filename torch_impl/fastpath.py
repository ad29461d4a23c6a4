"""The fast inference path a user opts into: channels_last, torch.compile, bfloat16 autocast.

    run = fast_inference(model, compile=True)          # then: logits = run(x)   (x: N, C, H, W)

Each option changes kernels, not math: channels_last picks the NHWC convolution kernels (oneDNN on
CPU, cuDNN's tensor-core layout on GPU), ``compile`` fuses BatchNorm/ReLU/add into them (inductor),
``bf16`` runs matrix products in bfloat16 (faster only where the hardware has it: AMX or
AVX512_BF16 CPUs, Ampere+ GPUs; see :func:`bf16_supported`; elsewhere it runs emulated, slower,
with the same rounding). ``benchmarks`` measures each against float32 eager and prints top-1
agreement and relative error beside the speed; :data:`TOLERANCE` says how far each precision may
stray, so every test and report holds a path to its own precision's bound, on every CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Tolerance:
    """How far a path's logits may stray from float32 eager's on the same input: ``rel_err`` bounds
    max |out - ref| / max |ref|, ``top1`` is the least fraction of the batch whose class agrees."""

    rel_err: float
    top1: float

    def accepts(self, rel_err: float, top1: float) -> bool:
        """NaN (a broken or empty output) is never accepted."""
        return not (math.isnan(rel_err) or math.isnan(top1)) and rel_err <= self.rel_err and top1 >= self.top1


TOLERANCE: dict[str, Tolerance] = {
    # same math, other kernels (channels_last, compile, onnxruntime): float32 rounding only
    "float32": Tolerance(1e-5, 1.0),
    # TF32 keeps 10 mantissa bits (2^-11 rounding per product) on Ampere+ GPUs
    "tf32": Tolerance(1e-2, 0.75),
    # bfloat16 keeps 8 (2^-9): measured 4e-3..1.2e-2 over resnet18/50, vgg11_bn/16, alexnet,
    # mobilenet_v2, efficientnet_b0, native (AVX512_BF16) and emulated (oneDNN capped at AVX2) alike
    "bf16": Tolerance(3e-2, 0.75),
    # int8 (parity.onnx.int8, static, per-channel weights): measured 2.6e-2..4.9e-2 on random
    # lenet5/resnet18/mobilenet_v2 and on resnet18 trained on digits (top-1 99.7% there)
    "int8": Tolerance(1e-1, 0.75),
}


def tolerance(variant: str) -> Tolerance:
    """The bound of a path by its variant name ('bf16', 'tf32', 'int8'; every other variant is float32)."""
    return TOLERANCE.get(variant, TOLERANCE["float32"])


def cpu_bf16_feature() -> str | None:
    """The CPU flag that gives native bfloat16 matrix products ('amx_bf16', 'avx512_bf16'), or None
    (Linux /proc/cpuinfo; None elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:  # pragma: no cover  (not Linux)
        return None
    return next((flag for flag in ("amx_bf16", "avx512_bf16") if flag in flags), None)


def bf16_supported(device: str = "cpu") -> bool:
    """Native bfloat16 matrix products on ``device``: emulated bf16 on other CPUs is slower than
    float32, so it is no fast path there."""
    if torch.device(device).type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_bf16_feature() is not None


def fast_inference(
    model: nn.Module, *, channels_last: bool = True, compile: bool = False, bf16: bool = False, device: str = "cpu"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` in eval mode on ``device`` with the chosen options; returns ``run(x) -> logits``
    (float32 logits whatever the compute dtype). The model itself is moved, not copied."""
    model = model.eval().to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model, dynamic=False) if compile else model
    device_type = torch.device(device).type

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device, memory_format=memory_format)
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
        return out.float()

    return run
