"""The torch process's rows: torch_impl against torchvision, the fast paths, onnxruntime.

Per (model, batch) group, all measured interleaved (``measure.interleaved``):

* same math, ours against torchvision with the same weights: ``eager``, ``channels_last`` and
  ``compile`` (channels_last + torch.compile; only for the models in ``--compile`` and at the
  largest batch, since inductor needs 20-60 s per model and batch size on 2 cores);
* fast paths, against torch_impl float32 eager, with top-1 agreement and relative error on the
  same inputs: ``bf16`` (channels_last + bfloat16 autocast; by default only where the hardware has
  it, ``bf16=True`` adds it emulated elsewhere, its speed then no claim) and onnxruntime on both
  exports (torch's and Keras', the same weights). Each fast-path row says whether it ``agrees``:
  within its precision's bound (``torch_impl.fastpath.tolerance``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import measure


def _torchvision_twin(name: str, state_dict: dict):
    """torchvision's model with our weights; None for the models it does not have (lenet5...)."""
    import torchvision

    if not hasattr(torchvision.models, name):
        return None
    options = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    model = getattr(torchvision.models, name)(weights=None, **options).eval()
    model.load_state_dict(state_dict)
    return model


def _exports(torch_model, keras_model, workdir: Path, frameworks: Sequence[str]) -> dict[str, Path]:
    """ONNX files of the pair (the Keras one gets the torch model's weights first)."""
    from parity.onnx.export import export_keras, export_torch
    from parity.weights.copying import transfer_weights

    paths = {}
    for framework in frameworks:
        paths[framework] = workdir / f"{framework}.onnx"
        if framework == "torch":
            export_torch(torch_model, paths[framework], size=keras_model.input_shape[1:3])
        else:
            transfer_weights(torch_model, keras_model)
            export_keras(keras_model, paths[framework])
    return paths


