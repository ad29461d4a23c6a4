"""int8 against float32 on a model trained on real data: speed, and what the accuracy pays for it.

    python -m benchmarks.int8            # ~6 min on 2 cores; writes benchmarks/results/int8.{json,md}

A torch_impl model is trained from scratch on scikit-learn's digits (real scanned digits, 1,437
train / 360 held-out validation images, ``benchmarks/digits_folder.py``; needs scikit-learn) by the
fine-tune CLI's own loop, so accuracy means something. It is then quantized by
:func:`parity.onnx.int8.export_int8`, calibrated on training images only, and compared on the
held-out images: accuracy of each, top-1 agreement and relative error of the logits against
float32 eager. Speed: torch eager float32 (the reference every fast path is measured against),
onnxruntime float32 (the same ONNX file before quantization) and onnxruntime int8, interleaved
(``benchmarks.measure.interleaved``), at the trained size and at 224x224 (the same weights: the
networks end in global pooling), batch 1 and 8, median of the calls.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from .measure import cpu_name, interleaved, relative_error, top1_agreement

RESULTS = Path(__file__).with_name("results")
CALIBRATION_IMAGES = 256


def train(data: Path, model: str, size: int, epochs: int, out: Path) -> Path:
    """A model trained from scratch on ``data`` by the fine-tune loop (a fixed, plain recipe:
    AdamW 1e-3, no augmentation, so the figure does not move when the CLI's defaults do)."""
    from torch_impl.finetune import finetune

    result = finetune(
        data=str(data),
        model=model,
        size=size,
        epochs=epochs,
        lr=1e-3,
        weight_decay=1e-4,
        label_smoothing=0.0,
        augment=False,
        out=str(out),
        progress=False,
    )
    return Path(result.best_checkpoint)


def arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A preprocessed ImageFolder as (images float32 NCHW, labels)."""
    images = np.stack([dataset[i][0].numpy() for i in range(len(dataset))])
    return images.astype(np.float32), np.asarray(dataset.targets)


def speed(model, run_fp32, run_int8, size: int, channels: int, batch: int, rounds: int) -> dict:
    import torch

    x = np.random.default_rng(0).standard_normal((batch, channels, size, size)).astype(np.float32)
    xt = torch.from_numpy(x)

    def eager():
        with torch.inference_mode():
            model(xt)

    timings = interleaved(
        {"torch float32": eager, "onnxruntime float32": lambda: run_fp32(x), "onnxruntime int8": lambda: run_int8(x)},
        rounds=rounds,
        target_s=6.0,
    )
    base = timings["torch float32"].median
    return {
        name: {
            "ms": round(t.median * 1e3, 2),
            "images_s": round(batch / t.median, 1),
            "x_eager": round(base / t.median, 2),
        }
        for name, t in timings.items()
    }


def quantized(model, calibration: np.ndarray, folder: Path):
    """The int8 export of ``model`` at the calibration images' size (in ``folder``), and callables running the
    float32 ONNX file and the int8 one in onnxruntime (idle threads not spinning between calls)."""
    from parity.onnx.fourway import onnx_session
    from parity.onnx.int8 import int8_inference

    folder.mkdir(parents=True, exist_ok=True)
    run_int8 = int8_inference(model, calibration, workdir=folder, spinning=False)
    session = onnx_session(run_int8.export.float_path, spinning=False)
    name = session.get_inputs()[0].name
    return run_int8.export, (lambda x: session.run(None, {name: x})[0]), run_int8


def markdown(result: dict) -> str:
    acc = result["accuracy"]
    lines = [
        f"{result['model']} trained on digits ({result['train_images']} train / {result['val_images']} held-out "
        f"images, {result['size']}x{result['size']}, {result['epochs']} epochs); {result['cpu']}, "
        f"{result['threads']} threads; int8 export {result['int8_export_s']} s, {result['int8_mb']} MB "
        f"(float32 {result['float_mb']} MB)",
        "",
        "| held out | float32 eager | int8 (onnxruntime) | top-1 agreement | rel err |",
        "|---|---|---|---|---|",
        f"| accuracy | {acc['float32']:.4f} | {acc['int8']:.4f} | {result['top1_agreement']:.4f} | "
        f"{result['rel_err']:.2e} |",
        "",
        "| input | batch | torch float32 ms | onnxruntime float32 ms (x eager) | onnxruntime int8 ms (x eager) "
        "| int8 / ort float32 |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["speed"]:
        t = row["timings"]
        e, f, q = t["torch float32"], t["onnxruntime float32"], t["onnxruntime int8"]
        lines.append(
            f"| {row['size']}x{row['size']} | {row['batch']} | {e['ms']} | {f['ms']} ({f['x_eager']}x) | "
            f"{q['ms']} ({q['x_eager']}x) | {f['ms'] / q['ms']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--work", type=Path, default=None, help="where the digits and the run go (default: a temp folder)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "int8")
    args = parser.parse_args(argv)

    import torch

    from benchmarks.digits_folder import write_digits
    from torch_impl.finetune import image_folders, load_checkpoint

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        data = write_digits(work / "digits")
        print(f"training {args.model} on digits at {args.size} px, {args.epochs} epochs", flush=True)
        checkpoint = train(data, args.model, args.size, args.epochs, work / "run")
        model, _ = load_checkpoint(checkpoint)
        model.eval()
        train_set, val_set = image_folders(data, model.spec, args.size, augment=False)
        order = np.random.default_rng(0).permutation(len(train_set))[:CALIBRATION_IMAGES]
        calibration = np.stack([train_set[int(i)][0].numpy() for i in order]).astype(np.float32)
        val_x, val_y = arrays(val_set)
        exported, run_fp32, run_int8 = quantized(model, calibration, work / f"int8-{args.size}")
        with torch.inference_mode():
            ref = model(torch.from_numpy(val_x)).numpy()
        q = run_int8(val_x)
        result = {
            "model": args.model,
            "size": args.size,
            "epochs": args.epochs,
            "train_images": len(train_set),
            "val_images": len(val_set),
            "cpu": cpu_name(),
            "threads": torch.get_num_threads(),
            "int8_export_s": exported.seconds,
            "int8_mb": exported.size_mb,
            "float_mb": round(Path(exported.float_path).stat().st_size / 1e6, 2),
            "accuracy": {
                "float32": float(np.mean(ref.argmax(1) == val_y)),
                "int8": float(np.mean(q.argmax(1) == val_y)),
            },
            "top1_agreement": top1_agreement(q, ref),
            "rel_err": relative_error(q, ref),
            "speed": [],
        }
        print(f"accuracy float32 {result['accuracy']['float32']:.4f} int8 {result['accuracy']['int8']:.4f}", flush=True)
        for size in (args.size, 224):
            if size != args.size:  # the same weights, exported and calibrated at this size
                upscaled = torch.nn.functional.interpolate(
                    torch.from_numpy(calibration[:64]), size=(size, size), mode="bilinear"
                )
                _, run_fp32, run_int8 = quantized(model, upscaled.numpy(), work / f"int8-{size}")
            for batch in (1, 8):
                print(f"timing {size}x{size} batch {batch}", flush=True)
                timings = speed(model, run_fp32, run_int8, size, model.spec.input_size[0], batch, args.rounds)
                result["speed"].append({"size": size, "batch": batch, "timings": timings})
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    table = markdown(result)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
