"""Where a Keras fine-tuning epoch goes: our loop against a plain ``model.fit``, per backend, in one run.

    python -m benchmarks.keras_loop            # ~15 min on 2 cores; benchmarks/results/keras_loop.{json,md}
    python -m benchmarks.keras_loop --quick    # lenet5, 3 rounds, tensorflow only, to see that it runs

On the same images (scikit-learn's digits as a folder, ``benchmarks/digits_folder.py``), size and
batch, one process per backend (Keras picks its backend once per process), interleaved in it:

* ``cli``: the Keras fine-tune CLI's own run (``keras_impl.finetune`` through the core's loop,
  ``--no-augment``, as the plain fit), each epoch timed by the CLI's clock: its PyDataset, seeding,
  callbacks and optimizer (torch's AdamW rule, tabulated schedule, per-group rates);
* ``fit``: right after (or right before: the order alternates) each CLI epoch, one epoch of a plain
  ``model.fit`` of the same keras_impl architecture on in-memory arrays, with the CLI's update rule
  at a constant rate (keras_impl's TorchAdam, decoupled decay: ``--plain-optimizer keras`` takes
  Keras' AdamW instead, which is slower on tensorflow and torch), no
  callbacks. What the loop costs on top is ``cli / fit``;
* ``torch cli``: ``python -m torch_impl finetune --no-augment`` on the same data, in a process
  of its own after the Keras ones (the other framework's loop);
* ``same graph``: keras_impl's VGG16 and keras.applications' VGG16 (the same graph at 224x224)
  under the same plain ``train_on_batch``, interleaved, steps per second: the model's own cost.

Every contender's first epoch (it compiles) is left out. Per contender: the fastest epoch and the
median. Interleaving is the point: on a shared 2-core machine the same epoch took 6.2-7.8 s in some
stretches and a flat 10.3 s in others, so two contenders timed one after the other differ by the
machine's state (stop 38's table had the CLI at 2.2x a plain fit that way). Images per second
are training images over the fastest epoch's training seconds. The CPU is named.
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

import numpy as np

from .measure import cpu_name

RESULTS = Path(__file__).with_name("results")
BACKENDS = ("tensorflow", "jax", "torch")


def _child_env(backend: str) -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def _history(run: Path) -> list[dict]:
    return json.loads((run / "history.json").read_text())["epochs"]


def cli(framework: str, backend: str | None, data: Path, model: str, size: int, epochs: int, out: Path) -> dict:
    """One fine-tune CLI run in a process of its own: its epochs after the first (which compiles)."""
    cmd = [sys.executable, "-m", f"{framework}_impl", "finetune", "--data", str(data), "--model", model]
    cmd += ["--size", str(size), "--epochs", str(epochs), "--out", str(out), "--no-progress", "--no-augment"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=_child_env(backend or "torch"), capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    later = _history(out)[1:] or _history(out)
    return {
        **_summary([(e["train_seconds"], e["seconds"] - e["train_seconds"]) for e in later]),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def _arrays(data: str, spec, size: int, batch: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The train and val images as the CLI's PyDataset makes them (resized, normalised), in memory."""
    from keras_impl.data import DecodedImages, ImageFolderDataset, list_images

    classes = sorted(os.listdir(os.path.join(data, "train")))
    split = {}
    for name in ("train", "val"):
        paths, labels = list_images(os.path.join(data, name), classes)
        ds = ImageFolderDataset(paths, labels, spec, size, batch, images=DecodedImages(size, spec.input_size[0]))
        split[name] = (np.concatenate([ds[i][0] for i in range(len(ds))]), np.asarray(labels, "int32"))
    return split


