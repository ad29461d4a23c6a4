"""``python -m parity``: check, train-curve, list, summary, convert, export, deploy-table, fetch.

python -m parity check alexnet              # torch <-> keras agree on seeded random weights
python -m parity check --all --json out.json
python -m parity check vgg16 --weights vgg16-397923af.pth --layers
python -m parity check resnet18 --train --all-backends --plot resnet18.png   # trains the same on tf, jax, torch
python -m parity train-curve resnet18 --all-backends   # 50 SGD steps on toy data, both loss curves, one PNG
python -m parity check resnet50 --weights IMAGENET1K_V2   # the published weights (downloaded once)
python -m parity fetch googlenet --framework both         # download, convert for Keras, verify
python -m parity convert --model vgg16 vgg16.pth vgg16.weights.h5
python -m parity export vgg19 --framework keras --out vgg19.keras.onnx
python -m parity export resnet18 --format litert --framework keras --out resnet18.tflite
python -m parity check resnet18 --size 64 --targets onnx,litert,saved_model,openvino,pt2
python -m parity check resnet18 --size 64 --targets litert,onnx,openvino --quantize dynamic-int8
python -m parity deploy-table --json benchmarks/results/deploy_targets.json   # the README's table
python -m parity style-transfer --size 128 --steps 20   # Gatys on VGG19, torch and Keras from one start, one PNG
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import cnnspec
from cnnbase import cli
from cnnbase.atomic import check_writable, write_text
from cnnspec import registry

from . import style_transfer
from .comparison.backends import BACKENDS
from .comparison.compare import DEFAULT_ATOL, DEFAULT_RTOL, Report
from .deploy.table import QUANTIZE_MODES, TARGETS, quantize_help, targets_argument
from .deploy.table import help_text as target_help


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _report_line(name: str, r: Report) -> str:
    o = r.output
    verdict = "PASS" if r.passed else "FAIL"
    return (
        f"{name:17s} {r.label:15s} {o.max_abs:10.2e} {o.max_rel:10.2e} {_pct(o.top1):>6s} {_pct(o.top5):>6s}  {verdict}"
    )


def _layer_table(r: Report) -> list[str]:
    lines = [f"  per layer ({r.label}); first divergence: {r.first_divergence.name if r.first_divergence else 'none'}"]
    for f in r.layers:
        mark = "" if f.passed else "  <-- diverges" if f is r.first_divergence else "  x"
        lines.append(f"    {f.name:32s} {str(f.shape):22s} abs {f.max_abs:9.2e}  rel {f.max_rel:9.2e}{mark}")
    return lines


def _size(values: list[int] | None, parser) -> tuple | None:
    if not values:
        return None
    if len(values) > 2:
        parser.error(f"--size takes HEIGHT [WIDTH], received {len(values)} values: {' '.join(map(str, values))}")
    return (values[0], values[-1])


def _release_models() -> None:
    """Keras keeps every model in its global state; free it between models of --all."""
    import gc

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    gc.collect()


def run_training(args, names: list[str], size) -> dict:
    """``check --train`` in this process: the training-step parity of every named model (see
    parity.training.steps), one line each; returns the JSON summary."""
    from .training.steps import check_training, row_kind

    print(
        f"{'model':17s} {'training':22s} {'loss':>9s} {'grad':>9s} {'param':>9s} {'stats':>9s}  "
        "result  (max relative error)"
    )
    failed, start = [], time.perf_counter()
    results = []
    for name in names:
        t0 = time.perf_counter()
        report = check_training(
            name,
            args.optimizer,
            steps=args.steps,
            batch=args.batch or 4,
            size=size,
            seed=args.seed,
            rtol=args.train_rtol,
            atol=args.atol,
            dtype=args.dtype,
        )
        _release_models()
        results.append(report)
        worst = report.worst()
        cols = " ".join(
            f"{worst[k]:9.1e}" if k in worst else f"{'-':>9s}" for k in ("loss", "grad", "param", "running stat")
        )
        verdict = "PASS" if report.passed else f"FAIL at {report.first_divergence.name}"
        print(
            f"{name:17s} {f'{args.optimizer} x{args.steps} {args.dtype} {report.backend}':22s} {cols}  {verdict}  "
            f"({time.perf_counter() - t0:.1f}s)",
            flush=True,
        )
        if args.layers:
            for f in report.rows:
                mark = "" if f.passed else "  <-- diverges" if f is report.first_divergence else "  x"
                print(f"    {f.name:44s} {row_kind(f.name):13s} abs {f.max_abs:9.2e}  rel {f.max_rel:9.2e}{mark}")
        if not report.passed:
            failed.append(name)
    elapsed = time.perf_counter() - start
    print(f"{len(names) - len(failed)}/{len(names)} models train the same  ({elapsed:.1f}s)")
    return {
        "mode": "train",
        "keras_backend": _keras_backend(),
        "passed": not failed,
        "failed": failed,
        "total_s": round(elapsed, 2),
        "results": [r.to_dict() for r in results],
    }


def run_inference(args, names: list[str], size) -> dict:
    """``check`` in this process: transfer, compare (and ONNX) for every named model, one line
    per direction; returns the JSON summary."""
    from .comparison.check import check

    print(f"{'model':17s} {'direction':15s} {'max abs':>10s} {'max rel':>10s} {'top-1':>6s} {'top-5':>6s}  result")
    results, start = [], time.perf_counter()
    for name in names:
        spec = cnnspec.get(name)
        if (
            args.all and spec.fixed_input and size is not None and size != spec.input_size[1:]
        ):  # one named model: an error
            print(f"{name:17s} skipped: takes only {spec.input_size[1]}x{spec.input_size[2]} inputs")
            continue
        result = check(
            name,
            batch=args.batch or 2,
            size=size,
            seed=args.seed,
            direction=args.direction,
            rtol=args.rtol,
            atol=args.atol,
            layers=args.layers or args.record_layers or bool(args.plot),
            weights=args.weights,
            onnx=not args.no_onnx and not args.targets,  # --targets: onnx is one of them, if named
            features=args.features,
            targets=args.targets,
            quantize=args.quantize,
        )
        results.append(result)
        _release_models()
        for r in result.reports:
            print(_report_line(name, r), f"  ({result.timings.get('total', 0):.1f}s)", flush=True)
            if args.layers or r.label.endswith("features"):  # a pyramid: one row per level
                print("\n".join(_layer_table(r)))
        if result.onnx is not None:
            for r in result.onnx.reports:
                print(_report_line(name, r))
            exports = ", ".join(
                f"{k} export {e.seconds:.1f}s {e.size_mb:.0f} MB" for k, e in result.onnx.exports.items()
            )
            print(f"{'':17s} {exports}; graphs: {'ok' if not result.onnx.problems else 'PROBLEMS'}", flush=True)
            for problem in result.onnx.problems:
                print(f"{'':17s} ! {problem}")
        if result.deploy is not None:
            from .deploy.rows import row_line

            print("\n".join(row_line(name, row) for row in result.deploy.rows), flush=True)
    elapsed = time.perf_counter() - start
    failed = [r.model for r in results if not r.passed]
    print(
        f"{len(results) - len(failed)}/{len(results)} models agree  "
        f"({elapsed:.1f}s, peak memory {_peak_rss_mb():.0f} MB)"
    )
    return {
        "mode": "inference",
        "keras_backend": _keras_backend(),
        "passed": not failed,
        "failed": failed,
        "total_s": round(elapsed, 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rtol": args.rtol,
        "atol": args.atol,
        "results": [r.to_dict() for r in results],
    }


def _keras_backend() -> str:
    from .comparison.backends import current

    return current()


def child_argv(args) -> list[str]:
    """The ``check`` arguments for a subprocess on another backend: everything but the backend
    choice, --json and --plot (the parent writes those for all backends together)."""
    argv = ["check", "--all"] if args.all else ["check", args.model]
    for flag, value in (
        ("--batch", args.batch),
        ("--seed", args.seed),
        ("--direction", args.direction),
        ("--rtol", args.rtol),
        ("--atol", args.atol),
        ("--weights", args.weights),
        ("--optimizer", args.optimizer),
        ("--steps", args.steps),
        ("--dtype", args.dtype),
        ("--train-rtol", args.train_rtol),
        ("--targets", ",".join(args.targets) if args.targets else None),
        ("--quantize", args.quantize),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if args.size:
        argv += ["--size", *map(str, args.size)]
    for flag, on in (
        ("--layers", args.layers),
        ("--features", args.features),
        ("--record-layers", bool(args.plot) and not args.train),
        ("--no-onnx", args.no_onnx),
        ("--train", args.train),
    ):
        if on:
            argv.append(flag)
    return argv


def _backend_row(backend: str, summary: dict) -> str:
    """One line of the all-backends table: models passed and the worst relative error per figure."""
    results = summary.get("results", [])
    if not results:
        return f"{backend:11s} no result ({summary.get('error', 'the run wrote no summary')})"
    passed = sum(r["passed"] for r in results)
    if summary.get("mode") == "train":
        worst = {k: max(r["worst"].get(k, 0.0) for r in results) for k in ("loss", "grad", "param", "running stat")}
        figures = " ".join(f"{k} {v:.1e}" for k, v in worst.items())
    else:
        keras = max(rep["output"]["max_rel"] for r in results for rep in r["reports"])
        onnx = [rep["output"]["max_rel"] for r in results if r.get("onnx") for rep in r["onnx"]["reports"]]
        figures = f"torch<->keras {keras:.1e}" + (f"  onnx {max(onnx):.1e}" if onnx else "")
    return f"{backend:11s} {passed}/{len(results)} pass   worst max rel: {figures}"


def _check_outputs(args) -> None:
    if getattr(args, "json", None):
        check_writable(args.json)
    if getattr(args, "plot", None):
        check_writable(args.plot, (".png",))


def cmd_check(args, parser) -> int:
    from .comparison.backends import requested, run_on_each

    names = cnnspec.names() if args.all else [args.model]
    if not args.all and not args.model:
        parser.error("name a model or pass --all")
    if args.batch is not None and args.batch < 1:
        parser.error(f"--batch must be >= 1 (an empty batch compares nothing), received {args.batch}")
    if args.train and args.weights:
        parser.error("--train starts from seeded random weights; drop --weights")
    if args.weights and args.all:
        parser.error("--weights checks one model; drop --all")
    if args.quantize and not args.targets:
        parser.error(f"--quantize {args.quantize} judges the deployment targets' variants: name them with --targets")
    size = _size(args.size, parser)
    if args.rtol < 0 or args.atol < 0 or args.train_rtol < 0:
        parser.error(
            f"--rtol, --atol and --train-rtol must be >= 0, received {args.rtol}, {args.atol}, {args.train_rtol}"
        )
    _check_outputs(args)  # now, not after the whole check
    run = run_training if args.train else run_inference
    summaries = run_on_each(
        requested(args.keras_backend, args.all_backends), lambda: run(args, names, size), child_argv(args)
    )
    for summary in summaries.values():
        summary.setdefault("failed", names)
    failed = sorted(
        {f"{name} ({b})" if len(summaries) > 1 else name for b, s in summaries.items() for name in s["failed"]}
    )
    if len(summaries) > 1:
        print("\n".join(["== every backend"] + [_backend_row(b, s) for b, s in summaries.items()]))
    summary = (
        next(iter(summaries.values()))
        if len(summaries) == 1
        else {
            "mode": "train" if args.train else "inference",
            "passed": not failed,
            "failed": failed,
            "backends": summaries,
        }
    )
    if args.json:
        write_text(args.json, json.dumps(summary, indent=2))
    if args.plot:
        from .comparison.plot import plot_check

        print(f"wrote {plot_check(summaries, args.plot)}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_train_curve(args, parser) -> int:
    """``train-curve``: the same short fine-tuning run in both frameworks, the loss curves compared
    step by step (parity.training.curve), on one or every Keras backend; one PNG."""
    from .comparison.backends import requested, run_on_each
    from .training.curve import CurveResult, plot_curve, train_curve

    _check_outputs(args)

    def run_here() -> dict:
        r = train_curve(
            args.model,
            steps=args.steps,
            batch=args.batch,
            size=args.size,
            batches=args.batches,
            seed=args.seed,
            dtype=args.dtype,
            rtol=args.rtol,
            lr=args.lr,
        )
        _release_models()
        control = f", control torch vs torch {max(r.control_gaps):.1e}" if r.control_loss else ""
        print(
            f"{args.model}: {r.steps} steps, largest relative loss gap {r.max_gap:.1e} "
            f"(tolerance {r.rtol:g}{control})  {'PASS' if r.passed else 'FAIL'}  "
            f"(torch {r.seconds.get('torch', 0):.1f}s, keras {r.seconds.get('keras', 0):.1f}s)",
            flush=True,
        )
        return {"passed": r.passed, "results": {r.backend: r.to_dict()}}

    argv = [
        "train-curve",
        args.model,
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--batches",
        str(args.batches),
        "--seed",
        str(args.seed),
        "--dtype",
        args.dtype,
        "--rtol",
        str(args.rtol),
        "--lr",
        str(args.lr),
        "--no-plot",
    ]
    summaries = run_on_each(
        requested(args.keras_backend, args.all_backends),
        run_here,
        argv + (["--size", str(args.size)] if args.size is not None else []),
        title=f"{args.model}, ",
    )
    results = {
        b: CurveResult.from_dict(s["results"][b]) if b in s.get("results", {}) else None for b, s in summaries.items()
    }
    failed = [b for b, r in results.items() if r is None or not r.passed]
    if args.json:
        write_text(
            args.json,
            json.dumps(
                {
                    "passed": not failed,
                    "failed": failed,
                    "results": {b: r.to_dict() if r else None for b, r in results.items()},
                },
                indent=2,
            ),
        )
    drawn = {b: r for b, r in results.items() if r is not None}
    if not args.no_plot and drawn:
        print(f"wrote {plot_curve(drawn, args.plot or f'train-curve-{args.model}.png')}")
    if failed:
        print(f"FAILED on: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_summary(args, parser) -> int:
    from .comparison.sidebyside import side_by_side

    print(cnnspec.summary(cnnspec.get(args.model), _size(args.size, parser)))
    print()
    print(side_by_side(args.model, _size(args.size, parser)))
    return 0


def cmd_convert(args, parser) -> int:
    from .weights.convert import convert

    t0 = time.perf_counter()
    check_writable(args.dst)
    out = convert(args.model, args.src, args.dst, num_classes=args.num_classes)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f}s")
    return 0


def cmd_export(args, parser) -> int:
    if args.format != "onnx" or args.quantize:
        from .deploy.check import export as export_target

        info = export_target(
            args.model,
            args.format,
            args.framework,
            args.out,
            args.weights,
            _size(args.size, parser),
            args.seed,
            quantize=args.quantize,
        )
        print(json.dumps(info.to_dict()))
        return 0
    from .onnx.artifact import export

    check_writable(args.out, (".onnx",))
    info = export(
        args.model, args.framework, args.out, weights=args.weights, size=_size(args.size, parser), seed=args.seed
    )
    print(json.dumps(info.to_dict()))
    return 0


def cmd_deploy_table(args, parser) -> int:
    """``deploy-table``: every family through every deployment target; the JSON and the README's tables."""
    from .deploy.report import FAMILIES, deploy_table, markdown

    unknown = [m for m in args.models or () if m not in FAMILIES]
    if unknown:
        parser.error(f"--models takes {', '.join(FAMILIES)}, received {', '.join(unknown)}")
    check_writable(args.json, (".json",))
    if args.markdown:
        check_writable(args.markdown, (".md",))
    t0 = time.perf_counter()
    families = {m: FAMILIES[m] for m in args.models} if args.models else FAMILIES
    data = deploy_table(
        families,
        modes=args.quantize if args.quantize is not None else QUANTIZE_MODES,
        done=lambda partial: write_text(args.json, json.dumps(partial, indent=1)),
    )
    data["total_s"] = round(time.perf_counter() - t0, 1)
    write_text(args.json, json.dumps(data, indent=1))
    if args.markdown:
        write_text(args.markdown, markdown(data) + "\n")
    print(f"wrote {args.json} in {data['total_s']:.0f}s, peak memory {_peak_rss_mb():.0f} MB")
    return 0 if data["passed"] else 1


