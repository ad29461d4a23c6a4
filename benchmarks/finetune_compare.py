r"""The project's fine-tuning CLI against a plain torchvision loop, on the same images, epochs and
size: does ``python -m torch_impl finetune`` with its defaults reach the accuracy, and the speed,
of what a knowledgeable user would write by hand (finetune_reference.py)?

    python benchmarks/finetune_compare.py --epochs 5 --size 32 --out /tmp/cmp --no-flip
    python benchmarks/finetune_compare.py --data /tmp/digits --epochs 2 --size 32 --out /tmp/cmp \
        --reference-args "--no-flip"
    python benchmarks/finetune_compare.py --data DIR --epochs 10 --keras --keras-backend jax \
        --cli-args "--mode fine-tune --augment"

Contenders: ``reference`` (finetune_reference.run_reference, in this process), ``torch_cli``
(``python -m torch_impl finetune --data DIR --model M --epochs N --size S --out OUT/torch_cli
--no-progress`` plus ``--cli-args``, a subprocess; its ``history.json`` is read) and, with
``--keras``, ``keras_cli`` (the same through ``python -m keras_impl finetune``, KERAS_BACKEND set).
Without ``--data`` scikit-learn's digits are written to ``OUT/digits`` (digits_folder.py).
``--no-flip`` and ``--reference-args`` go to the reference only; ``--cli-args`` to the CLIs only.

Prints a per-epoch table (val accuracy and seconds per contender), the best accuracy and mean
epoch seconds of each, and the CLI/reference ratios; writes ``OUT/compare.json`` and
``OUT/compare.png``. Child output is shown and kept in ``OUT/<contender>.log``; a CLI that fails
is reported (its last lines) and the others still run. Exit status 1 when a contender failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import digits_folder  # noqa: E402
import finetune_reference  # noqa: E402

from cnnbase.atomic import atomic_write, write_json  # noqa: E402  (the project's one writer)

# Flags compare sets itself for every contender: overriding them in pass-through args would make
# the comparison unfair, so they are refused there.
RESERVED_REFERENCE = ("--data", "--epochs", "--size", "--model", "--json")
RESERVED_CLI = ("--data", "--epochs", "--size", "--model", "--out", "--resume", "--no-progress")
ERROR_TAIL_LINES = 15
PASSTHROUGH = ("--reference-args", "--cli-args")


def check_passthrough(tokens: Sequence[str], reserved: Sequence[str], option: str) -> None:
    """Refuses a pass-through flag that compare already sets for all contenders."""
    clash = [t for t in tokens if t.split("=", 1)[0] in reserved]
    if clash:
        raise SystemExit(f"error: {option} may not set {', '.join(clash)}: compare sets it for every contender")


def reference_kwargs(args: argparse.Namespace, data: Path, out: Path) -> dict[str, Any]:
    """run_reference's arguments: compare's shared settings, then --no-flip / --reference-args."""
    extra = shlex.split(args.reference_args)
    check_passthrough(extra, RESERVED_REFERENCE, "--reference-args")
    argv = [
        "--data",
        str(data),
        "--epochs",
        str(args.epochs),
        "--size",
        str(args.size),
        "--model",
        args.model,
        "--threads",
        str(args.threads),
        "--json",
        str(out / "reference.json"),
    ]
    argv += ["--no-flip"] * args.no_flip + ["--no-progress"] * (not args.progress) + extra
    return finetune_reference.kwargs_from_args(finetune_reference.build_parser().parse_args(argv))


def run_reference(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The reference loop in this process, as a contender record."""
    print(f"== reference: {kwargs}", flush=True)
    t = time.perf_counter()
    result = finetune_reference.run_reference(**kwargs)
    return contender(
        "reference",
        result["val_acc"],
        result["train_loss"],
        result["epoch_seconds"],
        wall_seconds=time.perf_counter() - t,
        settings=result["settings"],
    )


def cli_command(framework: str, data: Path, args: argparse.Namespace, out: Path) -> list[str]:
    """``python -m <torch_impl|keras_impl> finetune ...`` with compare's settings and --cli-args."""
    extra = shlex.split(args.cli_args)
    check_passthrough(extra, RESERVED_CLI, "--cli-args")
    return [
        sys.executable,
        "-m",
        f"{framework}_impl",
        "finetune",
        "--data",
        str(data),
        "--model",
        args.model,
        "--epochs",
        str(args.epochs),
        "--size",
        str(args.size),
        "--out",
        str(out),
        "--no-progress",
    ] + extra