def interleaved_child(
    data: str, model: str, size: int, rounds: int, batch: int, plain_optimizer: str = "torch"
) -> dict:
    """In a child process on KERAS_BACKEND: the CLI's run, a plain ``fit`` epoch beside each of its epochs."""
    import keras

    import cnnspec
    import keras_impl
    from cnntune import loop
    from keras_impl import finetune as ft
    from keras_impl.optimizers import TorchAdam

    spec = cnnspec.get(model)
    split = _arrays(data, spec, size, batch)
    plain: list[keras.Model] = []

    def plain_epoch() -> tuple[float, float]:
        if not plain:  # built inside the CLI's device scope, seeded
            keras.utils.set_random_seed(0)
            net = keras_impl.get_model(
                model,
                classes=len(np.unique(split["train"][1])),
                input_shape=split["train"][0].shape[1:],
                classifier_activation=None,  # logits, as the loss takes them
            )
            net.compile(
                optimizer=(
                    keras.optimizers.AdamW(1e-3, weight_decay=0.05)
                    if plain_optimizer == "keras"
                    else TorchAdam(1e-3, weight_decay=0.05, decoupled=True)
                ),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            plain.append(net)
        start = time.perf_counter()
        plain[0].fit(*split["train"], batch_size=batch, epochs=1, verbose=0, shuffle=True)
        train = time.perf_counter() - start
        plain[0].evaluate(*split["val"], batch_size=batch, verbose=0)
        return train, time.perf_counter() - start - train

    adapter = ft.KerasAdapter()
    cli_epoch = adapter.epoch
    seconds: dict[str, list[tuple[float, float]]] = {"cli": [], "fit": []}

    def both(epoch: int, seed: int, tag: str) -> dict:
        if epoch % 2 == 0:
            seconds["fit"].append(plain_epoch())
        logs = cli_epoch(epoch, seed, tag)
        seconds["cli"].append((logs["train_seconds"], logs["seconds"] - logs["train_seconds"]))
        if epoch % 2 == 1:
            seconds["fit"].append(plain_epoch())
        print(f"round {epoch}: cli {seconds['cli'][-1][0]:.2f} s, fit {seconds['fit'][-1][0]:.2f} s", file=sys.stderr)
        return logs

    adapter.epoch = both
    opts = ft.FinetuneOptions(data=data, model=model, size=size, batch_size=batch, augment=False, progress=False)
    with tempfile.TemporaryDirectory() as out:
        loop.finetune(adapter, opts, epochs=rounds + 1, out=out)
    return {k: _summary(v[1:]) for k, v in seconds.items()}


def _summary(epochs: list[tuple[float, float]]) -> dict:
    train = [t for t, _ in epochs]
    return {
        "train_s": round(min(train), 2),
        "train_median_s": round(float(np.median(train)), 2),
        "val_s": round(float(np.median([v for _, v in epochs])), 2),
        "epochs_train_s": [round(t, 2) for t in train],
    }


def same_graph_child(batch: int, rounds: int, steps: int) -> dict:
    """In a child process: keras_impl's VGG16 against keras.applications' at 224, train_on_batch."""
    import keras

    import keras_impl

    x = np.random.default_rng(0).standard_normal((batch, 224, 224, 3)).astype("float32")
    y = np.zeros(batch, "int32")
    models = {
        "keras_impl": keras_impl.get_model("vgg16", classes=10, classifier_activation=None),
        "keras.applications": keras.applications.VGG16(weights=None, classes=10, classifier_activation=None),
    }
    for m in models.values():
        m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        m.train_on_batch(x, y)  # compile
    seconds: dict[str, list[float]] = {k: [] for k in models}
    for r in range(rounds):
        for name in list(models)[r % 2 :] + list(models)[: r % 2]:
            start = time.perf_counter()
            for _ in range(steps):
                models[name].train_on_batch(x, y)
            seconds[name].append((time.perf_counter() - start) / steps)
    steps_s = {k: round(1 / float(np.median(v)), 3) for k, v in seconds.items()}
    return {"steps_s": steps_s, "ratio": round(steps_s["keras_impl"] / steps_s["keras.applications"], 3)}


def _in_child(backend: str, *argv: str) -> dict:
    """``--child ARGV`` on ``backend``; its progress lines go to this process's stderr as they come."""
    cmd = [sys.executable, "-m", "benchmarks.keras_loop", "--child", *argv]
    proc = subprocess.run(cmd, env=_child_env(backend), stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode} (its output is above)"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row(label: str, r: dict, n: int, ratio: str = "") -> str:
    if "train_s" not in r:
        return f"| {label} | failed | | | | |"
    return f"| {label} | {r['train_s']} | {r['train_median_s']} | {n / r['train_s']:.0f} | {r['val_s']} | {ratio} |"


def markdown(result: dict) -> str:
    n = result["train_images"]
    lines = [
        f"{result['model']} on digits ({n} training images, {result['size']}x{result['size']}, batch "
        f"{result['batch']}), {result['rounds']} epochs per contender after the first; {result['cpu']}. "
        "Keras rows: the CLI's epochs and plain-fit epochs interleaved in one process per backend.",
        "",
        "| run | training s/epoch, fastest | median | images/s (fastest) | validation s (median) "
        "| cli / fit (fastest, median) |",
        "|---|---|---|---|---|---|",
    ]
    for backend, row in result["keras"].items():
        c, f = row.get("cli", {}), row.get("fit", {})
        ratio = (
            f"{c['train_s'] / f['train_s']:.2f}, {c['train_median_s'] / f['train_median_s']:.2f}"
            if "train_s" in c and "train_s" in f
            else ""
        )
        lines.append(_row(f"keras cli, {backend}", c, n, ratio))
        lines.append(_row(f"keras fit, {backend}", f, n))
    lines.append(_row("torch cli (own process)", result.get("torch_cli", {}), n))
    for backend, g in result.get("same_graph", {}).items():
        if "ratio" in g:
            lines.append(
                f"\nVGG16 at 224, train_on_batch, {backend}: keras_impl {g['steps_s']['keras_impl']} steps/s, "
                f"keras.applications {g['steps_s']['keras.applications']} steps/s, ratio {g['ratio']}"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=6, help="timed epochs per contender, after a first that compiles")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--same-graph-batch", type=int, default=4, help="VGG16 at 224: images per step (0: skip)")
    p.add_argument(
        "--plain-optimizer",
        choices=("torch", "keras"),
        default="torch",
        help="the plain fit's optimizer: the CLI's rule (keras_impl TorchAdam) or Keras' AdamW",
    )
    p.add_argument("--quick", action="store_true", help="lenet5, 3 rounds, tensorflow only, no VGG16")
    p.add_argument("--out", type=Path, default=RESULTS / "keras_loop")
    p.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        kind, *rest = args.child
        if kind == "interleaved":
            data, model, size, rounds, batch, plain_optimizer = rest
            print(json.dumps(interleaved_child(data, model, int(size), int(rounds), int(batch), plain_optimizer)))
        else:
            print(json.dumps(same_graph_child(*(int(v) for v in rest))))
        return 0
    if args.quick:
        args.model, args.rounds, args.backends, args.same_graph_batch = "lenet5", 3, ["tensorflow"], 0

    from .digits_folder import write_digits

    started = time.perf_counter()
    result: dict = {"model": args.model, "size": args.size, "batch": args.batch, "rounds": args.rounds}
    result["plain_optimizer"] = args.plain_optimizer
    result.update(cpu=cpu_name(), keras={}, same_graph={})
    with tempfile.TemporaryDirectory() as tmp:
        data = write_digits(Path(tmp) / "digits")
        result["train_images"] = sum(1 for _ in (data / "train").rglob("*.png"))
        common = (data, args.model, args.size, args.rounds + 1)
        for backend in args.backends:
            print(f"keras on {backend}: the CLI's epochs and plain-fit epochs, interleaved", flush=True)
            argv = (
                "interleaved",
                *(str(v) for v in common[:3]),
                str(args.rounds),
                str(args.batch),
                args.plain_optimizer,
            )
            result["keras"][backend] = _in_child(backend, *argv)
            if args.same_graph_batch:
                print(f"VGG16, keras_impl and keras.applications on {backend}", flush=True)
                result["same_graph"][backend] = _in_child(backend, "same-graph", str(args.same_graph_batch), "3", "3")
        print("torch: the CLI", flush=True)
        result["torch_cli"] = cli("torch", None, *common, Path(tmp) / "cli-torch")
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    table = markdown(result)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
