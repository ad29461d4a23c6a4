"""The comparison rows of ``check --targets``: each export run in its runtime against the torch
model's float32 logits, one :class:`TargetRow` per (target, framework[, quantized mode]).

A float32 export passes within the float32 tolerance (``rtol``) with every top-1 equal (up to a
tie within the tolerance). A quantized variant cannot meet that, and is not held to it: it is run
on a fixed probe batch (:data:`PROBE_BATCH` seeded normal images) and reports its own figures
(top-1 agreement with float32, max relative error, size); it passes when its top-1 agreement is at
least :data:`QUANTIZED_TOP1` for its mode, and every output is finite.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .files import DeployExport
from .runtimes import litert_ops, run

PROBE_BATCH = 16
PROBE_SEED = 0
# a quantized variant's criterion: the share of the probe batch whose top-1 class equals float32's
QUANTIZED_TOP1 = {"float16": 0.9, "dynamic-int8": 0.75}


@dataclass
class TargetRow:
    target: str
    framework: str
    passed: bool
    max_rel: float | None = None
    top1: float | None = None
    size_mb: float | None = None
    export_s: float | None = None
    peak_rss_mb: float | None = None
    transposes: int | None = None  # litert: TRANSPOSE ops in the flatbuffer
    note: str = ""  # the missing runtime's line, an error
    quantize: str | None = None  # float16, dynamic-int8; None: float32
    criterion: str = ""  # what it was held to

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class DeployResult:
    rows: list[TargetRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "rows": [r.to_dict() for r in self.rows]}


def probe_batch(like: np.ndarray) -> np.ndarray:
    """The fixed probe batch a quantized variant is judged on: images shaped like ``like``'s."""
    shape = (PROBE_BATCH, *like.shape[1:])
    return np.random.default_rng(PROBE_SEED).standard_normal(shape).astype(np.float32)


def compare_all(
    torch_model,
    exports: dict[tuple, DeployExport],
    inputs: np.ndarray,
    rtol: float,
    atol: float,
    outputs: dict[tuple, np.ndarray] | None = None,
) -> list[TargetRow]:
    """Runs each export on ``inputs`` (NCHW; NHWC for Keras' artifacts; the probe batch for a
    quantized one) against the torch model's logits. ``outputs``: each artifact's output by key,
    filled on a first call and reused on the next (a twin's reference changes, the artifacts do not)."""
    import torch

    from ..comparison.compare import figures, to_nhwc

    def reference(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch_model.eval()(torch.from_numpy(x)).numpy()

    float_ref = reference(inputs)
    probe = probe_batch(inputs)
    probe_ref = reference(probe) if any(info.quantize for info in exports.values()) else None
    rows = []
    for key, info in exports.items():
        name, framework = key[:2]
        x, ref = (probe, probe_ref) if info.quantize else (inputs, float_ref)
        x = to_nhwc(x) if info.layout == "NHWC" else x
        try:
            out = outputs[key] if outputs is not None and key in outputs else run(name, info.path, x)
            if outputs is not None:
                outputs[key] = out
            f = figures(f"{name} {framework}", ref, out, rtol, atol, classes=True)
            if info.quantize:
                need = QUANTIZED_TOP1[info.quantize]
                passed = f.finite and f.top1 is not None and f.top1 >= need
                criterion = f"top-1 >= {need:.0%} of {PROBE_BATCH}"
            else:
                passed, criterion = f.passed, f"max rel <= {rtol:g}"
            row = TargetRow(
                name,
                framework,
                passed,
                f.max_rel,
                f.top1,
                info.size_mb,
                info.seconds,
                info.peak_rss_mb,
                quantize=info.quantize,
                criterion=criterion,
            )
        except Exception as err:  # a runtime that refuses the artifact: a failed row, not a crash
            row = TargetRow(
                name,
                framework,
                False,
                size_mb=info.size_mb,
                export_s=info.seconds,
                note=f"{type(err).__name__}: {err}",
                quantize=info.quantize,
            )
        if name == "litert":
            row.transposes = litert_ops(info.path).get("TRANSPOSE", 0)
        rows.append(row)
    return rows


def row_line(model: str, row: TargetRow) -> str:
    """One line of ``check --targets``' table."""
    label = f"{row.target} {row.framework}" + (f" {row.quantize}" if row.quantize else "")
    head = f"{model:17s} {label:17s}"
    if row.max_rel is None:
        verdict = "ok" if row.passed else "FAIL"
        return f"{head} {verdict:>8s}  {row.note.splitlines()[0] if row.note else 'no result'}"
    extra = f", {row.transposes} transposes" if row.transposes is not None else ""
    held = f", {row.criterion}" if row.quantize else ""
    return (
        f"{head} {'':>8s} {row.max_rel:10.2e} {row.top1 * 100:5.0f}%  {'':6s}  {'ok' if row.passed else 'FAIL'}"
        f"  ({row.size_mb:.2f} MB, export {row.export_s:.1f}s{extra}{held})"
    )