def cmd_fetch(args, parser) -> int:
    from .fetch import fetch

    t0 = time.perf_counter()
    result = fetch(args.model, args.weights, framework=args.framework, progress=not args.no_progress, force=args.force)
    print(f"{result.entry.key}: {result.entry.url}")
    print(f"torch  {result.torch_path}")
    if result.keras_path is not None:
        probe = result.record["probe"]
        print(
            f"keras  {result.keras_path}  (probe batch max rel {probe['max_rel']:.2e}, "
            f"top-1 {_pct(probe['top1'])}; record "
            f"{result.keras_path.with_name(result.record['keras_file'].removesuffix('.weights.h5') + '.json').name})"
        )
    print(f"done in {time.perf_counter() - t0:.1f}s, peak memory {_peak_rss_mb():.0f} MB")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m parity", description="torch_impl <-> keras_impl parity tools", epilog=cli.DEBUG_HELP
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="transfer weights and compare outputs (exit 1 on disagreement)")
    c.add_argument("model", nargs="?", type=registry.model_name, metavar="MODEL")
    c.add_argument("--all", action="store_true", help="every model, each at its default input size")
    c.add_argument("--batch", type=int, help="images per batch (default 2; 4 with --train)")
    c.add_argument("--size", type=int, nargs="+", metavar="N", help="input HEIGHT [WIDTH] (default: the model's)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--direction", choices=("torch2keras", "keras2torch", "both"), default="both")
    c.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="max error relative to the output's scale")
    c.add_argument("--atol", type=float, default=DEFAULT_ATOL)
    c.add_argument("--layers", action="store_true", help="compare every layer and name the first divergence")
    c.add_argument(
        "--features",
        action="store_true",
        help="compare every feature-pyramid level (features_only on both sides), one row per level",
    )
    c.add_argument("--json", metavar="FILE", help="write the results as JSON")
    c.add_argument(
        "--weights",
        metavar="FILE|NAME",
        help="a torchvision/torch_impl checkpoint, or published weights (IMAGENET1K_V1, DEFAULT), "
        "instead of random weights",
    )
    c.add_argument("--no-onnx", action="store_true", help="skip exporting both models and comparing in onnxruntime")
    c.add_argument(
        "--targets",
        type=targets_argument,
        metavar="T1,T2",
        help=f"export to these deployment targets ({', '.join(TARGETS)}) instead of the ONNX check and run each "
        "in its own runtime against the torch model, one row per target and framework",
    )
    c.add_argument("--quantize", choices=QUANTIZE_MODES, help=f"with --targets, also each target's {quantize_help()}")
    c.add_argument(
        "--train",
        action="store_true",
        help="training-step parity instead: the same optimizer steps in both frameworks, "
        "comparing the loss, every gradient, updated weight and BatchNorm statistic (default batch 4, 64x64, "
        "or 96x96 where a BatchNorm would see a 2x2 map: parity/training/steps.py says why)",
    )
    c.add_argument(
        "--optimizer",
        choices=("sgd", "adam", "adamw"),
        default="sgd",
        help="--train: the optimizer (default sgd: momentum 0.9, weight decay 1e-4)",
    )
    c.add_argument("--steps", type=int, default=3, help="--train: optimizer steps (default 3)")
    c.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="--train: precision (default float64; see parity/training/steps.py for why)",
    )
    c.add_argument(
        "--train-rtol",
        type=float,
        default=1e-5,
        help="--train: max error relative to each tensor's scale (default 1e-5)",
    )
    c.add_argument(
        "--keras-backend",
        choices=BACKENDS,
        help="run the Keras side on this backend (a subprocess when it is not this process's)",
    )
    c.add_argument(
        "--all-backends", action="store_true", help="run the check on every installed Keras backend, one table"
    )
    c.add_argument(
        "--record-layers", action="store_true", help=argparse.SUPPRESS
    )  # per-node figures in the JSON, not printed
    c.add_argument(
        "--plot",
        metavar="FILE.png",
        help="draw the relative error per spec node (log scale): outputs, or with --train "
        "gradients, updated weights and BatchNorm statistics",
    )
    t = sub.add_parser(
        "train-curve", help="the same short SGD fine-tuning in both frameworks: loss curves step by step, one PNG"
    )
    t.add_argument(
        "model", nargs="?", default="resnet18", type=registry.model_name, metavar="MODEL", help="default resnet18"
    )
    t.add_argument("--steps", type=int, default=50)
    t.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    t.add_argument("--batches", type=int, default=4, help="fixed toy batches, cycled (default 4)")
    t.add_argument("--size", type=int, help="image side (default 32, or the model's fixed size)")
    t.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (momentum 0.9, weight decay 1e-4)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--dtype",
        choices=("float64", "float32"),
        default="float64",
        help="default float64: in float32 rounding alone makes this run drift "
        "(see the control line, parity/training/curve.py)",
    )
    t.add_argument("--rtol", type=float, default=1e-4, help="largest relative loss gap that passes (default 1e-4)")
    t.add_argument("--keras-backend", choices=BACKENDS, help="run the Keras side on this backend")
    t.add_argument(
        "--all-backends", action="store_true", help="every installed Keras backend, all curves in one figure"
    )
    t.add_argument("--plot", metavar="FILE.png", help="default train-curve-MODEL.png")
    t.add_argument("--no-plot", action="store_true", help=argparse.SUPPRESS)
    t.add_argument("--json", metavar="FILE")
    e = sub.add_parser("export", help="write one ONNX (or other deployment target) export (atomically)")
    e.add_argument("model", type=registry.model_name, metavar="MODEL")
    e.add_argument("--framework", choices=("torch", "keras"), required=True)
    e.add_argument("--format", choices=tuple(TARGETS), default="onnx", help=f"default onnx. {target_help()}")
    e.add_argument("--out", required=True, metavar="FILE|DIR", help="a folder for saved_model and openvino")
    e.add_argument("--quantize", choices=QUANTIZE_MODES, help=f"write {quantize_help()}")
    e.add_argument(
        "--weights",
        metavar="FILE",
        help="torch checkpoint (.pth/.safetensors) or Keras .weights.h5; default: seeded random",
    )
    e.add_argument("--size", type=int, nargs="+", metavar="N")
    e.add_argument("--seed", type=int, default=0)
    d = sub.add_parser(
        "deploy-table",
        help="every family at a small input through every deployment target (float32 and quantized): "
        "the JSON the README's table is rendered from",
    )
    d.add_argument("--json", required=True, metavar="FILE.json")
    d.add_argument("--markdown", metavar="FILE.md", help="also the two tables, as the README holds them")
    d.add_argument("--models", nargs="+", metavar="FAMILY", help="a subset (default: all eight families)")
    d.add_argument("--quantize", nargs="*", choices=QUANTIZE_MODES, help="the modes (default both; none: float32 only)")
    f = sub.add_parser(
        "fetch", help="download published weights (hash-checked) and convert them for Keras, ahead of time"
    )
    f.add_argument("model", type=registry.model_name, metavar="MODEL")
    f.add_argument(
        "--weights",
        default="DEFAULT",
        metavar="NAME",
        help="IMAGENET1K_V1, IMAGENET1K_V2, ... (default: DEFAULT; 'imagenet' is the same)",
    )
    f.add_argument(
        "--framework",
        choices=("torch", "keras", "both"),
        default="both",
        help="keras and both also convert and verify (default both)",
    )
    f.add_argument(
        "--force", action="store_true", help="convert for Keras again even when a verified conversion is cached"
    )
    f.add_argument("--no-progress", action="store_true", help="no download progress bar")
    style_transfer.add_subparser(sub, BACKENDS)
    sub.add_parser("list", help="list the models")
    s = sub.add_parser("summary", help="spec, torch and keras summaries side by side")
    s.add_argument("model", type=registry.model_name, metavar="MODEL")
    s.add_argument("--size", type=int, nargs="+", metavar="N")
    v = sub.add_parser("convert", help="torch checkpoint <-> Keras .weights.h5 (direction from the file names)")
    v.add_argument("--model", required=True, type=registry.model_name, metavar="MODEL")
    v.add_argument("src")
    v.add_argument("dst")
    v.add_argument("--num-classes", type=int, default=None, help="when it cannot be read from the source")
    for command in sub.choices.values():
        command.set_defaults(command_parser=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command; a bad input is one line and exit status 2 (cnnbase.cli; --debug shows the traceback)."""
    return cli.run("python -m parity", _main, argv)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in cnnspec.names():
            spec = cnnspec.get(name)
            print(f"{name:17s} {'x'.join(map(str, spec.input_size)):10s} {spec.paper}")
        return 0
    commands = {
        "check": cmd_check,
        "train-curve": cmd_train_curve,
        "summary": cmd_summary,
        "convert": cmd_convert,
        "export": cmd_export,
        "deploy-table": cmd_deploy_table,
        "fetch": cmd_fetch,
        "style-transfer": style_transfer.command,
    }
    return commands[args.command](args, args.command_parser)  # its errors print the subcommand's usage


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every file is written (atomically) and closed and every child waited for: skip tearing down
    # torch, TensorFlow and Keras (2-4 s of a cold check). An unused export child sees its stdin close.
    os._exit(status if isinstance(status, int) else 1)
