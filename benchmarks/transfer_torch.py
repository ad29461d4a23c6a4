"""Does transfer help? Pretrain ResNet-18 on one half of the cnntoydata shapes, then learn the other
half from a few labels per class three ways: (a) feature extraction on the pretrained backbone,
(b) fine-tuning it, (c) the same network from scratch. Also times a feature-extraction epoch with
and without the feature cache.

    .venv/bin/python benchmarks/transfer_torch.py            # a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/transfer_torch.py --quick    # smaller, for a smoke run

Prints a table and writes benchmarks/results/transfer_torch.json. Accuracies are the best
validation accuracy over the epochs (the checkpoint finetune keeps), on a validation set much
larger than the few training labels. The experiment itself is benchmarks/transfer_common.py,
shared with the Keras twin.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

import torch
import transfer_common as common

from torch_impl import resnet18
from torch_impl.distributed import select_device
from torch_impl.finetune import finetune


def _warm_up(size: int, device: str) -> None:
    """The first passes of a process pay one-off costs (kernel selection, allocations): take
    them before anything is timed, so the first run measured is not penalised."""
    device = select_device(device)
    model = resnet18(num_classes=5).to(device)
    x = torch.randn(8, 3, size, size, device=device)
    for _ in range(3):
        model(x).sum().backward()


def run(settings: dict[str, Any], work: Path, device: str, seed: int) -> dict[str, Any]:
    results = common.transfer_runs(settings, work, device, seed, finetune, _warm_up)
    # with the same seed the cached and the live run see the same batches: their accuracies agree too
    (cached, _), (live, _) = results["runs"]["feature-extract (pretrained, cached)"], results["live"]
    n = settings["timing_epochs"]
    cached_epoch = sum(cached.epoch_times[:n]) / n
    live_epoch = sum(live.epoch_times) / n
    same = all(abs(a["val_acc"] - b["val_acc"]) < 1e-9 for a, b in zip(cached.history[:n], live.history))
    cache = {
        "epochs_compared": n,
        "cached_epoch_seconds": cached_epoch,
        "live_epoch_seconds": live_epoch,
        "speedup": live_epoch / cached_epoch,
        "cache_build_seconds": cached.cache_seconds,
        "same_val_acc_cached_vs_live": same,
    }
    return common.report(settings, results, cache)


def _cache_line(c: dict[str, Any]) -> str:
    return (
        f"feature-extract epoch: {c['live_epoch_seconds']:.2f}s live vs {c['cached_epoch_seconds']:.4f}s cached "
        f"= {c['speedup']:.0f}x (cache built once in {c['cache_build_seconds']:.2f}s; "
        f"same val acc: {c['same_val_acc_cached_vs_live']})"
    )


def main() -> int:
    parser = common.parser(__doc__.split("\n\n")[0], "torch")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: torch's choice), e.g. 2 to time a 2-core machine on a bigger one",
    )
    args = parser.parse_args()
    settings = common.settings_from(parser, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)

    def environment() -> dict[str, Any]:
        return {
            "torch": torch.__version__,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }

    return common.run_and_write("torch", args, settings, run, environment, _cache_line)


if __name__ == "__main__":
    sys.exit(main())
