"""The fine-tuning recipe study (issue 34): on real datasets that packages ship
(benchmarks/real_datasets.py: scikit-learn's digits, scikit-image's LFW faces/non-faces and a
texture set cut from its sample photos), resnet18 from scratch at one epoch budget, 3 seeds each:

``plain``
    the loop a user writes in 25 lines with torchvision: Resize, random horizontal and vertical
    flips, AdamW (weight decay 1e-4) under OneCycleLR peaking at 2e-3, batch 32, plain cross-entropy.
``reference``
    torchvision's reference recipe (benchmarks/finetune_reference.py: RandomResizedCrop area
    0.25-1 + horizontal flip, AdamW 3e-3 with OneCycleLR, weight decay 0.05, label smoothing 0.1,
    batch 64) at the same budget.
``torch-cli`` / ``keras-cli``
    ``python -m torch_impl finetune`` and ``KERAS_BACKEND=jax python -m keras_impl finetune`` with
    their defaults (``--model resnet18 --epochs N --seed S`` the only flags).

Every run sees the images at 32x32 (the CLI's size rule picks 32 for all three datasets; the
others are given it). Each contender runs in its own process on one thread, two side by side. Writes
``<out>/recipe_study.json`` (every run's per-epoch validation accuracy and seconds),
``<out>/recipe_study.md`` (the table: best and final validation accuracy, mean ± standard
deviation over the seeds, seconds per epoch) and the curves ``docs/figures/recipe_study.png``.

    python -m benchmarks.recipe_study                 # 3 datasets x 4 contenders x 3 seeds, 5 epochs
    python -m benchmarks.recipe_study --quick         # 1 seed, 2 epochs: a smoke run

Epoch times are wall-clock on whatever machine runs it; on a shared 2-core machine they are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

CONTENDERS = ("plain", "reference", "torch-cli", "keras-cli")
DATASETS = ("digits", "faces", "textures")
SIZE = 32
MODEL = "resnet18"
FIGURE = Path("docs/figures/recipe_study.png")
# each run on one thread: with more threads than free cores (a shared machine) torch and XLA spin
# and an epoch took 50 times longer; --jobs runs that many contenders side by side
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


# ----------------------------------------------------------------------------- the runs (one side per process)
def plain_loop(data: Path, epochs: int, seed: int) -> dict[str, list[float]]:
    """The 25-line torchvision loop of issue 34, run as written there."""
    import torch
    import torchvision
    from torch import nn
    from torchvision import transforms as T

    torch.manual_seed(seed)
    norm = [T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
    rgb = T.Lambda(lambda im: im.convert("RGB"))
    train_tf = T.Compose([rgb, T.Resize((SIZE, SIZE)), T.RandomHorizontalFlip(), T.RandomVerticalFlip(), *norm])
    val_tf = T.Compose([rgb, T.Resize((SIZE, SIZE)), *norm])
    train = torchvision.datasets.ImageFolder(str(data / "train"), train_tf)
    val = torchvision.datasets.ImageFolder(str(data / "val"), val_tf)
    g = torch.Generator().manual_seed(seed)
    train_dl = torch.utils.data.DataLoader(train, batch_size=32, shuffle=True, generator=g)
    val_dl = torch.utils.data.DataLoader(val, batch_size=64)
    net = torchvision.models.resnet18(num_classes=len(train.classes))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, epochs=epochs, steps_per_epoch=len(train_dl))
    loss_fn = nn.CrossEntropyLoss()
    out: dict[str, list[float]] = {"val_acc": [], "seconds": []}
    for _ in range(epochs):
        t = time.perf_counter()
        net.train()
        for x, y in train_dl:
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
            sched.step()
        net.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val_dl:
                correct += int((net(x).argmax(1) == y).sum())
        out["val_acc"].append(correct / len(val))
        out["seconds"].append(time.perf_counter() - t)
    return out


def reference_loop(data: Path, epochs: int, seed: int) -> dict[str, list[float]]:
    from benchmarks.finetune_reference import run_reference

    r = run_reference(data, epochs, size=SIZE, model=MODEL, seed=seed, progress=False)
    return {"val_acc": r["val_acc"], "seconds": r["epoch_seconds"]}


def cli_run(framework: str, data: Path, epochs: int, seed: int) -> dict[str, list[float]]:
    """The CLI's defaults through its Python entry point (the same options the command parses)."""
    if framework == "torch":
        from torch_impl.finetune import finetune
    else:
        from keras_impl.finetune import finetune
    with tempfile.TemporaryDirectory() as out:
        r = finetune(data=str(data), model=MODEL, epochs=epochs, seed=seed, progress=False, out=out)
    return {"val_acc": [h["val_acc"] for h in r.history], "seconds": [h["seconds"] for h in r.history]}


