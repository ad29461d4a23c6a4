"""What benchmarks/transfer_torch.py and transfer_keras.py share, written once and framework-free:
the settings, the data, the pretraining run, the three ways of learning the target half, the live
feature-extraction run the cache is timed against, the table and the JSON file. Each script only
adds its framework: which ``finetune`` runs, how a process is warmed up, what is compared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

import cnntoydata
from cnntune import FinetuneOptions
from cnntune.policy import FinetuneResult

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = {  # full run / --quick
    "full": {
        "size": 64,
        "pretrain_per_class": 100,
        "pretrain_epochs": 10,
        "pretrain_lr": 5e-4,
        "shots": 10,
        "target_val": 30,
        "target_epochs": 8,
        "fe_epochs": 30,
        "timing_epochs": 3,
        "batch_size": 8,
    },
    "quick": {
        "size": 48,
        "pretrain_per_class": 40,
        "pretrain_epochs": 3,
        "pretrain_lr": 5e-4,
        "shots": 5,
        "target_val": 20,
        "target_epochs": 3,
        "fe_epochs": 10,
        "timing_epochs": 2,
        "batch_size": 16,
    },
}
Finetune = Callable[[FinetuneOptions], FinetuneResult]


def row(result: FinetuneResult, seconds: float, first_epoch: bool = False) -> dict[str, Any]:
    """One run's line of the report (``first_epoch``: also the first epoch's time, which Keras' tracing inflates)."""
    times = result.epoch_times
    return {
        "best_val_acc": result.best_val_acc,
        "best_epoch": result.best_epoch,
        "final_val_acc": result.history[-1]["val_acc"],
        "epochs": len(result.history),
        "seconds": seconds,
        "mean_epoch_seconds": sum(times) / len(times),
        **({"first_epoch_seconds": times[0]} if first_epoch else {}),
        "cache_seconds": result.cache_seconds,
    }


def transfer_runs(
    settings: dict[str, Any],
    work: Path,
    device: str,
    seed: int,
    finetune: Finetune,
    warm_up: Callable[[int, str], None],
    after_run: Callable[[], None] | None = None,
    each_run: bool = False,
) -> dict[str, Any]:
    """Generates both halves of the shapes, pretrains ResNet-18 on one, learns the other three ways
    and once more live (the cache's comparison). ``after_run`` runs after each fine-tuning (Keras
    clears its session); ``each_run`` prints every run's result as it ends. Returns the results
    (``pretrain``, ``runs``, ``live``: each (FinetuneResult, seconds)) and ``data_seconds``."""
    s = settings
    common = dict(size=s["size"], batch_size=s["batch_size"], device=device, seed=seed, progress=False)
    t0 = time.perf_counter()
    pre_data = cnntoydata.generate(
        work / "pretrain",
        part="pretrain",
        train_per_class=s["pretrain_per_class"],
        val_per_class=20,
        size=s["size"],
        seed=seed,
    )
    target_data = cnntoydata.generate(
        work / "target",
        part="target",
        train_per_class=s["shots"],
        val_per_class=s["target_val"],
        size=s["size"],
        seed=seed + 1,
    )
    data_seconds = time.perf_counter() - t0
    warm_up(s["size"], device)

    def timed(**kw: Any) -> tuple[FinetuneResult, float]:
        start = time.perf_counter()
        result = finetune(FinetuneOptions(**{**common, **kw}))
        if after_run is not None:
            after_run()
        return result, time.perf_counter() - start

    print(
        f"pretraining resnet18 on {cnntoydata.PARTS['pretrain']} ({s['pretrain_per_class']} images per class, "
        f"{s['size']}px)...",
        flush=True,
    )
    pre = timed(
        data=str(pre_data),
        mode="fine-tune",
        backbone_lr_factor=1.0,
        augment=True,
        epochs=s["pretrain_epochs"],
        lr=s["pretrain_lr"],
        out=str(work / "pretrain-run"),
    )
    weights = str(pre[0].best_checkpoint)
    print(
        f"  val acc {pre[0].best_val_acc:.3f} in {pre[1]:.0f}s; transferring to {cnntoydata.PARTS['target']} "
        f"with {s['shots']} labels per class",
        flush=True,
    )
    target = dict(data=str(target_data))
    ways = {
        "feature-extract (pretrained, cached)": dict(
            mode="feature-extract", weights=weights, epochs=s["fe_epochs"], out=str(work / "fe")
        ),
        "fine-tune (pretrained)": dict(
            mode="fine-tune", weights=weights, augment=True, epochs=s["target_epochs"], out=str(work / "ft")
        ),
        "from scratch": dict(
            mode="fine-tune", backbone_lr_factor=1.0, augment=True, epochs=s["target_epochs"], out=str(work / "scratch")
        ),
    }
    runs = {}
    for name, kw in ways.items():
        runs[name] = timed(**target, **kw)
        if each_run:
            print(f"  {name}: best val acc {runs[name][0].best_val_acc:.3f} in {runs[name][1]:.0f}s", flush=True)
    # the cache's comparison: the same feature-extraction epochs with the backbone run live
    live = timed(
        **target,
        mode="feature-extract",
        weights=weights,
        cache=False,
        epochs=s["timing_epochs"],
        out=str(work / "fe-live"),
    )
    return {"pretrain": pre, "runs": runs, "live": live, "data_seconds": data_seconds}


