"""Inference throughput, ours vs the reference implementations, measured side by side in one run.

    python benchmarks/inference.py [--models resnet50 vgg16] [--batch 8] [--iters 5] [--size 224]

For each model: torch_impl vs torchvision (same architecture, same weights), keras_impl vs
keras.applications where it has the model (VGG16/19; its ResNet50 is v1, not v1.5, so it is
listed as a reference of the same size, not the same graph), and onnxruntime on our torch export.
Prints images/s and the ratio ours/reference, and writes JSON. Timings are medians of ``--iters``
runs after one warm-up; nothing here is asserted by tests.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnspec.cli import quiet_framework_logs  # noqa: E402

quiet_framework_logs()  # before TensorFlow loads
import torch  # noqa: E402  (before keras/tensorflow, see README)
import torchvision  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import keras  # noqa: E402
import keras_impl  # noqa: E402
import torch_impl  # noqa: E402
from parity.files import write_text  # noqa: E402
from parity.onnx_compare import run_onnx  # noqa: E402
from parity.onnx_export import export_torch  # noqa: E402

KERAS_APPS = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19, "resnet50": keras.applications.ResNet50}


def median_time(fn, iters: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(name: str, batch: int, size: int, iters: int, device: str = "cpu", amp: bool = False, onnx: bool = True) -> dict:
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    xt, xk = torch.from_numpy(x).to(device), np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    ours_t = torch_impl.get_model(name, **({"aux_logits": False} if name == "googlenet" else {})).eval().to(device)
    ref_t = getattr(torchvision.models, name)(weights=None, **({"aux_logits": False, "init_weights": False} if name == "googlenet" else {})).eval().to(device)
    ref_t.load_state_dict(ours_t.state_dict())

    def run(model):
        def call():
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
                model(xt)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
        return call

    with torch.no_grad():
        row = {"model": name, "batch": batch, "size": size, "device": device, "amp_bf16": amp,
               "torch_impl_s": median_time(run(ours_t), iters), "torchvision_s": median_time(run(ref_t), iters)}
        row["max_abs_diff_torch_impl_vs_torchvision"] = float((ours_t(xt) - ref_t(xt)).abs().max())
    ours_t = ours_t.cpu()
    ours_k = keras_impl.get_model(name, input_shape=(size, size, 3), classifier_activation=None)
    predict = lambda m: m.predict_on_batch(xk)  # noqa: E731  (compiled once, then reused)
    row["keras_impl_s"] = median_time(lambda: predict(ours_k), iters)
    if name in KERAS_APPS:
        ref_k = KERAS_APPS[name](weights=None, input_shape=(size, size, 3), classifier_activation=None)
        row["keras_applications_s"] = median_time(lambda: predict(ref_k), iters)
    if onnx:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.onnx"
            export_torch(ours_t, path, size=(size, size))
            row["onnxruntime_s"] = median_time(lambda: run_onnx(path, x), iters)
    return row


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["alexnet", "resnet50", "googlenet", "vgg16"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="torch device for the torch models (keras uses its backend's default)")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast for the torch models")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "inference.json"))
    args = parser.parse_args(argv)
    rows = []
    for name in tqdm(args.models, desc="models"):
        rows.append(bench(name, args.batch, args.size, args.iters, args.device, args.amp, args.onnx))
        r = rows[-1]
        ips = lambda key: args.batch / r[key] if key in r else float("nan")  # noqa: E731
        tqdm.write(
            f"{name:10s} torch_impl {ips('torch_impl_s'):7.1f} img/s vs torchvision {ips('torchvision_s'):7.1f} (ratio {r['torchvision_s'] / r['torch_impl_s']:.2f})"
            f" | keras_impl {ips('keras_impl_s'):7.1f}" + (f" vs keras.applications {ips('keras_applications_s'):7.1f} (ratio {r['keras_applications_s'] / r['keras_impl_s']:.2f})" if "keras_applications_s" in r else "")
            + (f" | onnxruntime {ips('onnxruntime_s'):7.1f} (ratio to torch_impl {r['torch_impl_s'] / r['onnxruntime_s']:.2f})" if "onnxruntime_s" in r else "")
        )
    meta = {"torch": torch.__version__, "keras": keras.__version__, "backend": keras.backend.backend(), "threads": torch.get_num_threads(),
            "device": args.device, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
    write_text(args.out, json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}  (ratio > 1: ours is faster)")
    return 0


if __name__ == "__main__":
    from cnnspec import cli

    sys.exit(cli.run('benchmarks/inference.py', lambda argv: main(argv)))  # one-line errors, --debug (cnnspec.cli)
