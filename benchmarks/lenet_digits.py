"""LeNet-5 from scratch on scikit-learn's digits (issue 34): both fine-tuning commands with their
defaults, ``--epochs 15`` the only flag besides the data and the model, and their validation
accuracy per epoch side by side.

    python -m benchmarks.lenet_digits   # -> docs/figures/lenet5_digits.png, benchmarks/results/lenet_digits.json

Runs, one after the other, exactly::

    python -m torch_impl finetune --model lenet5 --data DIGITS --epochs 15
    KERAS_BACKEND=jax python -m keras_impl finetune --model lenet5 --data DIGITS --epochs 15

on the digits folder of benchmarks/real_datasets.py (1,437 train / 360 val, 8x8 scans the CLI
resizes to LeNet-5's 32x32), and reads each run's history.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIGURE = Path("docs/figures/lenet5_digits.png")
EPOCHS = 15
COMMANDS = {
    "torch": ("torch_impl", {}),
    "keras (jax)": ("keras_impl", {"KERAS_BACKEND": "jax"}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="LeNet-5 on digits with the CLI defaults, both frameworks.")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--data-root", default=os.path.join(tempfile.gettempdir(), "cnn-real-datasets"))
    parser.add_argument("--out", default="runs/lenet_digits", help="the two run folders")
    parser.add_argument("--json", default="benchmarks/results/lenet_digits.json")
    parser.add_argument("--figure", default=str(FIGURE))
    args = parser.parse_args(argv)
    from benchmarks.real_datasets import write_all

    data = write_all(args.data_root, names=("digits",))["digits"]
    out = Path(args.out)
    results = {}
    for label, (package, env) in COMMANDS.items():
        run_dir = out / package
        command = [sys.executable, "-m", package, "finetune", "--model", "lenet5", "--data", str(data)]
        command += ["--epochs", str(args.epochs), "--out", str(run_dir), "--no-progress"]
        t = time.perf_counter()
        subprocess.run(command, check=True, env={**os.environ, **env})
        history = json.loads((run_dir / "history.json").read_text())
        results[label] = {
            "command": " ".join(f"{k}={v}" for k, v in env.items()).strip()
            + f" python -m {package} finetune --model lenet5 --data DIGITS --epochs {args.epochs}",
            "val_acc": [e["val_acc"] for e in history["epochs"]],
            "epoch_seconds": [e["seconds"] for e in history["epochs"]],
            "best_val_acc": history["best_val_acc"],
            "final_val_acc": history["epochs"][-1]["val_acc"],
            "wall_seconds": round(time.perf_counter() - t, 1),
        }
        print(f"{label}: best {results[label]['best_val_acc']:.4f}, final {results[label]['final_val_acc']:.4f}")
    Path(args.json).write_text(json.dumps({"data": str(data), "results": results}, indent=1) + "\n")
    plot(results, Path(args.figure))
    print(f"wrote {args.json} and {args.figure}")
    return 0


def plot(results: dict, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(results), sharey=True)
    for ax, (label, r) in zip(axes, results.items()):
        epochs = range(1, len(r["val_acc"]) + 1)
        ax.plot(epochs, r["val_acc"], marker="o")
        ax.axhline(0.98, color="grey", linestyle="--", linewidth=1, label="0.98")
        ax.set_title(f"{label}: best {r['best_val_acc']:.3f}, final {r['final_val_acc']:.3f}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    axes[0].set_ylabel("validation accuracy")
    fig.suptitle("LeNet-5 from scratch on scikit-learn's digits (32x32), CLI defaults, --epochs 15")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


if __name__ == "__main__":
    sys.exit(main())