def report(settings: dict[str, Any], results: dict[str, Any], cache: dict[str, Any], first_epoch: bool = False):
    """The JSON report's body: pretraining, the target runs, the cache comparison, the data's time."""
    return {
        "pretrain": {"classes": list(cnntoydata.PARTS["pretrain"]), **row(*results["pretrain"], first_epoch)},
        "target": {
            "classes": list(cnntoydata.PARTS["target"]),
            "train_per_class": settings["shots"],
            "val_per_class": settings["target_val"],
            "runs": {name: row(r, sec, first_epoch) for name, (r, sec) in results["runs"].items()},
        },
        "cache": cache,
        "data_seconds": results["data_seconds"],
    }


def table(report: dict[str, Any], cache_line: str) -> str:
    pre = report["pretrain"]
    classes = report["target"]["classes"]
    lines = [
        f"pretrain: resnet18 from scratch on {len(pre['classes'])} shapes, best val acc {pre['best_val_acc']:.3f}, "
        f"{pre['seconds']:.0f}s",
        f"target: {len(classes)} other shapes, {report['target']['train_per_class']} labels per class "
        f"(chance {1 / len(classes):.2f})",
        "",
        f"{'method':38s} {'best val acc':>12s} {'epochs':>6s} {'s/epoch':>8s} {'total s':>8s}",
    ]
    for name, r in report["target"]["runs"].items():
        lines.append(
            f"{name:38s} {r['best_val_acc']:12.3f} {r['epochs']:6d} {r['mean_epoch_seconds']:8.2f} {r['seconds']:8.1f}"
        )
    return "\n".join([*lines, "", cache_line])


def parser(description: str, framework: str) -> argparse.ArgumentParser:
    """The flags both experiments take (``--threads`` is added by the torch one)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller data, fewer epochs, 48px: a smoke run, not a result")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        default=str(RESULTS / f"transfer_{framework}.json"),
        help=f"JSON file (default benchmarks/results/transfer_{framework}.json)",
    )
    p.add_argument("--workdir", help="where data and runs go (default: a temp folder, removed after)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a setting: {', '.join(SETTINGS['full'])}",
    )
    return p


def settings_from(p: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """The --quick or full settings with the --set overrides (an unknown key is a usage error)."""
    warnings.filterwarnings("ignore", message="feature extraction without weights")
    settings = dict(SETTINGS["quick" if args.quick else "full"])
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in settings:
            p.error(f"--set {item}: unknown setting {key!r}; expected one of {', '.join(settings)}")
        settings[key] = type(settings[key])(value)
    return settings


def run_and_write(
    framework: str,
    args: argparse.Namespace,
    settings: dict[str, Any],
    run: Callable[[dict[str, Any], Path, str, int], dict[str, Any]],
    environment: Callable[[], dict[str, Any]],
    cache_line: Callable[[dict[str, Any]], str],
) -> int:
    """Runs the experiment in a work folder, prints the table and writes the JSON report atomically."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"transfer-{framework}-") as tmp:
        body = run(settings, Path(args.workdir or tmp), args.device, args.seed)
    result = {
        "settings": {"name": "quick" if args.quick else "full", **settings, "seed": args.seed},
        **body,
        "total_seconds": time.perf_counter() - start,
        "environment": environment(),
        "command": f"python benchmarks/transfer_{framework}.py " + " ".join(sys.argv[1:]),
    }
    print()
    print(table(result, cache_line(result["cache"])))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=1))
    os.replace(tmp_out, out)
    print(f"\nwrote {out} ({result['total_seconds']:.0f}s)")
    return 0