def child_env(threads: int, keras_backend: str | None = None) -> dict[str, str]:
    """This environment, plus the reference's thread count (unless the caller set one), unbuffered
    output for the live log, and the Keras backend."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(threads))
    env["PYTHONUNBUFFERED"] = "1"
    if keras_backend:
        env["KERAS_BACKEND"] = keras_backend
    return env


def run_logged(cmd: list[str], env: dict[str, str], log: Path) -> int:
    """Runs ``cmd`` from the repository root, echoing its output and keeping it in ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(log, "w") as f,
        subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as proc,
    ):
        f.write(shlex.join(cmd) + "\n")
        for line in proc.stdout:  # type: ignore[union-attr]
            sys.stdout.write(f"  | {line}")
            f.write(line)
    return proc.returncode


def read_cli_history(path: Path, since: float) -> dict[str, Any]:
    """history.json of a CLI run as lists; one older than ``since`` is a previous run's, refused."""
    if not path.exists() or path.stat().st_mtime < since:
        raise FileNotFoundError(f"{path} was not written by this run")
    epochs = json.loads(path.read_text())["epochs"]
    return {
        key: [e[src] for e in epochs]
        for key, src in (("val_acc", "val_acc"), ("train_loss", "train_loss"), ("epoch_seconds", "seconds"))
    }


def run_cli(
    name: str, framework: str, data: Path, args: argparse.Namespace, out: Path, env: dict[str, str]
) -> dict[str, Any]:
    """One CLI contender as a subprocess; a failure becomes an ``error`` with its last output lines."""
    run_dir, log = out / name, out / f"{name}.log"
    cmd = cli_command(framework, data, args, run_dir)
    print(
        f"== {name}: {shlex.join(cmd)}" + (f"  (KERAS_BACKEND={env['KERAS_BACKEND']})" if framework == "keras" else ""),
        flush=True,
    )
    start_wall, t = time.time(), time.perf_counter()
    code = run_logged(cmd, env, log)
    wall = time.perf_counter() - t
    try:
        if code != 0:
            raise RuntimeError(f"exit status {code}")
        hist = read_cli_history(run_dir / "history.json", start_wall)
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        tail = log.read_text().splitlines()[-ERROR_TAIL_LINES:]
        return contender(
            name, [], [], [], wall_seconds=wall, command=cmd, error=f"{err}; last lines:\n" + "\n".join(tail)
        )
    return contender(name, hist["val_acc"], hist["train_loss"], hist["epoch_seconds"], wall_seconds=wall, command=cmd)


def contender(
    name: str, val_acc: list[float], train_loss: list[float], epoch_seconds: list[float], **extra: Any
) -> dict[str, Any]:
    """One contender's record, with the summary figures the table and the JSON share."""
    return {
        "name": name,
        "val_acc": val_acc,
        "train_loss": train_loss,
        "epoch_seconds": epoch_seconds,
        "best_val_acc": max(val_acc) if val_acc else None,
        "mean_epoch_seconds": sum(epoch_seconds) / len(epoch_seconds) if epoch_seconds else None,
        **extra,
    }


