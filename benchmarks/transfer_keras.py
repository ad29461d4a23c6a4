"""Does transfer help, in Keras? The twin of benchmarks/transfer_torch.py: pretrain ResNet-18 on
one half of the cnntoydata shapes, then learn the other half from a few labels per class three ways:
(a) feature extraction on the pretrained backbone, (b) fine-tuning it (backbone at 0.1 x lr),
(c) the same network from scratch. Also times a feature-extraction epoch with and without the
feature cache.

    .venv/bin/python benchmarks/transfer_keras.py            # several minutes on 2 CPU cores
    .venv/bin/python benchmarks/transfer_keras.py --quick    # smaller, for a smoke run

Runs on the active Keras backend (KERAS_BACKEND, default tensorflow). Prints a table and writes
benchmarks/results/transfer_keras.json. Accuracies are the best validation accuracy over the
epochs (the checkpoint finetune keeps), on a validation set much larger than the few training
labels. Epoch times are Keras ``fit`` calls, one per epoch (each pays a fixed ``fit`` and
validation overhead); the first epoch of a run also traces the training step, so the cache
comparison uses the epochs after it. The experiment itself is benchmarks/transfer_common.py.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before Keras loads TensorFlow

import keras
import numpy as np
import transfer_common as common

from keras_impl import resnet18
from keras_impl.distribute import select_device
from keras_impl.finetune import finetune


def _warm_up(size: int, device: str) -> None:
    """The first model of a process pays one-off runtime costs (thread pools, allocator): take
    them before anything is timed, so the first run measured is not penalised."""
    with keras.device(select_device(device).name):
        model = resnet18(input_shape=(size, size, 3), classes=5)
        model.predict(np.zeros((8, size, size, 3), "float32"), verbose=0)


def run(settings: dict[str, Any], work: Path, device: str, seed: int) -> dict[str, Any]:
    # each run builds its own models; clearing the session keeps the process bounded
    results = common.transfer_runs(
        settings, work, device, seed, finetune, _warm_up, after_run=keras.backend.clear_session, each_run=True
    )
    # epoch 1 of the live run also traces the backbone's forward pass, so steady epochs (2..n) are compared
    (cached, _), (live, _) = results["runs"]["feature-extract (pretrained, cached)"], results["live"]
    n = settings["timing_epochs"]
    cached_epoch = float(np.mean(cached.epoch_times[1:n]))
    live_epoch = float(np.mean(live.epoch_times[1:n]))
    cache = {
        "epochs_compared": f"2..{n}",
        "cached_epoch_seconds": cached_epoch,
        "live_epoch_seconds": live_epoch,
        "speedup": live_epoch / cached_epoch,
        "cache_build_seconds": cached.cache_seconds,
        "first_epoch_seconds": {"cached": cached.epoch_times[0], "live": live.epoch_times[0]},
        "val_acc_cached": [h["val_acc"] for h in cached.history[:n]],
        "val_acc_live": [h["val_acc"] for h in live.history],
        "note": "cached epochs shuffle the feature arrays, live ones shuffle the image files in tf.data: both are "
        "seeded per epoch but their orders differ, so the curves agree in trend, not bit for bit",
    }
    return common.report(settings, results, cache, first_epoch=True)


def _cache_line(c: dict[str, Any]) -> str:
    return (
        f"feature-extract epoch (epochs {c['epochs_compared']}): {c['live_epoch_seconds']:.2f}s live vs "
        f"{c['cached_epoch_seconds']:.3f}s cached = {c['speedup']:.1f}x (cache built once in "
        f"{c['cache_build_seconds']:.2f}s)"
    )


def main() -> int:
    parser = common.parser(__doc__.split("\n\n")[0], "keras")
    args = parser.parse_args()
    settings = common.settings_from(parser, args)
    if settings["timing_epochs"] < 2:
        parser.error("timing_epochs must be at least 2: the first epoch of a run includes tracing and is not compared")

    def environment() -> dict[str, Any]:
        return {
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "backend_version": getattr(sys.modules.get(keras.backend.backend()), "__version__", None),
            "device": select_device(args.device).description,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        }

    return common.run_and_write("keras", args, settings, run, environment, _cache_line)


if __name__ == "__main__":
    sys.exit(main())
