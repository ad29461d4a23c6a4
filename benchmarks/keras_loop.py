"""Where a Keras fine-tuning epoch goes: our loop against a plain ``model.fit``, per backend, in one run.

    python -m benchmarks.keras_loop            # ~10 min on 2 cores; benchmarks/results/keras_loop.{json,md}
    python -m benchmarks.keras_loop --quick    # lenet5, one backend, to see that it runs

On the same images (scikit-learn's digits as a folder, ``benchmarks/digits_folder.py``), size and
batch, each in a process of its own (Keras picks its backend once per process):

* ``cli``: ``python -m keras_impl finetune --no-augment`` (its ``history.json``: training and
  validation seconds of every epoch after the first, which compiles); without augmentation, as
  the plain fit, so the ratio is the loop's own cost;
* ``fit``: the same keras_impl model under a plain ``model.fit`` of in-memory arrays with Keras'
  AdamW, no augmentation, no callbacks: what the loop costs on top is ``cli / fit``;
* ``torch cli``: ``python -m torch_impl finetune --no-augment`` on the same data, the other
  framework's loop;
* ``same graph``: keras_impl's VGG16 and keras.applications' VGG16 (the same graph at 224x224)
  under the same plain ``train_on_batch``, interleaved, steps per second: the model's own cost.

Images per second are training images over training seconds. The CPU is named; the machine's other
load is not controlled (run it on a quiet machine, and compare only rows of one run).
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
    """One fine-tune CLI run: seconds per epoch (training, validation) after the first epoch."""
    cmd = [sys.executable, "-m", f"{framework}_impl", "finetune", "--data", str(data), "--model", model]
    cmd += ["--size", str(size), "--epochs", str(epochs), "--out", str(out), "--no-progress", "--no-augment"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=_child_env(backend or "torch"), capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    later = _history(out)[1:] or _history(out)
    train = float(np.mean([e["train_seconds"] for e in later]))
    return {
        "train_s": round(train, 2),
        "val_s": round(float(np.mean([e["seconds"] - e["train_seconds"] for e in later])), 2),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def fit_child(data: str, model: str, size: int, epochs: int, batch: int) -> dict:
    """In a child process on KERAS_BACKEND: the plain ``model.fit`` contender."""
    import keras

    import cnnspec
    import keras_impl
    from keras_impl.data import DecodedImages, ImageFolderDataset, list_images

    spec = cnnspec.get(model)
    classes = sorted(os.listdir(os.path.join(data, "train")))
    split = {}
    for name in ("train", "val"):
        paths, labels = list_images(os.path.join(data, name), classes)
        ds = ImageFolderDataset(paths, labels, spec, size, batch, images=DecodedImages(size, spec.input_size[0]))
        split[name] = (np.concatenate([ds[i][0] for i in range(len(ds))]), np.asarray(labels, "int32"))
    keras.utils.set_random_seed(0)
    net = keras_impl.get_model(
        model, classes=len(classes), input_shape=(size, size, spec.input_size[0]), classifier_activation=None
    )
    net.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        net.fit(*split["train"], batch_size=batch, epochs=1, verbose=0, shuffle=True)
        train = time.perf_counter() - start
        net.evaluate(*split["val"], batch_size=batch, verbose=0)
        seconds.append((train, time.perf_counter() - start - train))
    later = seconds[1:] or seconds
    return {
        "train_s": round(float(np.mean([t for t, _ in later])), 2),
        "val_s": round(float(np.mean([v for _, v in later])), 2),
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
    cmd = [sys.executable, "-m", "benchmarks.keras_loop", "--child", *argv]
    proc = subprocess.run(cmd, env=_child_env(backend), capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(result: dict) -> str:
    n = result["train_images"]
    lines = [
        f"{result['model']} on digits ({n} training images, {result['size']}x{result['size']}, batch "
        f"{result['batch']}, {result['epochs']} epochs, the first left out); {result['cpu']}",
        "",
        "| run | training s/epoch | images/s | validation s | cli / fit |",
        "|---|---|---|---|---|",
    ]
    for backend, row in result["keras"].items():
        for kind in ("cli", "fit"):
            r = row.get(kind, {})
            if "error" in r or not r:
                lines.append(f"| keras {kind}, {backend} | failed | | | |")
                continue
            ratio = row["cli"]["train_s"] / row["fit"]["train_s"] if kind == "cli" and "train_s" in row["fit"] else None
            lines.append(
                f"| keras {kind}, {backend} | {r['train_s']} | {n / r['train_s']:.0f} | {r['val_s']} | "
                f"{'' if ratio is None else f'{ratio:.2f}'} |"
            )
    t = result.get("torch_cli", {})
    if "train_s" in t:
        lines.append(f"| torch cli | {t['train_s']} | {n / t['train_s']:.0f} | {t['val_s']} | |")
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
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--same-graph-batch", type=int, default=4, help="VGG16 at 224: images per step (0: skip)")
    p.add_argument("--quick", action="store_true", help="lenet5, 2 epochs, tensorflow only, no VGG16")
    p.add_argument("--out", type=Path, default=RESULTS / "keras_loop")
    p.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        kind, *rest = args.child
        if kind == "fit":
            data, model, size, epochs, batch = rest
            print(json.dumps(fit_child(data, model, int(size), int(epochs), int(batch))))
        else:
            print(json.dumps(same_graph_child(*(int(v) for v in rest))))
        return 0
    if args.quick:
        args.model, args.epochs, args.backends, args.same_graph_batch = "lenet5", 2, ["tensorflow"], 0

    from .digits_folder import write_digits

    started = time.perf_counter()
    result: dict = {"model": args.model, "size": args.size, "batch": args.batch, "epochs": args.epochs}
    result.update(cpu=cpu_name(), keras={}, same_graph={})
    with tempfile.TemporaryDirectory() as tmp:
        data = write_digits(Path(tmp) / "digits")
        result["train_images"] = sum(1 for _ in (data / "train").rglob("*.png"))
        common = (data, args.model, args.size, args.epochs)
        for backend in args.backends:
            print(f"keras on {backend}: the CLI, then a plain fit", flush=True)
            row = {"cli": cli("keras", backend, *common, Path(tmp) / f"cli-{backend}")}
            row["fit"] = _in_child(backend, "fit", *(str(v) for v in common), str(args.batch))
            result["keras"][backend] = row
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