def run_side(
    contender: str, datasets: dict[str, Path], epochs: int, seeds: list[int], result: Path
) -> list[dict[str, Any]]:
    """Runs one contender on every dataset and seed; ``result`` is rewritten after each run."""
    runs = []
    for name, path in datasets.items():
        for seed in seeds:
            if contender == "plain":
                r = plain_loop(path, epochs, seed)
            elif contender == "reference":
                r = reference_loop(path, epochs, seed)
            else:
                r = cli_run(contender.split("-")[0], path, epochs, seed)
            runs.append({"dataset": name, "contender": contender, "seed": seed, **r})
            result.write_text(json.dumps(runs))
            print(
                f"{contender:10s} {name:9s} seed {seed}: best {max(r['val_acc']):.3f} final {r['val_acc'][-1]:.3f} "
                f"({statistics.mean(r['seconds']):.1f} s/epoch)",
                flush=True,
            )
    return runs


# ----------------------------------------------------------------------------- the report
def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, contender): mean and standard deviation over the seeds."""
    rows = []
    for name in dict.fromkeys(r["dataset"] for r in runs):
        for contender in CONTENDERS:
            mine = [r for r in runs if r["dataset"] == name and r["contender"] == contender]
            if not mine:
                continue
            best = [r["best"] if "best" in r else max(r["val_acc"]) for r in mine]
            final = [r["final"] if "final" in r else r["val_acc"][-1] for r in mine]
            secs = [s for r in mine for s in r["seconds"]]
            rows.append(
                {
                    "dataset": name,
                    "contender": contender,
                    "seeds": len(mine),
                    "best": statistics.mean(best),
                    "best_sd": statistics.stdev(best) if len(best) > 1 else 0.0,
                    "final": statistics.mean(final),
                    "final_sd": statistics.stdev(final) if len(final) > 1 else 0.0,
                    "epoch_seconds": statistics.mean(secs),
                }
            )
    return rows


def verdicts(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Per dataset and CLI: are the defaults at least the plain loop within the seeds' spread
    (mean best >= plain's mean best - (both standard deviations))?"""
    out = {}
    for row in rows:
        if not row["contender"].endswith("-cli"):
            continue
        plain = next((r for r in rows if r["dataset"] == row["dataset"] and r["contender"] == "plain"), None)
        if plain is None:
            continue
        ok = row["best"] >= plain["best"] - (row["best_sd"] + plain["best_sd"])
        out[f"{row['dataset']}/{row['contender']}"] = (
            f"{'>=' if ok else 'BELOW'} plain ({row['best']:.3f} vs {plain['best']:.3f})"
        )
    return out


