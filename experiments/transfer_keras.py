"""Does transfer help, in Keras? The twin of experiments/transfer_torch.py: pretrain ResNet-18 on
one half of the cnntoydata shapes, then learn the other half from a few labels per class three ways:
(a) feature extraction on the pretrained backbone, (b) fine-tuning it (backbone at 0.1 x lr),
(c) the same network from scratch. Also times a feature-extraction epoch with and without the
feature cache.

    .venv/bin/python experiments/transfer_keras.py            # several minutes on 2 CPU cores
    .venv/bin/python experiments/transfer_keras.py --quick    # smaller, for a smoke run

Runs on the active Keras backend (KERAS_BACKEND, default tensorflow). Prints a table and writes
experiments/results/transfer_keras.json. Accuracies are the best validation accuracy over the
epochs (the checkpoint finetune keeps), on a validation set much larger than the few training
labels. Epoch times are Keras ``fit`` calls, one per epoch (each pays a fixed ``fit`` and
validation overhead); the first epoch of a run also traces the training step, so the cache
comparison uses the epochs after it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before Keras loads TensorFlow

import keras
import numpy as np

import cnntoydata
from cnntune import FinetuneOptions
from keras_impl import resnet18
from keras_impl.distribute import select_device
from keras_impl.finetune import finetune

RESULTS = Path(__file__).resolve().parent / "results" / "transfer_keras.json"
SETTINGS = {  # full run / --quick: the torch experiment's
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


def _warm_up(size: int, device: str) -> None:
    """The first model of a process pays one-off runtime costs (thread pools, allocator): take
    them before anything is timed, so the first run measured is not penalised."""
    with keras.device(select_device(device).name):
        model = resnet18(input_shape=(size, size, 3), classes=5)
        model.predict(np.zeros((8, size, size, 3), "float32"), verbose=0)


def _row(result, seconds: float) -> dict[str, Any]:
    times = result.epoch_times
    return {
        "best_val_acc": result.best_val_acc,
        "best_epoch": result.best_epoch,
        "final_val_acc": result.history[-1]["val_acc"],
        "epochs": len(result.history),
        "seconds": seconds,
        "mean_epoch_seconds": sum(times) / len(times),
        "first_epoch_seconds": times[0],
        "cache_seconds": result.cache_seconds,
    }


def run(settings: dict[str, Any], work: Path, device: str, seed: int) -> dict[str, Any]:
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
    _warm_up(s["size"], device)

    def timed(**kw: Any):
        start = time.perf_counter()
        result = finetune(FinetuneOptions(**{**common, **kw}))
        keras.backend.clear_session()  # each run builds its own models; keep the process bounded
        return result, time.perf_counter() - start

    print(
        f"pretraining resnet18 on {cnntoydata.PARTS['pretrain']} ({s['pretrain_per_class']} images per class, {s['size']}px)...",
        flush=True,
    )
    pre, pre_s = timed(
        data=str(pre_data),
        mode="fine-tune",
        backbone_lr_factor=1.0,
        augment=True,
        epochs=s["pretrain_epochs"],
        lr=s["pretrain_lr"],
        out=str(work / "pretrain-run"),
    )
    weights = str(pre.best_checkpoint)
    print(
        f"  val acc {pre.best_val_acc:.3f} in {pre_s:.0f}s; transferring to {cnntoydata.PARTS['target']} with {s['shots']} labels per class",
        flush=True,
    )
    target = dict(data=str(target_data))
    runs = {}
    for name, kw in {
        "feature-extract (pretrained, cached)": dict(
            mode="feature-extract", weights=weights, epochs=s["fe_epochs"], out=str(work / "fe")
        ),
        "fine-tune (pretrained)": dict(
            mode="fine-tune", weights=weights, augment=True, epochs=s["target_epochs"], out=str(work / "ft")
        ),
        "from scratch": dict(
            mode="fine-tune", backbone_lr_factor=1.0, augment=True, epochs=s["target_epochs"], out=str(work / "scratch")
        ),
    }.items():
        runs[name] = timed(**target, **kw)
        print(f"  {name}: best val acc {runs[name][0].best_val_acc:.3f} in {runs[name][1]:.0f}s", flush=True)
    # Cache ratio: the same feature-extraction epochs with the backbone run live. Epoch 1 of the
    # live run also traces the backbone's forward pass, so steady epochs (2..n) are compared.
    cached, _ = runs["feature-extract (pretrained, cached)"]
    live, _ = timed(
        **target,
        mode="feature-extract",
        weights=weights,
        cache=False,
        epochs=s["timing_epochs"],
        out=str(work / "fe-live"),
    )
    n = s["timing_epochs"]
    cached_epoch = float(np.mean(cached.epoch_times[1:n]))
    live_epoch = float(np.mean(live.epoch_times[1:n]))
    return {
        "pretrain": {"classes": list(cnntoydata.PARTS["pretrain"]), **_row(pre, pre_s)},
        "target": {
            "classes": list(cnntoydata.PARTS["target"]),
            "train_per_class": s["shots"],
            "val_per_class": s["target_val"],
            "runs": {name: _row(r, sec) for name, (r, sec) in runs.items()},
        },
        "cache": {
            "epochs_compared": f"2..{n}",
            "cached_epoch_seconds": cached_epoch,
            "live_epoch_seconds": live_epoch,
            "speedup": live_epoch / cached_epoch,
            "cache_build_seconds": cached.cache_seconds,
            "first_epoch_seconds": {"cached": cached.epoch_times[0], "live": live.epoch_times[0]},
            "val_acc_cached": [h["val_acc"] for h in cached.history[:n]],
            "val_acc_live": [h["val_acc"] for h in live.history],
            "note": "cached epochs shuffle the feature arrays, live ones shuffle the image files in tf.data: both are seeded "
            "per epoch but their orders differ, so the curves agree in trend, not bit for bit",
        },
        "data_seconds": data_seconds,
    }


def _table(report: dict[str, Any]) -> str:
    pre = report["pretrain"]
    lines = [
        f"pretrain: resnet18 from scratch on {len(pre['classes'])} shapes, best val acc {pre['best_val_acc']:.3f}, {pre['seconds']:.0f}s",
        f"target: {len(report['target']['classes'])} other shapes, {report['target']['train_per_class']} labels per class "
        f"(chance {1 / len(report['target']['classes']):.2f})",
        "",
        f"{'method':38s} {'best val acc':>12s} {'epochs':>6s} {'s/epoch':>8s} {'total s':>8s}",
    ]
    for name, r in report["target"]["runs"].items():
        lines.append(
            f"{name:38s} {r['best_val_acc']:12.3f} {r['epochs']:6d} {r['mean_epoch_seconds']:8.2f} {r['seconds']:8.1f}"
        )
    c = report["cache"]
    lines += [
        "",
        f"feature-extract epoch (epochs {c['epochs_compared']}): {c['live_epoch_seconds']:.2f}s live vs {c['cached_epoch_seconds']:.3f}s cached "
        f"= {c['speedup']:.1f}x (cache built once in {c['cache_build_seconds']:.2f}s)",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller data, fewer epochs, 48px: a smoke run, not a result"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=str(RESULTS), help="JSON file (default experiments/results/transfer_keras.json)"
    )
    parser.add_argument("--workdir", help="where data and runs go (default: a temp folder, removed after)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a setting: {', '.join(SETTINGS['full'])}",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="feature extraction without weights")
    settings = dict(SETTINGS["quick" if args.quick else "full"])
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in settings:
            parser.error(f"--set {item}: unknown setting {key!r}; expected one of {', '.join(settings)}")
        settings[key] = type(settings[key])(value)
    if settings["timing_epochs"] < 2:
        parser.error("timing_epochs must be at least 2: the first epoch of a run includes tracing and is not compared")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="transfer-keras-") as tmp:
        report = run(settings, Path(args.workdir or tmp), args.device, args.seed)
    device = select_device(args.device)
    report = {
        "settings": {"name": "quick" if args.quick else "full", **settings, "seed": args.seed},
        **report,
        "total_seconds": time.perf_counter() - start,
        "environment": {
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "backend_version": getattr(sys.modules.get(keras.backend.backend()), "__version__", None),
            "device": device.description,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "command": "python experiments/transfer_keras.py " + " ".join(sys.argv[1:]),
    }
    print()
    print(_table(report))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(report, indent=1))
    os.replace(tmp_out, out)
    print(f"\nwrote {out} ({report['total_seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
