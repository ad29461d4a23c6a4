"""One Keras backend's rows: keras_impl against keras.applications, with and without XLA.

    KERAS_BACKEND=jax python -m benchmarks.keras_side --models vgg16 resnet50 --json OUT.json

Keras picks its backend once per process, so the suite runs this once per backend and reads the
JSON. Per (model, batch) group, interleaved: ``keras_impl`` and, where keras.applications has the
model, ``keras.applications``, each through ``predict_on_batch`` (what users call) with
``jit_compile`` True (``xla``) and, on tensorflow, False (``graph``; jax has no non-jit path worth
timing). VGG16/VGG19 are the same graph in both; keras.applications' ResNet50 is v1 (stride on the
first 1x1 convolution, 3.9 GMACs) where torchvision's and ours are v1.5 (4.1), so that pair is
listed but not same math.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from . import measure

SAME_GRAPH = {"vgg16": "VGG16", "vgg19": "VGG19"}
SAME_SIZE = {"resnet50": "ResNet50"}


def _compiled(model, jit: bool):
    model.compile(jit_compile=jit)
    return model


def group_rows(
    name: str, batches: Sequence[int], size: int, rounds: int, target_s: float, log: Callable[[str], None] = print
) -> list[dict]:
    import keras

    import cnnspec
    import keras_impl
    from cnntune.policy import no_aux_heads

    backend = keras.config.backend()
    macs = cnnspec.analyse(cnnspec.get(name), (size, size), include_aux=False).total_macs
    options = no_aux_heads(name)
    variants = {"xla": True} if backend == "jax" else {"graph": False, "xla": True}
    models = {}
    for variant, jit in variants.items():
        models[("keras_impl", variant)] = _compiled(
            keras_impl.get_model(name, input_shape=(size, size, 3), classifier_activation=None, **options), jit
        )
        app = SAME_GRAPH.get(name) or SAME_SIZE.get(name)
        if app:
            models[("keras.applications", variant)] = _compiled(
                getattr(keras.applications, app)(weights=None, input_shape=(size, size, 3), classifier_activation=None),
                jit,
            )
    rows = []
    for batch in batches:
        x = np.random.default_rng(batch).standard_normal((batch, size, size, 3), dtype=np.float32)
        contenders = {
            f"{impl} {variant}": (lambda m=model, x=x: m.predict_on_batch(x))
            for (impl, variant), model in models.items()
        }
        timings = measure.interleaved(contenders, rounds, target_s)
        group = []
        for label, timing in timings.items():
            impl, variant = label.split(" ", 1)
            row = {
                "model": name,
                "batch": batch,
                "size": size,
                "process": f"keras/{backend}",
                "device": "cpu",
                "impl": impl,
                "variant": variant,
                **measure.summarise(timing, batch, macs),
            }
            if impl == "keras.applications" and name not in SAME_GRAPH:
                row["gflops"] = float("nan")  # another graph: our MAC count is not its
            group.append(row)
        by_label = {f"{r['impl']} {r['variant']}": r for r in group}
        for row in group:
            twin = by_label.get(f"keras.applications {row['variant']}")
            if row["impl"] == "keras_impl" and twin is not None:
                measure.compare_rows(row, twin, f"keras.applications {row['variant']}")
                row["same_math"] = name in SAME_GRAPH
        rows += group
        log(
            f"{name} batch {batch} [{backend}]: "
            + ", ".join(
                f"{r['impl']} {r['variant']} {r['images_s']:.1f}/s"
                + (f" (ratio {r['ratio']:.2f})" if "ratio" in r else "")
                for r in group
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target-s", type=float, default=0.6)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    from tqdm import tqdm

    from cnnbase.atomic import write_json

    rows = []
    for name in tqdm(args.models, desc=f"keras/{os.environ.get('KERAS_BACKEND', 'tensorflow')}", unit="model"):
        rows += group_rows(name, args.batches, args.size, args.rounds, args.target_s, log=tqdm.write)
    write_json(args.json, {"rows": rows})
    return 0


if __name__ == "__main__":
    from cnnbase import cli

    cli.quiet_framework_logs()
    sys.exit(cli.run("benchmarks.keras_side", main))
