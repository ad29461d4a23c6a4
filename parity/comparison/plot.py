"""``python -m parity check ... --plot FILE.png``: the relative error per spec node, log scale.

Drawn from the JSON summaries (the same dicts ``--json`` writes), so a check that ran on several
Keras backends, some in subprocesses, is one figure: a line per backend (and per direction).
Inference: one panel per model, the error of every spec node's output, the ONNX outputs as
markers at the end. Training: per model, gradients, updated weights and BatchNorm statistics,
each parameter's worst step, in forward order. The dashed line is the tolerance.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from cnnbase.atomic import atomic_write

FLOOR = 1e-17  # an exact zero is drawn here (log scale)
MAX_TICKS = 40
COLOURS = {"tensorflow": "C0", "jax": "C1", "torch": "C2"}  # one colour per backend, in every panel
LINES = ("-", "--", ":")  # per direction
MARKERS = ("D", "s", "^", "v")  # per ONNX comparison
TRAIN_PANELS = (
    ("grad", "gradients (backprop)"),
    ("param", "updated weights"),
    ("running stat", "BatchNorm statistics"),
)


def _models(summaries: dict[str, dict]) -> list[str]:
    return list(dict.fromkeys(r["model"] for s in summaries.values() for r in s.get("results", [])))


def _result(summary: dict, model: str):
    return next((r for r in summary.get("results", []) if r["model"] == model), None)


def _rel(value: float) -> float:
    return max(value, FLOOR) if math.isfinite(value) else float("nan")


def _ticks(ax, names: list[str]) -> None:
    step = max(1, math.ceil(len(names) / MAX_TICKS))
    ax.set_xticks(range(0, len(names), step))
    ax.set_xticklabels(names[::step], rotation=90, fontsize=6)


def _style(ax, title: str, rtol: float) -> None:
    ax.set_yscale("log")
    ax.axhline(rtol, color="grey", linestyle="--", linewidth=0.8, label=f"tolerance {rtol:g}")
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("max relative error", fontsize=8)
    ax.grid(alpha=0.3, which="both", axis="y")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _inference_panel(ax, summaries: dict[str, dict], model: str) -> None:
    names: list[str] = []
    rtol = 1e-5
    for backend, summary in summaries.items():
        result = _result(summary, model)
        if result is None:
            continue
        for report in result["reports"]:
            rtol = report["rtol"]
            layers = report["layers"] or [report["output"]]
            names = names if len(names) >= len(layers) else [f["name"] for f in layers]
            ax.plot(
                [_rel(f["max_rel"]) for f in layers],
                marker=".",
                markersize=3,
                linewidth=1,
                color=COLOURS.get(backend),
                linestyle=LINES[result["reports"].index(report) % len(LINES)],
                label=f"{backend}: {report['label']}",
            )
        for i, report in enumerate((result.get("onnx") or {}).get("reports", [])):
            ax.plot(
                [len(names) - 1],
                [_rel(report["output"]["max_rel"])],
                marker=MARKERS[i % len(MARKERS)],
                linestyle="",
                color=COLOURS.get(backend),
                label=f"{backend}: {report['label']} (output)",
            )
    _ticks(ax, names)
    _style(ax, f"{model}: inference, error per spec node", rtol)


def _training_rows(result: dict, kind: str) -> tuple[list[str], list[float]]:
    """Each tensor's worst step for one kind, in forward order."""
    from ..training.steps import row_kind

    worst: dict[str, float] = {}
    for row in result["rows"]:
        if row_kind(row["name"]) != kind:
            continue
        key = row["name"].removeprefix("grad ").rsplit("@", 1)[0]
        worst[key] = max(worst.get(key, 0.0), row["max_rel"]) if math.isfinite(row["max_rel"]) else float("nan")
    keys = list(worst)[::-1] if kind == "grad" else list(worst)  # gradients come head first
    return keys, [_rel(worst[k]) for k in keys]


def _training_panels(axes, summaries: dict[str, dict], model: str) -> None:
    for ax, (kind, title) in zip(axes, TRAIN_PANELS):
        names: list[str] = []
        rtol = 1e-5
        losses = []
        for backend, summary in summaries.items():
            result = _result(summary, model)
            if result is None:
                continue
            rtol = result["rtol"]
            keys, values = _training_rows(result, kind)
            names = keys if len(keys) > len(names) else names
            if values:
                ax.plot(values, marker=".", markersize=3, linewidth=1, color=COLOURS.get(backend), label=backend)
            losses.append(
                f"{backend} "
                f"{max((r['max_rel'] for r in result['rows'] if r['name'].startswith('loss')), default=0):.0e}"
            )
        _ticks(ax, names)
        _style(ax, f"{model}: {title}" + (f"   (loss: {', '.join(losses)})" if kind == "grad" else ""), rtol)


def plot_check(summaries: dict[str, dict], path: str | os.PathLike) -> Path:
    """Draws the per-node errors of ``{backend: summary}`` (the ``--json`` dicts) into ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = _models(summaries)
    if not models:
        raise ValueError("nothing to plot: no model was checked")
    train = any(s.get("mode") == "train" for s in summaries.values())
    columns = len(TRAIN_PANELS) if train else 1
    fig = Figure(figsize=(7 * columns + 2, 3.8 * len(models)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(models), columns, squeeze=False)
    for row, model in zip(axes, models):
        if train:
            _training_panels(row, summaries, model)
        else:
            _inference_panel(row[0], summaries, model)
    fig.tight_layout()
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=90), suffix=".png")