def ratios(results: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """CLI / reference for mean epoch seconds and best accuracy (None where either is missing)."""
    ref = next(r for r in results if r["name"] == "reference")

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    return {
        r["name"]: {
            "epoch_seconds": ratio(r["mean_epoch_seconds"], ref["mean_epoch_seconds"]),
            "best_val_acc": ratio(r["best_val_acc"], ref["best_val_acc"]),
        }
        for r in results
        if r["name"] != "reference"
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(results: list[dict[str, Any]], epochs: int, rel: dict[str, dict[str, float | None]]) -> str:
    """Rows: epochs, then best acc and mean s/epoch; columns: val acc and seconds per contender."""
    names = [r["name"] for r in results]
    w = max(10, *(len(n) for n in names))
    head = f"{'epoch':>12} | " + " ".join(f"{n:>{w}}" for n in names) + " | " + " ".join(f"{n:>{w}}" for n in names)
    lines = [
        f"{'':>12} | " + f"{'val acc':<{(w + 1) * len(names) - 1}}" + " | seconds per epoch",
        head,
        "-" * len(head),
    ]

    def at(values: list[float], i: int) -> float | None:
        return values[i] if i < len(values) else None

    for i in range(epochs):
        accs = " ".join(f"{_fmt(at(r['val_acc'], i), '.4f'):>{w}}" for r in results)
        secs = " ".join(f"{_fmt(at(r['epoch_seconds'], i), '.1f'):>{w}}" for r in results)
        lines.append(f"{i + 1:>12} | {accs} | {secs}")
    lines.append("-" * len(head))
    best = " ".join(f"{_fmt(r['best_val_acc'], '.4f'):>{w}}" for r in results)
    mean = " ".join(f"{_fmt(r['mean_epoch_seconds'], '.1f'):>{w}}" for r in results)
    lines.append(f"{'best / mean':>12} | {best} | {mean}")
    for name, r in rel.items():
        if r["epoch_seconds"] is None and r["best_val_acc"] is None:
            continue
        lines.append(
            f"{name}/reference: mean epoch time x{_fmt(r['epoch_seconds'], '.2f')}, "
            f"best val acc x{_fmt(r['best_val_acc'], '.3f')}"
        )
    for r in results:
        if r.get("error"):
            lines.append(f"{r['name']} FAILED: {r['error']}")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Val accuracy per epoch, one line per contender (Agg canvas: no display, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.0))
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for r in results:
        if r["val_acc"]:
            ax.plot(
                range(1, len(r["val_acc"]) + 1),
                r["val_acc"],
                marker="o",
                label=f"{r['name']} (best {r['best_val_acc']:.3f})",
            )
    ax.set(xlabel="epoch", ylabel="val accuracy", title=title, ylim=(0, 1.02))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return atomic_write(path, lambda tmp: canvas.print_png(tmp), suffix=".png")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Compare the project's fine-tuning CLI (defaults) with a plain torchvision loop on one image "
        "folder."
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="image folder with train/ and val/ (default: scikit-learn's digits written to OUT/digits)",
    )
    p.add_argument("--epochs", type=int, default=5, help="epochs for every contender (default 5)")
    p.add_argument("--size", type=int, default=64, help="input side in pixels for every contender (default 64)")
    p.add_argument("--model", default="resnet18", help="architecture for every contender (default resnet18)")
    p.add_argument(
        "--out", default="runs/finetune-compare", metavar="OUT", help="output folder (default runs/finetune-compare)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="reference torch threads; children get OMP_NUM_THREADS unless already set (default 2)",
    )
    p.add_argument(
        "--no-flip",
        action="store_true",
        help="reference: no random horizontal flip (the CLIs flip when they augment, which is their default from "
        "scratch)",
    )
    p.add_argument(
        "--reference-args",
        default="",
        metavar="ARGS",
        help='extra finetune_reference.py flags, e.g. "--no-flip --lr 1e-3"',
    )
    p.add_argument(
        "--cli-args", default="", metavar="ARGS", help='extra flags for the CLIs, e.g. "--mode fine-tune --augment"'
    )
    p.add_argument("--keras", action="store_true", help="also run python -m keras_impl finetune")
    p.add_argument(
        "--keras-backend",
        default=os.environ.get("KERAS_BACKEND", "jax"),
        choices=("jax", "tensorflow"),
        help="KERAS_BACKEND for the Keras CLI (default: $KERAS_BACKEND or jax)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar in the reference")
    return p


def glue_passthrough(argv: Sequence[str]) -> list[str]:
    """``--cli-args "--mode fine-tune"`` -> ``--cli-args=--mode fine-tune``: argparse would take a
    value that starts with ``--`` for a flag of its own and refuse it."""
    out: list[str] = []
    it = iter(argv)
    for token in it:
        if token in PASSTHROUGH:
            token = f"{token}={next(it, '')}"
        out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(glue_passthrough(sys.argv[1:] if argv is None else argv))
    out = Path(args.out)
    # Refuse a bad pass-through before anything is written or run.
    check_passthrough(shlex.split(args.reference_args), RESERVED_REFERENCE, "--reference-args")
    check_passthrough(shlex.split(args.cli_args), RESERVED_CLI, "--cli-args")
    data = Path(args.data) if args.data else digits_folder.write_digits(out / "digits")
    ref_kwargs = reference_kwargs(args, data, out)
    load_start = os.getloadavg()
    results = [run_reference(ref_kwargs)]
    results.append(run_cli("torch_cli", "torch", data, args, out, child_env(args.threads)))
    if args.keras:
        results.append(run_cli("keras_cli", "keras", data, args, out, child_env(args.threads, args.keras_backend)))
    rel = ratios(results)
    # Timings are only comparable on an otherwise idle machine: the load average says if it was.
    settings = {
        **{k: v for k, v in vars(args).items() if k != "progress"},
        "data": str(data),
        "cpus": os.cpu_count(),
        "loadavg_1min_start_end": [load_start[0], os.getloadavg()[0]],
    }
    write_json(out / "compare.json", {"settings": settings, "contenders": results, "ratios_to_reference": rel})
    plot(results, out / "compare.png", f"{args.model}, {args.size}px, {data.name}")
    print(format_table(results, args.epochs, rel))
    print(
        f"load average (1 min) at start {load_start[0]:.2f}, at end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
        + (
            ": the machine was busy, timings are inflated"
            if max(load_start[0], os.getloadavg()[0]) > (os.cpu_count() or 1) + 0.5
            else ""
        )
    )
    print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    from cnnbase import cli

    sys.exit(
        cli.run("benchmarks/finetune_compare.py", lambda argv: main(argv))
    )  # one-line errors, --debug (cnnbase.cli)
