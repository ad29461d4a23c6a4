"""The suite's outputs from its rows: a markdown table and a PNG (the JSON is the rows themselves)."""

from __future__ import annotations

import math
from pathlib import Path

COLUMNS = (
    "model",
    "batch",
    "process",
    "impl",
    "variant",
    "images/s",
    "p50 ms",
    "p90 ms",
    "peak MB",
    "GFLOP/s",
    "of sgemm",
    "ours/ref",
    "vs eager",
    "top-1",
    "rel err",
)


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, spec)


def markdown(rows: list[dict], meta: dict) -> str:
    """One table row per contender: speed, latency, memory, efficiency, and the comparison that
    matters for it (``ours/ref`` for same-math pairs, ``vs eager`` with parity for fast paths)."""
    lines = [
        f"Machine: {meta['cpu']}, {meta['cores']} cores; {meta['device']}. sgemm (4096^2 float32, "
        f"{meta['sgemm_library']}): "
        f"{meta['sgemm_gflops']:.0f} GFLOP/s. bf16: {meta['bf16']}.",
        f"Command: `{meta['command']}` ({meta['wall_s'] / 60:.1f} min; {meta['versions']}).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in rows:
        ratio = _fmt(r.get("ratio"), ".2f") + (
            f" (best {r['ratio_best']:.2f}) vs {r['reference']}" if r.get("reference") else ""
        )
        if r.get("reference") and not r.get("same_math", True):
            ratio += " *"
        variant = r["variant"] + (" (emulated)" if r.get("native") is False else "")  # a speed that is no claim
        cells = [
            r["model"],
            str(r["batch"]),
            r["process"],
            r["impl"],
            variant,
            _fmt(r["images_s"], ".1f"),
            _fmt(r["p50_ms"], ".1f"),
            _fmt(r["p90_ms"], ".1f"),
            _fmt(r["peak_mb"], ".0f"),
            _fmt(r["gflops"], ".1f"),
            _fmt(r.get("sgemm_fraction"), ".0%"),
            ratio,
            _fmt(r.get("speedup"), ".2f"),
            _fmt(r.get("top1"), ".0%"),
            _fmt(r.get("rel_err"), ".1e") + ("" if r.get("agrees", True) else " (beyond its bound)"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "ours/ref > 1: ours is faster (ratio of median throughputs; best: of the fastest calls). * another graph of "
        "the same size (keras.applications' ResNet50 is v1), "
        "not same math. `vs eager`: throughput over torch_impl float32 eager, with top-1 agreement and max relative "
        "error of the logits on the same inputs. Peak MB: resident-set growth during one call.",
    ]
    return "\n".join(lines) + "\n"


def summary(rows: list[dict], meta: dict) -> str:
    """One line per (model, batch): every same-math ratio ours/reference, and the fastest path with
    its share of sgemm and its parity with float32 eager. What the README shows."""
    pairs = [
        ("torch", "eager"),
        ("torch", "channels_last"),
        ("torch", "compile"),
        ("keras/tensorflow", "graph"),
        ("keras/tensorflow", "xla"),
        ("keras/jax", "xla"),
    ]
    head = (
        ["model", "batch"]
        + [f"{p.split('/')[-1]} {v}" for p, v in pairs]
        + ["fastest path", "images/s", "of sgemm", "top-1", "rel err"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups = {}
    for r in rows:
        groups.setdefault((r["model"], r["batch"]), []).append(r)
    for (model, batch), group in groups.items():
        cells = [model, str(batch)]
        for process, variant in pairs:
            r = next(
                (
                    r
                    for r in group
                    if r["process"] == process and r["variant"] == variant and r.get("ratio") is not None
                ),
                None,
            )
            cells.append(
                "" if r is None else f"{r['ratio']:.2f} / {r['ratio_best']:.2f}" + ("" if r.get("same_math") else " *")
            )
        fast = [r for r in group if r.get("top1") is not None and r.get("agrees", True)]  # within its own bound
        best = max(fast, key=lambda r: r["images_s"], default=None)
        cells += (
            ["", "", "", "", ""]
            if best is None
            else [
                f"{best['impl']} {best['variant']}",
                _fmt(best["images_s"], ".1f"),
                _fmt(best.get("sgemm_fraction"), ".0%"),
                _fmt(best["top1"], ".0%"),
                _fmt(best["rel_err"], ".1e"),
            ]
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios: throughput ours/reference, median calls / fastest calls (torch: torch_impl/torchvision; "
        "tensorflow, jax: keras_impl/keras.applications, which has VGG16 and ResNet50 only; * ResNet50 there is v1, "
        "not the same graph).",
    ]
    return "\n".join(lines) + "\n"


def chart(rows: list[dict], meta: dict, path: Path) -> None:
    """Left: every same-math ratio ours/reference, with the 0.97 line. Right: each contender's
    GFLOP/s as a fraction of sgemm at the largest batch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [r for r in rows if r.get("ratio") is not None]
    biggest = max(r["batch"] for r in rows)
    efficient = [
        r
        for r in rows
        if r["batch"] == biggest and r.get("sgemm_fraction") is not None and not math.isnan(r["sgemm_fraction"])
    ]
    height = max(len(pairs), len(efficient)) * 0.22 + 1.5
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, height))
    labels = [f"{r['model']} b{r['batch']} {r['process']} {r['variant']}" for r in pairs]
    colors = ["tab:blue" if r.get("same_math") else "tab:gray" for r in pairs]
    left.barh(range(len(pairs)), [r["ratio"] for r in pairs], color=colors)
    left.axvline(0.97, color="red", linestyle="--", linewidth=1, label="0.97")
    left.axvline(1.0, color="black", linewidth=0.5)
    left.set_yticks(range(len(pairs)), labels, fontsize=7)
    left.invert_yaxis()
    left.set_xlabel("throughput ours / reference (gray: not the same graph)")
    left.legend(loc="lower right", fontsize=7)
    labels = [f"{r['model']} {r['process']} {r['impl']} {r['variant']}" for r in efficient]
    right.barh(range(len(efficient)), [r["sgemm_fraction"] for r in efficient], color="tab:green")
    right.axvline(0.75, color="red", linestyle="--", linewidth=1, label="0.75")
    right.set_yticks(range(len(efficient)), labels, fontsize=7)
    right.invert_yaxis()
    right.set_xlabel(f"achieved GFLOP/s / sgemm ({meta['sgemm_gflops']:.0f}), batch {biggest}")
    right.legend(loc="lower right", fontsize=7)
    fig.suptitle(f"{meta['cpu']}, {meta['cores']} cores, {meta['device']}", fontsize=9)
    fig.tight_layout()
    from cnnbase.atomic import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
