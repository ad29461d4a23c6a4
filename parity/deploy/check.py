"""``check --targets`` and ``export --format``: every reachable (target, framework) pair exported
(and, with ``quantize``, its quantized variant beside it), each run in its runtime against the
torch model, one row each; a missing runtime or a variant a target does not have is one line."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np

from cnnbase.atomic import check_writable

from .files import DeployExport
from .keras_export import export_keras
from .rows import DeployResult, TargetRow, compare_all
from .table import TARGETS, PathLike, check_framework, check_quantize, quantize_missing, runtime_missing, target
from .torch_export import export_torch


def _key(name: str, framework: str, mode: str | None) -> tuple:
    return (name, framework, mode) if mode else (name, framework)


def export_all(
    torch_model, keras_model, names, workdir: PathLike, size=None, timeout: float = 600, quantize: str | None = None
) -> tuple[dict, list[TargetRow]]:
    """Exports every reachable (target, framework) pair into ``workdir``; returns ``(exports, rows)``:
    {(target, framework[, mode]): DeployExport}, [TargetRow for a missing runtime or variant].
    ``quantize``: also each target's variant of that mode, keyed (target, framework, mode)."""
    workdir = Path(workdir)
    exports: dict[tuple, DeployExport] = {}
    missing: list[TargetRow] = []
    modes: list[str | None] = [None] + ([quantize] if quantize else [])
    for mode in modes:
        keras_outs = {}
        for name in names:
            t = TARGETS[name]
            line = runtime_missing(name)
            if line is None and mode is not None:
                line = quantize_missing(name, mode)
                if line is not None:  # a variant this target does not have: said, not failed
                    missing.extend(TargetRow(name, fw, True, note=line, quantize=mode) for fw in t.frameworks)
                    continue
            if line is not None:
                if mode is None:
                    missing.extend(TargetRow(name, fw, False, note=line) for fw in t.frameworks)
                continue
            ext = t.suffix if t.suffix != "/" else ""
            tag = f".{mode}" if mode else ""
            if "torch" in t.frameworks:
                out = workdir / f"{torch_model.spec.name}.torch.{name}{tag}{ext}"
                exports[_key(name, "torch", mode)] = export_torch(name, torch_model, out, size=size, quantize=mode)
            if "keras" in t.frameworks:
                keras_outs[name] = workdir / f"{torch_model.spec.name}.keras.{name}{tag}{ext}"
        if keras_outs:
            done = export_keras(keras_model, keras_outs, timeout=timeout, quantize=mode)
            exports.update({_key(n, "keras", mode): info for n, info in done.items()})
    return exports, missing


def deploy_check(
    torch_model,
    keras_model,
    names,
    inputs: np.ndarray,
    rtol: float,
    atol: float,
    workdir=None,
    size=None,
    quantize: str | None = None,
) -> DeployResult:
    """Exports ``torch_model`` and ``keras_model`` (equal weights) to every target in ``names``,
    runs each in its runtime and compares with the torch model: one row per (target, framework)."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="parity_deploy_"))
        exports, missing = export_all(torch_model, keras_model, names, workdir, size=size, quantize=quantize)
        rows = compare_all(torch_model, exports, inputs, rtol, atol)
    return DeployResult(missing + rows)


def export(
    name: str,
    target_name: str,
    framework: str,
    out,
    weights=None,
    size=None,
    seed: int = 0,
    quantize: str | None = None,
) -> DeployExport:
    """``python -m parity export NAME --format TARGET [--quantize MODE]``: one artifact from ``framework``."""
    from ..twins import model_to_export

    t = target(target_name)
    check_framework(target_name, framework)
    check_quantize(target_name, quantize)
    if t.suffix != "/":
        check_writable(out, (t.suffix,))
    elif Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(f"cannot write {out}: {target_name} writes a folder and a file is in its place")
    model = model_to_export(name, framework, weights, size, seed)
    if framework == "torch":
        return export_torch(target_name, model, out, size=size, quantize=quantize)
    return export_keras(model, {target_name: out}, quantize=quantize)[target_name]
