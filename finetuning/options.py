"""The fine-tuning command's options, shared by ``python -m torch_impl finetune`` and its Keras twin.

One dataclass holds every option with its default and its checks; the argparse flags are derived
from it here, so the torch and Keras commands take the same flags and cannot drift apart.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

MODES = ("feature-extract", "fine-tune")
DEVICES = ("auto", "cpu", "cuda", "mps")
# A new head alone learns fast and is cheap to step; a whole pretrained network is moved gently.
DEFAULT_LR = {"feature-extract": 1e-2, "fine-tune": 1e-3}
DEFAULT_SIZE = 64
# The dataset used when no --data is given: the "target" half of the shapes (a backbone pretrained
# on the "pretrain" half transfers to it), generated once into a cache folder.
TOY_DATA: Dict[str, Any] = {"part": "target", "train_per_class": 20, "val_per_class": 10, "size": 64, "seed": 0}


@dataclass
class FinetuneOptions:
    """Everything a fine-tuning run needs; ``None`` means "derive it" (see each field's comment)."""

    data: Optional[str] = None  # ImageFolder root with train/ and val/; None: the embedded toydata
    model: str = "resnet18"
    mode: str = "feature-extract"  # or "fine-tune"
    epochs: int = 5  # total: a resumed run continues up to this many
    weights: Optional[str] = None  # published weights name or checkpoint whose backbone is used; its classifier is discarded
    size: Optional[int] = None  # None: 64, or the model's only size when its input is fixed
    batch_size: int = 32
    lr: Optional[float] = None  # None: DEFAULT_LR[mode]
    backbone_lr_factor: float = 0.1  # fine-tune: pretrained layers learn at lr * this
    last_n_blocks: Optional[int] = None  # fine-tune: train only the last N backbone stages + head
    hidden: Optional[int] = None  # head Linear-BatchNorm-ReLU-Linear with this width
    augment: bool = False  # RandomResizedCrop(scale=(0.7, 1)) + horizontal flip on train/
    cache: bool = True  # feature-extract: compute backbone features once (only without augment)
    device: str = "auto"  # auto: cuda, then mps, then cpu
    amp: bool = False  # mixed precision (float16 autocast) on CUDA
    out: Optional[str] = None  # None: runs/<model>-<mode>, or the resumed checkpoint's folder
    resume: Optional[str] = None  # a checkpoint .json / weights file, or a run folder (its last.json)
    seed: int = 0
    workers: int = 0  # torch: DataLoader worker processes; keras: PyDataset decoding threads
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, received mode={self.mode!r}")
        for name in ("epochs", "batch_size"):
            _positive_int(name, getattr(self, name))
        for name in ("hidden", "size"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, received lr={self.lr!r}")
        if not self.backbone_lr_factor >= 0:
            raise ValueError(f"backbone_lr_factor must be >= 0, received {self.backbone_lr_factor!r}")
        if self.last_n_blocks is not None:
            if isinstance(self.last_n_blocks, bool) or not isinstance(self.last_n_blocks, int) or self.last_n_blocks < 0:
                raise ValueError(f"last_n_blocks must be an int >= 0, received last_n_blocks={self.last_n_blocks!r}")
            if self.mode != "fine-tune":
                raise ValueError("last_n_blocks (--last-n-blocks) applies to mode 'fine-tune'; feature-extract trains the classifier only")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be one of {DEVICES} or cuda:N, received device={self.device!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, received workers={self.workers}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]

    @property
    def use_cache(self) -> bool:
        """Features can be computed once only when the backbone is frozen and inputs never change."""
        return self.mode == "feature-extract" and self.cache and not self.augment

    def data_root(self) -> Path:
        """``data``, or the embedded toydata generated into its cache folder (never downloaded)."""
        if self.data is not None:
            return Path(self.data)
        from toydata import ensure

        return ensure(**TOY_DATA)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, received {name}={value!r}")


def add_finetune_arguments(parser: argparse.ArgumentParser, models: Sequence[str] = ()) -> argparse.ArgumentParser:
    """Adds the fine-tuning flags (defaults from :class:`FinetuneOptions`) to ``parser``."""
    d = FinetuneOptions()
    parser.add_argument("--data", metavar="DIR", help="image folder with train/<class>/ and val/<class>/; default: generate the embedded toydata shapes into a cache folder")
    parser.add_argument("--model", default=d.model, choices=list(models) or None, metavar="NAME", help=f"architecture (default {d.model})" + (f": {', '.join(models)}" if models else ""))
    parser.add_argument("--mode", default=d.mode, choices=MODES, help=f"train the new classifier on a frozen backbone, or the network too (default {d.mode})")
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"total epochs; a resumed run continues up to this (default {d.epochs})")
    parser.add_argument("--weights", metavar="FILE|NAME", help="backbone to start from: published weights (IMAGENET1K_V1, DEFAULT or imagenet; fetched once, see python -m parity fetch) or a checkpoint (torch: .pth/.safetensors; keras: .weights.h5, see python -m parity convert); its classifier is replaced. Default: random init (training from scratch)")
    parser.add_argument("--size", type=int, help=f"input side in pixels (default {DEFAULT_SIZE}, or the model's fixed size)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    parser.add_argument("--lr", type=float, help="learning rate of the new classifier (default " + ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LR.items()) + ")")
    parser.add_argument("--backbone-lr-factor", type=float, default=d.backbone_lr_factor, help=f"fine-tune: pretrained layers learn at lr * this (default {d.backbone_lr_factor}; use 1 from scratch)")
    parser.add_argument("--last-n-blocks", type=int, metavar="N", help="fine-tune: train only the last N backbone stages and the head (default: all)")
    parser.add_argument("--hidden", type=int, metavar="N", help="head Linear-BatchNorm-ReLU-Linear with N hidden units (default: one Linear)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=d.augment, help="random resized crop (scale 0.7-1) and horizontal flip on train/ (default off)")
    parser.add_argument("--no-cache", dest="cache", action="store_false", help="feature-extract: run the frozen backbone every epoch instead of caching its features once")
    parser.add_argument("--device", default=d.device, metavar="auto|cpu|cuda|mps", help=f"(default {d.device}: cuda, then mps, then cpu)")
    parser.add_argument("--amp", action="store_true", help="mixed precision on a GPU (torch: float16 autocast; keras: mixed_float16)")
    parser.add_argument("--out", metavar="DIR", help="run folder for checkpoints, history.json, curves.png (default runs/<model>-<mode>)")
    parser.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (.json, its weights file, or a run folder)")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    parser.add_argument("--workers", type=int, default=d.workers, help=f"torch: DataLoader worker processes (default {d.workers}); keras: PyDataset decoding threads")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars or per-epoch lines")
    return parser


def options_from_args(args: argparse.Namespace) -> FinetuneOptions:
    """The options parsed by :func:`add_finetune_arguments` (a ValueError names the bad flag's value)."""
    names = {f.name for f in fields(FinetuneOptions)}
    return FinetuneOptions(**{k: v for k, v in vars(args).items() if k in names})