def group_rows(
    name: str,
    batches: Sequence[int],
    size: int,
    rounds: int,
    target_s: float,
    *,
    compile: bool,
    onnx: Sequence[str],
    device: str = "cpu",
    seed: int = 0,
    bf16: bool | None = None,
    int8: bool = False,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Every torch-process row of one model, each batch size a group of its own. ``bf16``: None
    adds the bfloat16 row where the hardware has it, True everywhere (emulated: ``native`` False).
    ``int8``: the "onnxruntime int8" row (:mod:`parity.onnx.int8`, on the CPU; calibrated on inputs
    drawn like the timed ones, so its agreement says what random weights allow: accuracy on real
    data is ``benchmarks/int8.py``'s)."""
    import torch

    with torch.no_grad():  # scoped: the caller's grad mode is left as it was
        return _group_rows(
            name,
            batches,
            size,
            rounds,
            target_s,
            compile=compile,
            onnx=onnx,
            device=device,
            seed=seed,
            bf16=bf16,
            int8=int8,
            log=log,
        )


def _group_rows(name, batches, size, rounds, target_s, *, compile, onnx, device, seed, bf16, int8, log) -> list[dict]:
    import torch

    import cnnspec
    from parity.onnx.fourway import onnx_session
    from parity.twins import build_pair
    from parity.weights.randomise import randomise_torch
    from torch_impl.fastpath import bf16_supported, fast_inference, tolerance

    ours, keras_twin = build_pair(name, (size, size))
    randomise_torch(ours, seed)  # random BatchNorm statistics too: no layer is an identity
    macs = cnnspec.analyse(ours.spec, (size, size), include_aux=False).total_macs
    theirs = _torchvision_twin(name, ours.state_dict())
    cuda = torch.device(device).type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        sessions = {f: onnx_session(p, spinning=False) for f, p in _exports(ours, keras_twin, Path(tmp), onnx).items()}
        del keras_twin
        int8_run = None
        if int8 and not cuda:
            from parity.onnx.int8 import int8_inference

            calibration = np.random.default_rng(seed).standard_normal((16, 3, size, size), dtype=np.float32)
            int8_run = int8_inference(ours, calibration, workdir=Path(tmp), spinning=False)
        # Each variant gets its own copy of the modules (channels_last and compile change them).
        paths = {}
        for variant, options in (
            ("eager", {"channels_last": False}),
            ("channels_last", {}),
            ("compile", {"compile": True}),
        ):
            if variant == "compile" and not compile:
                continue
            paths[("torch_impl", variant)] = fast_inference(_copy(ours), device=device, **options)
            if theirs is not None:
                paths[("torchvision", variant)] = fast_inference(_copy(theirs), device=device, **options)
        if cuda:
            paths[("torch_impl", "tf32")] = _tf32(fast_inference(_copy(ours), device=device))
        native_bf16 = bf16_supported(device)
        if native_bf16 if bf16 is None else bf16:
            paths[("torch_impl", "bf16")] = fast_inference(_copy(ours), bf16=True, device=device)
        for batch in batches:
            x = np.random.default_rng(seed + batch).standard_normal((batch, 3, size, size), dtype=np.float32)
            xt = torch.from_numpy(x).to(device)
            contenders = {
                f"{impl} {variant}": (lambda run=run, xt=xt: run(xt))
                for (impl, variant), run in paths.items()
                if variant != "compile" or batch == max(batches)
            }  # compiling each batch size: too slow
            feeds = {"torch": x, "keras": np.ascontiguousarray(x.transpose(0, 2, 3, 1))}
            if int8_run is not None:
                contenders["onnxruntime int8"] = lambda run=int8_run, x=x: run(x)
            for framework, session in sessions.items():
                input_name = session.get_inputs()[0].name
                contenders[f"onnxruntime {framework}-export"] = lambda s=session, i=input_name, f=feeds[framework]: (
                    s.run(None, {i: f})[0]
                )
            timings = measure.interleaved(contenders, rounds, target_s, sync)
            expected = paths[("torch_impl", "eager")](xt).cpu().numpy()
            group = []
            for label, timing in timings.items():
                impl, variant = label.split(" ", 1)
                row = {
                    "model": name,
                    "batch": batch,
                    "size": size,
                    "process": "torch",
                    "device": device,
                    "impl": impl,
                    "variant": variant,
                    **measure.summarise(timing, batch, macs),
                }
                if label != "torch_impl eager" and impl != "torchvision":  # a fast path: parity with float32 eager
                    out = contenders[label]()
                    out = out.cpu().numpy() if hasattr(out, "cpu") else np.asarray(out)
                    row.update(
                        top1=measure.top1_agreement(out, expected), rel_err=measure.relative_error(out, expected)
                    )
                    bound = tolerance(variant)  # bf16, tf32 and int8 have their own; the rest is float32
                    row.update(tolerance=bound.rel_err, agrees=bound.accepts(row["rel_err"], row["top1"]))
                    if variant == "bf16":
                        row["native"] = native_bf16
                group.append(row)
            _ratios(group)
            rows += group
            log(_line(group))
    return rows


def _ratios(rows: list[dict]) -> None:
    """``ratio``: ours/reference throughput, torch_impl against torchvision's same variant (same
    math). ``speedup``: a fast path's throughput over torch_impl float32 eager."""
    by_label = {f"{r['impl']} {r['variant']}": r for r in rows}
    eager = by_label["torch_impl eager"]["images_s"]
    for r in rows:
        twin = by_label.get(f"torchvision {r['variant']}")
        if r["impl"] == "torch_impl" and twin:
            measure.compare_rows(r, twin, f"torchvision {r['variant']}")
            r["same_math"] = True
        if "top1" in r:
            r["speedup"] = r["images_s"] / eager


def _line(rows: list[dict]) -> str:
    head = f"{rows[0]['model']} batch {rows[0]['batch']}:"
    parts = [
        f"{r['impl']} {r['variant']}{' (emulated)' if r.get('native') is False else ''} {r['images_s']:.1f}/s"
        + (f" (ratio {r['ratio']:.2f})" if "ratio" in r else "")
        + (f" (x{r['speedup']:.2f} eager, top-1 {r['top1']:.0%})" if "speedup" in r else "")
        for r in rows
    ]
    return head + " " + ", ".join(parts)


def _copy(model):
    import copy

    return copy.deepcopy(model)


def _tf32(run):
    """``run`` with TF32 matrix products (CUDA's fast float32; parity figures say what it costs)."""
    import torch

    def tf32_run(x):
        previous = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
        try:
            return run(x)
        finally:
            torch.set_float32_matmul_precision(previous[0])
            torch.backends.cudnn.allow_tf32 = previous[1]

    return tf32_run


def torch_sgemm() -> float:
    import torch

    def matmul(a, b):
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)  # converted once, outside the timed call
        return lambda: ta @ tb

    return measure.sgemm_gflops(matmul=matmul)
