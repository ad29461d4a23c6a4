"""``python -m benchmarks``: inference speed of ours against the same-math references, and the fast
paths with their parity, in one run (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["alexnet", "vgg16", "googlenet", "resnet18", "resnet50"]
COMPILED = ["resnet50"]  # torch.compile costs 20-60 s per model and batch size on 2 cores


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--batches", nargs="+", type=int, help="default: 1 8 on cpu, 64 256 on cuda")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per group (default 3)")
    parser.add_argument(
        "--target-s", type=float, default=0.6, help="about how long each contender is timed per group (default 0.6)"
    )
    parser.add_argument(
        "--compile",
        nargs="*",
        default=COMPILED,
        metavar="MODEL",
        help=f"models that also get torch.compile rows (default: {' '.join(COMPILED)}; 'all'; none: empty)",
    )
    parser.add_argument("--keras-backends", nargs="*", default=["tensorflow", "jax"], metavar="BACKEND")
    parser.add_argument(
        "--onnx", nargs="*", default=["torch", "keras"], choices=["torch", "keras"], help="exports run in onnxruntime"
    )
    parser.add_argument(
        "--int8",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the onnxruntime int8 row (static quantization of the torch export; CPU only)",
    )
    parser.add_argument("--device", default="cpu", help="torch device for the torch rows (cpu, cuda)")
    parser.add_argument(
        "--out",
        default=str(ROOT / "benchmarks" / "results" / "suite"),
        help="writes OUT.json, OUT.md and OUT.png (default benchmarks/results/suite)",
    )
    args = parser.parse_args(argv)
    import cnnspec

    for name in args.models:
        cnnspec.get(name)  # an unknown name: one line with the closest one
    if args.compile == ["all"]:
        args.compile = list(args.models)
    args.batches = args.batches or ([64, 256] if args.device.startswith("cuda") else [1, 8])
    if min(args.batches) < 1 or args.rounds < 1 or args.size < 1:
        raise ValueError(f"batches, rounds and size must be >= 1, received {args.batches}, {args.rounds}, {args.size}")
    from parity.comparison.backends import resolve

    args.keras_backends = resolve(args.keras_backends)
    from cnnbase.atomic import check_writable

    for suffix in (".json", ".md", ".png"):
        check_writable(args.out + suffix)
    return args


def keras_rows(backend: str, args: argparse.Namespace) -> list[dict]:
    """``benchmarks.keras_side`` in a process of its own with ``KERAS_BACKEND=backend``."""
    with tempfile.TemporaryDirectory(prefix="bench-keras-") as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.keras_side",
            "--models",
            *args.models,
            "--batches",
            *map(str, args.batches),
            "--size",
            str(args.size),
            "--rounds",
            str(args.rounds),
            "--target-s",
            str(args.target_s),
            "--json",
            str(out),
        ]
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")
            if args.device == "cpu"
            else os.environ.get("CUDA_VISIBLE_DEVICES", "0"),
        }
        sys.stdout.flush()
        proc = subprocess.run(cmd, env=env, cwd=ROOT)
        if proc.returncode != 0 or not out.exists():
            print(
                f"keras/{backend}: the benchmark process failed (exit {proc.returncode}); its rows are missing",
                file=sys.stderr,
            )
            return []
        return json.loads(out.read_text())["rows"]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    import torch  # before keras (see README)
    from tqdm import tqdm

    from torch_impl.fastpath import cpu_bf16_feature

    from . import measure, report, torch_side

    sgemm = [torch_side.torch_sgemm(), measure.sgemm_gflops()]
    print(f"sgemm 4096^2 float32: torch {sgemm[0]:.0f} GFLOP/s, numpy {sgemm[1]:.0f} GFLOP/s", flush=True)
    rows: list[dict] = []
    for name in tqdm(args.models, desc="torch + onnxruntime", unit="model"):
        rows += torch_side.group_rows(
            name,
            args.batches,
            args.size,
            args.rounds,
            args.target_s,
            compile=name in args.compile,
            onnx=args.onnx,
            device=args.device,
            int8=args.int8,
            log=tqdm.write,
        )
    for backend in args.keras_backends:
        rows += keras_rows(backend, args)
    sgemm.append(torch_side.torch_sgemm())  # again at the end: a drifting machine shows here
    ceiling = max(sgemm)
    for r in rows:
        r["sgemm_fraction"] = r["gflops"] / ceiling if r["process"] != "torch" or args.device == "cpu" else None
    cuda = torch.device(args.device).type == "cuda"
    bf16 = cpu_bf16_feature()
    meta = {
        "command": "python -m benchmarks "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "cpu": measure.cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "sgemm_gflops": ceiling,
        "sgemm_library": "torch/numpy, best of both",
        "sgemm_runs": {"torch_start": sgemm[0], "numpy_start": sgemm[1], "torch_end": sgemm[2]},
        "bf16": (
            ("cuda" if cuda else bf16)
            if (cuda or bf16)
            else "no native bfloat16 on this CPU (no AVX512_BF16/AMX): bf16 rows skipped"
        ),
        "versions": _versions(),
        "python": platform.python_version(),
        "wall_s": time.perf_counter() - started,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    from cnnbase.atomic import write_json, write_text

    write_json(args.out + ".json", {"meta": meta, "rows": rows})
    table = report.markdown(rows, meta)
    short = report.summary(rows, meta)
    write_text(args.out + ".md", table.replace("\n\n", "\n\n" + short + "\n", 1))  # the summary first, then every row
    report.chart(rows, meta, Path(args.out + ".png"))
    print(table)
    print(short)
    print(f"wrote {args.out}.json, .md, .png ({meta['wall_s'] / 60:.1f} min)")
    return 0


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("torch", "torchvision", "keras", "tensorflow-cpu", "tensorflow", "jax", "onnxruntime"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)
