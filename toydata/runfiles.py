"""Framework-free pieces of a fine-tuning run shared by torch_impl and keras_impl: atomic files,
the curves plot, the input size rule, resume checks. Here because keras_impl may not import torch
and torch_impl should not import keras, and both must write the same run folder.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

import cnnspec

from .cli import DEFAULT_SIZE


@dataclasses.dataclass
class FinetuneResult:
    """What a run produced: per-epoch history, the best validation accuracy, timings and files."""

    history: List[Dict[str, float]]
    best_val_acc: float
    best_epoch: int
    epoch_times: List[float]  # seconds per epoch (train + val) run by this call
    cache_seconds: Optional[float]  # one-off time to compute the feature cache, None without it
    classes: List[str]
    device: str
    out_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    history_path: Path
    plot_path: Path

    def to_dict(self) -> Dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}

def readable(path: Union[str, os.PathLike]) -> None:
    """mkstemp files are private (0600); results are meant to be shared like any other file."""
    os.chmod(path, 0o644)


def atomic_write(path: Path, write: Callable[[str], None], suffix: str = ".tmp") -> Path:
    """Writes through a temp file in the same folder and a rename: never a half-written file.
    ``suffix`` keeps a file kind that Keras checks by name (``.weights.h5``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, obj: Any) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=1)))


def plot_history(history: List[Mapping[str, float]], path: Union[str, os.PathLike], title: str = "") -> Path:
    """Loss and accuracy curves (train and val) as a PNG, drawn with the Agg canvas: no GUI
    backend is touched, whatever matplotlib backend the caller has selected."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(fig)
    epochs = [h["epoch"] for h in history]
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "acc")):
        for split in ("train", "val"):
            ax.plot(epochs, [h[f"{split}_{metric}"] for h in history], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if metric == "acc" else "cross-entropy loss")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def should_drop_last(n: int, batch_size: int) -> bool:
    """A last training batch of one sample is dropped: BatchNorm cannot train on it."""
    return n % batch_size == 1 and n > 1


def resolve_size(spec: cnnspec.ModelSpec, size: Optional[int]) -> int:
    """The input side: ``size``, else 64, else the model's only size when its head is not adaptive."""
    fixed = spec.input_size[1:]
    if size is None:
        size = fixed[0] if spec.fixed_input else DEFAULT_SIZE
    if spec.fixed_input and (size, size) != tuple(fixed):
        raise ValueError(f"{spec.name} takes only {fixed[0]}x{fixed[1]} inputs (its head has no adaptive pool), received size={size}")
    try:
        cnnspec.analyse(spec, (size, size), include_aux=False)
    except cnnspec.ShapeError as err:
        raise ValueError(f"size={size} does not fit {spec.name}: {err}") from None
    return size


def check_resume(info: Dict[str, Any], ours: Dict[str, Any], classes: List[str]) -> None:
    """A checkpoint only continues the run that wrote it: same architecture, head, mode and classes."""
    diff = {k: (info.get(k), v) for k, v in ours.items() if info.get(k) != v}
    if diff:
        flags = lambda i: " ".join(f"--{k.replace('_', '-')} {pair[i]}" for k, pair in diff.items())  # noqa: E731
        raise ValueError(f"cannot resume {info['_dir']}: it was trained with {flags(0)}; received {flags(1)}. Pass the same options to resume.")
    if info.get("classes") != classes:
        raise ValueError(f"cannot resume {info['_dir']}: it was trained on classes {info.get('classes')}, the data folder has {classes}")
