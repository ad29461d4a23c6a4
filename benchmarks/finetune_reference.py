"""The plain torchvision training loop a knowledgeable user would write, as a yardstick for
``python -m torch_impl finetune`` (see finetune_compare.py). It uses nothing from this project.

    python benchmarks/digits_folder.py /tmp/digits
    python benchmarks/finetune_reference.py --data /tmp/digits --epochs 2 --size 32 --no-flip --json /tmp/ref.json

ImageFolder (converted to RGB); train: RandomResizedCrop(size, scale=(0.25, 1)) + horizontal flip
(``--no-flip`` for data that is not mirror-symmetric, like digits) + ImageNet normalisation; val:
Resize + CenterCrop; ``torchvision.models.<model>(weights=None, num_classes=K)`` trained from
scratch with AdamW and OneCycleLR stepped per batch, cross-entropy with label smoothing. Prints one
line per epoch and writes a JSON (atomically) with per-epoch val accuracy, train loss and seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms as T
from tqdm import tqdm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_rgb(image: Image.Image) -> Image.Image:
    """Grayscale (or palette, RGBA) files -> 3 channels, as ImageNet models expect; a module-level
    function rather than a lambda so DataLoader workers can pickle it under spawn."""
    return image.convert("RGB")


def make_transforms(size: int, flip: bool) -> tuple[T.Compose, T.Compose]:
    """Train and val transforms: the usual ImageNet-style recipe, scaled to ``size``."""
    to_rgb_t = T.Lambda(to_rgb)
    normalize = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    train = (
        [to_rgb_t, T.RandomResizedCrop(size, scale=(0.25, 1.0))]
        + ([T.RandomHorizontalFlip()] if flip else [])
        + normalize
    )
    val = [to_rgb_t, T.Resize(size), T.CenterCrop(size)] + normalize
    return T.Compose(train), T.Compose(val)


def make_loaders(
    data: Path, size: int, flip: bool, batch_size: int, seed: int, workers: int
) -> tuple[DataLoader, DataLoader, list[str]]:
    """ImageFolder loaders for data/train (shuffled with a seeded generator) and data/val."""
    train_tf, val_tf = make_transforms(size, flip)
    train_set = torchvision.datasets.ImageFolder(str(data / "train"), transform=train_tf)
    val_set = torchvision.datasets.ImageFolder(str(data / "val"), transform=val_tf)
    if train_set.classes != val_set.classes:
        raise ValueError(f"train/ and val/ classes differ: {train_set.classes} vs {val_set.classes}")
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator, num_workers=workers)
    val = DataLoader(val_set, batch_size=batch_size, shuffle=False, num_workers=workers)
    return train, val, train_set.classes


def pick_device(device: str) -> torch.device:
    """``auto``: CUDA when present, else CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def _logits(out: Any) -> torch.Tensor:
    """GoogLeNet/Inception return a namedtuple with aux outputs in train mode; the rest a tensor."""
    return out.logits if hasattr(out, "logits") else out


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
    desc: str,
    progress: bool,
) -> float:
    """One pass over the training set; returns the mean loss per image."""
    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, dynamic_ncols=True)
    for x, y in bar:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = loss_fn(_logits(model(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(y)
        count += len(y)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> float:
    """Top-1 accuracy on ``loader``."""
    model.eval()
    correct, count = 0, 0
    for x, y in loader:
        pred = model(x.to(device)).argmax(1).cpu()
        correct += int((pred == y).sum())
        count += len(y)
    return correct / max(count, 1)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """A temp file beside ``path``, renamed over it only when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def run_reference(
    data: str | os.PathLike,
    epochs: int,
    size: int = 64,
    model: str = "resnet18",
    lr: float = 3e-3,
    weight_decay: float = 0.05,
    label_smoothing: float = 0.1,
    batch_size: int = 64,
    seed: int = 0,
    flip: bool = True,
    threads: int | None = None,
    workers: int = 0,
    device: str = "auto",
    progress: bool = True,
    json_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Trains ``model`` from scratch on ``data`` and returns (and optionally writes) its history:
    ``val_acc``, ``train_loss``, ``epoch_seconds`` (train + val), ``total_seconds`` (data, model
    and all epochs), ``best_val_acc`` and ``settings``."""
    start = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    dev = pick_device(device)
    train, val, classes = make_loaders(Path(data), size, flip, batch_size, seed, workers)
    net = torchvision.models.get_model(model, weights=None, num_classes=len(classes)).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs, steps_per_epoch=len(train))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    settings = {
        "data": str(data),
        "model": model,
        "epochs": epochs,
        "size": size,
        "lr": lr,
        "weight_decay": weight_decay,
        "label_smoothing": label_smoothing,
        "batch_size": batch_size,
        "seed": seed,
        "flip": flip,
        "threads": torch.get_num_threads(),
        "workers": workers,
        "device": str(dev),
        "classes": len(classes),
        "train_images": len(train.dataset),
        "val_images": len(val.dataset),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
    result: dict[str, Any] = {"val_acc": [], "train_loss": [], "epoch_seconds": []}
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        loss = train_epoch(net, train, loss_fn, opt, sched, dev, f"epoch {epoch}/{epochs}", progress)
        acc = evaluate(net, val, dev)
        seconds = time.perf_counter() - t
        for key, value in (("val_acc", acc), ("train_loss", loss), ("epoch_seconds", seconds)):
            result[key].append(value)
        print(f"epoch {epoch}/{epochs}: train loss {loss:.4f}  val acc {acc:.4f}  {seconds:.1f}s", flush=True)
    result.update(
        total_seconds=time.perf_counter() - start, best_val_acc=max(result["val_acc"], default=0.0), settings=settings
    )
    if json_path is not None:
        write_json_atomic(json_path, result)
    return result


def build_parser() -> argparse.ArgumentParser:
    """The CLI flags (also parsed by finetune_compare.py for its ``--reference-args``)."""
    p = argparse.ArgumentParser(description="Plain torchvision fine-tuning loop (from scratch) on an image folder.")
    p.add_argument("--data", required=True, metavar="DIR", help="image folder with train/<class>/ and val/<class>/")
    p.add_argument("--model", default="resnet18", help="any torchvision classification model name (default resnet18)")
    p.add_argument("--epochs", type=int, default=10, help="(default 10)")
    p.add_argument("--size", type=int, default=64, help="input side in pixels (default 64)")
    p.add_argument("--batch-size", type=int, default=64, help="(default 64)")
    p.add_argument("--lr", type=float, default=3e-3, help="OneCycleLR max learning rate (default 3e-3)")
    p.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay (default 0.05)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="(default 0.1)")
    p.add_argument(
        "--no-flip",
        dest="flip",
        action="store_false",
        help="no random horizontal flip (digits are not mirror-symmetric)",
    )
    p.add_argument("--seed", type=int, default=0, help="(default 0)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu, cuda, cuda:N")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar")
    p.add_argument("--json", metavar="FILE", help="write the history here (atomically)")
    return p


def kwargs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`run_reference` keyword arguments of parsed flags."""
    kw = vars(args).copy()
    kw["json_path"] = kw.pop("json")
    return kw


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = run_reference(**kwargs_from_args(args))
    print(
        f"best val acc {result['best_val_acc']:.4f}; {result['total_seconds']:.1f}s in all"
        + (f"; wrote {args.json}" if args.json else "")
    )
    return 0


if __name__ == "__main__":
    from cnnbase import cli

    sys.exit(
        cli.run("benchmarks/finetune_reference.py", lambda argv: main(argv))
    )  # one-line errors, --debug (cnnbase.cli)