def table(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    partial = " (a partial study: the runs done so far)" if settings.get("partial") else ""
    lines = [
        f"resnet18 from scratch, {settings['epochs']} epochs, 32x32, seeds "
        f"{', '.join(map(str, settings['seed_list']))}{partial}"
        "; mean ± standard deviation over the seeds. "
        "Epoch time: train + validation, wall clock on a shared 2-core CPU machine (noisy: other jobs ran beside it).",
        "",
        "| dataset | contender | seeds | best val acc | final val acc | s/epoch |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['contender']} | {r['seeds']} | {r['best']:.3f} ± {r['best_sd']:.3f} | "
            f"{r['final']:.3f} ± {r['final_sd']:.3f} | {r['epoch_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: list[dict[str, Any]], path: Path, epochs: int) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(r["dataset"] for r in runs))
    fig = Figure(figsize=(4.2 * len(names), 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for contender in CONTENDERS:
            mine = [r for r in runs if r["dataset"] == name and r["contender"] == contender]
            curves = [r["val_acc"] for r in mine if len(r.get("val_acc") or []) == epochs]
            if mine and not curves:  # a run that kept only its final accuracy: a dashed line at its mean
                final = statistics.mean(r["final"] for r in mine)
                ax.axhline(final, linestyle="--", linewidth=1, color="grey", label=f"{contender} (final only)")
            if not curves:
                continue
            x = list(range(1, epochs + 1))
            mean = [statistics.mean(c[i] for c in curves) for i in range(epochs)]
            lo = [min(c[i] for c in curves) for i in range(epochs)]
            hi = [max(c[i] for c in curves) for i in range(epochs)]
            (line,) = ax.plot(x, mean, marker="o", label=contender)
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("resnet18 from scratch: mean over seeds, band = min-max")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs (a smoke run)")
    parser.add_argument("--epochs", type=int, help="epoch budget of every run (default 5; --quick 2)")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 3; --quick 1)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--data-root", default=os.path.join(tempfile.gettempdir(), "cnn-real-datasets"))
    parser.add_argument("--jobs", type=int, default=2, help="contenders run side by side (default 2)")
    parser.add_argument("--out", default="runs/recipe_study", help="folder of the JSON and the markdown table")
    parser.add_argument("--figure", default=str(FIGURE))
    parser.add_argument("--side", choices=CONTENDERS, help=argparse.SUPPRESS)  # internal: run one contender
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument(
        "--report", action="store_true", help="only write the table and figure from the runs a study in --out has done"
    )
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 5)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    from benchmarks.real_datasets import write_all

    datasets = write_all(args.data_root, names=args.datasets)
    if args.side:
        run_side(args.side, datasets, epochs, seeds, Path(args.result))
        return 0
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    side_seconds = {}

    def side(contender: str) -> list[dict[str, Any]]:
        result = out / f".{contender}.json"
        env = {**os.environ, **ONE_THREAD, **({"KERAS_BACKEND": "jax"} if contender == "keras-cli" else {})}
        t = time.perf_counter()
        command = [sys.executable, "-m", "benchmarks.recipe_study", "--side", contender, "--result", str(result)]
        command += ["--epochs", str(epochs), "--seeds", str(len(seeds)), "--data-root", args.data_root]
        subprocess.run([*command, "--datasets", *args.datasets], check=True, env=env)
        side_seconds[contender] = round(time.perf_counter() - t, 1)
        return json.loads(result.read_text())  # kept: --report rebuilds the table from these

    if args.report:  # a study still running (or cut short): each side's file holds its runs so far
        for contender in args.contenders:
            if (out / f".{contender}.json").is_file():
                runs += json.loads((out / f".{contender}.json").read_text())
    else:
        with ThreadPoolExecutor(args.jobs) as pool:
            for part in pool.map(side, args.contenders):
                runs += part
    settings = {
        "model": MODEL,
        "size": SIZE,
        "epochs": epochs,
        "seeds": len(seeds),
        "seed_list": seeds,
        "datasets": {n: str(p) for n, p in datasets.items()},
        "cpu_count": os.cpu_count(),
        "side_seconds": side_seconds,
        "total_seconds": round(time.perf_counter() - start, 1),
        "note": "epoch times are wall clock on a shared machine (other jobs beside it): noisy",
        "partial": args.report,
    }
    rows = summarise(runs)
    checks = verdicts(rows)
    report = {"settings": settings, "rows": rows, "verdicts": checks, "runs": runs}
    (out / "recipe_study.json").write_text(json.dumps(report, indent=1))
    md = table(rows, settings) + "\n" + "\n".join(f"- {k}: {v}" for k, v in checks.items()) + "\n"
    (out / "recipe_study.md").write_text(md)
    plot(runs, Path(args.figure), epochs)
    print(md)
    print(f"wrote {out / 'recipe_study.json'}, {out / 'recipe_study.md'}, {args.figure}; {settings['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
