"""The fine-tuning command's options, shared by ``python -m torch_impl finetune`` and its Keras twin.

One dataclass holds every option with its default and its checks; the argparse flags are derived
from it here, so the torch and Keras commands take the same flags and cannot drift apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

MODES = ("feature-extract", "fine-tune")
DEVICES = ("auto", "cpu", "cuda", "mps")
SCHEDULES = ("cosine", "constant")
# A new head alone learns fast and is cheap to step; a whole pretrained network is moved gently;
# a network trained from scratch takes the larger steps of the usual AdamW recipes.
DEFAULT_LR = {"feature-extract": 1e-2, "fine-tune": 1e-3, "scratch": 3e-3}
DEFAULT_SIZE = 64  # the embedded cnntoydata's side
FLIPS = ("none", "horizontal", "vertical", "both")
# The area fraction a training crop keeps at least (RandomResizedCrop, both frameworks) where the
# images are enlarged 2x or more to the input size (cnntune.policy.choose_crop: digits' 8 px to 32):
# it cuts at most a fifth of a side (a small shift and zoom), which LeNet-5 on digits needs to pass 98%. At
# the images' own scale no crop: it cuts and zooms what tells the classes apart (the 25% kept
# before cut digits apart; 80% still cost textures and faces 10 to 20 points).
DEFAULT_CROP_SCALE = 0.8
AUGMENT_SCALE = (DEFAULT_CROP_SCALE, 1.0)  # the default crop's area range (RandomResizedCrop's scale)
AUGMENT_RATIO = (3.0 / 4.0, 4.0 / 3.0)
DECODED_CACHE_BYTES = 2 * 1024**3  # decoded training images kept in memory up to this (each split)
WARMUP_START = 0.01  # the warm-up starts at lr * this and reaches lr after warmup_epochs
# The dataset used when no --data is given: the "target" half of the shapes (a backbone pretrained
# on the "pretrain" half transfers to it), generated once into a cache folder.
TOY_DATA: dict[str, Any] = {"part": "target", "train_per_class": 20, "val_per_class": 10, "size": 64, "seed": 0}


@dataclass
class FinetuneOptions:
    """Everything a fine-tuning run needs; ``None`` means "derive it" (see each field's comment and
    :meth:`resolved`): the defaults depend on whether the run starts from weights."""

    data: str | None = None  # ImageFolder root with train/ and val/; None: the embedded cnntoydata
    model: str = "resnet18"
    mode: str | None = None  # None: "feature-extract" with --weights, "fine-tune" (the whole network) without
    epochs: int = (
        5  # total: a resumed run continues up to this many (the schedule spans them: resume with the same number)
    )
    stop_after: int | None = None  # end this call after this many epochs (a job with a time limit); --resume continues
    weights: str | None = (
        None  # published weights name or checkpoint whose backbone is used; its classifier is discarded
    )
    size: int | None = None  # None: chosen from the images (cnntune.policy.choose_size), or the model's only size
    batch_size: int = 32  # per process (torchrun) or per device (--distribute)
    lr: float | None = None  # None: DEFAULT_LR by mode (and "scratch" without weights)
    backbone_lr_factor: float | None = None  # pretrained layers learn at lr * this; None: 0.1 with weights, 1 without
    last_n_blocks: int | None = None  # fine-tune: train only the last N backbone stages + head
    hidden: int | None = None  # head Linear-BatchNorm-ReLU-Linear with this width
    augment: bool | None = (
        None  # random crop (crop_scale) and flips (flip) on train/; None: on when layers below the head train
    )
    crop_scale: float | None = None  # augment: a crop keeps this area fraction or more; 1: no crop; None: from the data
    flip: str | None = None  # augment: one of FLIPS; None: from the data (cnntune.policy.choose_flip)
    cache: bool = True  # feature-extract: compute backbone features once (only without augment)
    schedule: str = "cosine"  # learning rate: linear warm-up then cosine decay to 0, per step; or "constant"
    warmup_epochs: float = 1.0  # cosine: epochs of linear warm-up (at most half the run)
    weight_decay: float = 0.05  # AdamW's decoupled weight decay
    label_smoothing: float = 0.0  # of the training loss (the validation loss is plain cross-entropy)
    device: str = "auto"  # auto: cuda, then mps, then cpu
    amp: bool = False  # mixed precision (float16 autocast) on CUDA
    sync_bn: bool = False  # torchrun: BatchNorm statistics over all processes (SyncBatchNorm), fine-tune mode
    distribute: bool = False  # keras: DataParallel over every visible device (jax backend); torch uses torchrun instead
    out: str | None = None  # None: runs/<model>-<mode>, or the resumed checkpoint's folder
    resume: str | None = None  # a checkpoint .json / weights file, or a run folder (its last.json)
    seed: int = 0
    workers: int = 0  # torch: DataLoader worker processes; keras: PyDataset decoding threads
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, received mode={self.mode!r}")
        if self.flip is not None and self.flip not in FLIPS:
            raise ValueError(f"flip must be one of {FLIPS}, received flip={self.flip!r}")
        if self.crop_scale is not None and not 0 < self.crop_scale <= 1:
            raise ValueError(f"crop_scale must be > 0 and <= 1, received crop_scale={self.crop_scale!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, received schedule={self.schedule!r}")
        for name in ("epochs", "batch_size"):
            positive_int(name, getattr(self, name))
        for name in ("hidden", "size", "stop_after"):
            if getattr(self, name) is not None:
                positive_int(name, getattr(self, name))
        if self.lr is not None and not 0 < self.lr < float("inf"):
            raise ValueError(f"lr must be a finite number > 0, received lr={self.lr!r}")
        if self.backbone_lr_factor is not None and not 0 <= self.backbone_lr_factor < float("inf"):
            raise ValueError(f"backbone_lr_factor must be a finite number >= 0, received {self.backbone_lr_factor!r}")
        for name, upper in (("weight_decay", None), ("label_smoothing", 1.0), ("warmup_epochs", None)):
            value = getattr(self, name)
            if not 0 <= value < (upper if upper is not None else float("inf")):
                raise ValueError(f"{name} must be >= 0{f' and < {upper}' if upper else ''}, received {name}={value!r}")
        if self.last_n_blocks is not None:
            if (
                isinstance(self.last_n_blocks, bool)
                or not isinstance(self.last_n_blocks, int)
                or self.last_n_blocks < 0
            ):
                raise ValueError(f"last_n_blocks must be an int >= 0, received last_n_blocks={self.last_n_blocks!r}")
            if self.mode == "feature-extract":
                raise ValueError(
                    "last_n_blocks (--last-n-blocks) applies to mode 'fine-tune'; feature-extract trains the "
                    "classifier only"
                )
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be one of {DEVICES} or cuda:N, received device={self.device!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, received workers={self.workers}")

    def resolved(self, recorded: dict[str, Any] | None = None) -> FinetuneOptions:
        """These options with every "derive it" default made concrete (``size`` excepted: it needs
        the images). ``recorded`` (a resumed checkpoint's options) fills what was left unset, so a
        resumed run keeps the choices of the run it continues."""
        values = {}
        for name in ("mode", "backbone_lr_factor", "augment", "lr", "flip", "crop_scale"):
            if getattr(self, name) is None and recorded and recorded.get(name) is not None:
                values[name] = recorded[name]
        opts = replace(self, **values)
        pretrained = opts.weights is not None or bool(recorded and recorded.get("weights"))
        mode = opts.mode or ("feature-extract" if pretrained and opts.last_n_blocks is None else "fine-tune")
        return replace(
            opts,
            mode=mode,
            backbone_lr_factor=opts.backbone_lr_factor
            if opts.backbone_lr_factor is not None
            else (0.1 if pretrained else 1.0),
            augment=opts.augment if opts.augment is not None else mode == "fine-tune",
            lr=opts.lr
            if opts.lr is not None
            else DEFAULT_LR[mode if pretrained or mode == "feature-extract" else "scratch"],
        )

    @property
    def learning_rate(self) -> float:
        if self.lr is None or self.mode is None:
            raise ValueError("learning_rate is known once the options are resolved (FinetuneOptions.resolved)")
        return self.lr

    @property
    def use_cache(self) -> bool:
        """Features can be computed once only when the backbone is frozen and inputs never change."""
        return self.mode == "feature-extract" and self.cache and not self.augment

    def data_root(self) -> Path:
        """``data``, or the embedded cnntoydata generated into its cache folder (never downloaded)."""
        if self.data is not None:
            return Path(self.data)
        from cnntoydata import ensure

        return ensure(**TOY_DATA)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def positive_int(name: str, value: Any) -> int:
    """``value``, checked to be an int >= 1 (a bool is not): the one wording of this error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, received {name}={value!r}")
    return value


def _model_type(models: Sequence[str]):
    """argparse ``type=`` for --model: a misspelt name gets the closest one suggested."""
    from cnnbase.cli import unknown_name_message

    def model(text: str) -> str:
        if models and text not in models:
            raise argparse.ArgumentTypeError(unknown_name_message("model", text, list(models)))
        return text

    return model


def add_finetune_arguments(parser: argparse.ArgumentParser, models: Sequence[str] = ()) -> argparse.ArgumentParser:
    """Adds the fine-tuning flags (defaults from :class:`FinetuneOptions`) to ``parser``."""
    d = FinetuneOptions()
    parser.add_argument(
        "--data",
        metavar="DIR",
        help=(
            "image folder with train/<class>/ and val/<class>/; default: generate the embedded cnntoydata shapes "
            "into a cache folder"
        ),
    )
    parser.add_argument(
        "--model",
        default=d.model,
        type=_model_type(models),
        metavar="NAME",
        help=f"architecture (default {d.model})" + (f": {', '.join(models)}" if models else ""),
    )
    parser.add_argument(
        "--mode",
        default=d.mode,
        choices=MODES,
        help=(
            "train the new classifier on a frozen backbone, or the network too (default: feature-extract with "
            "--weights, fine-tune without)"
        ),
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=d.epochs,
        help=f"total epochs; a resumed run continues up to this (default {d.epochs})",
    )
    parser.add_argument(
        "--stop-after",
        type=int,
        metavar="N",
        help=(
            "end this call after N epochs (the schedule still spans --epochs; --resume continues), for jobs with "
            "a time limit"
        ),
    )
    parser.add_argument(
        "--weights",
        metavar="FILE|NAME",
        help=(
            "backbone to start from: published weights (IMAGENET1K_V1, DEFAULT or imagenet; fetched once, see "
            "python -m parity fetch) or a checkpoint (torch: .pth/.safetensors; keras: .weights.h5, see python -m "
            "parity convert); its classifier is replaced. Default: random init (training from scratch)"
        ),
    )
    parser.add_argument(
        "--size",
        type=int,
        help=(
            "input side in pixels (default: from the images' median short side, 32-128 px from scratch, up to the "
            "weights' crop size with --weights; or the model's fixed size)"
        ),
    )
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    parser.add_argument(
        "--lr",
        type=float,
        help="peak learning rate of the new classifier (default "
        + ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LR.items())
        + ")",
    )
    parser.add_argument(
        "--backbone-lr-factor",
        type=float,
        default=d.backbone_lr_factor,
        help="fine-tune: pretrained layers learn at lr * this (default 0.1 with --weights, 1 without)",
    )
    parser.add_argument(
        "--last-n-blocks",
        type=int,
        metavar="N",
        help="fine-tune: train only the last N backbone stages and the head (default: all)",
    )
    parser.add_argument(
        "--hidden",
        type=int,
        metavar="N",
        help="head Linear-BatchNorm-ReLU-Linear with N hidden units (default: one Linear)",
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=d.augment,
        help=("random crop (--crop-scale) and flips (--flip) on train/ (default: on when layers below the head train)"),
    )
    parser.add_argument(
        "--crop-scale",
        type=float,
        default=d.crop_scale,
        metavar="F",
        help=(
            "augment: a random crop keeps this area fraction or more, then is resized; 1: no crop (default: from "
            f"the data: {DEFAULT_CROP_SCALE:g} when the images are enlarged 2x or more to the input size, else 1)"
        ),
    )
    parser.add_argument(
        "--flip",
        choices=FLIPS,
        help=(
            "augment: random flips (default: from the data: an axis is flipped when flipping the training images "
            "keeps them closest to their own class's mean image)"
        ),
    )
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=d.schedule,
        help=f"learning rate per step: linear warm-up then cosine decay to 0, or constant (default {d.schedule})",
    )
    parser.add_argument(
        "--warmup-epochs",
        type=float,
        default=d.warmup_epochs,
        help=f"cosine: epochs of warm-up, at most half the run (default {d.warmup_epochs:g})",
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        default=d.weight_decay,
        help=f"AdamW's decoupled weight decay (default {d.weight_decay:g})",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=d.label_smoothing,
        help=f"of the training loss (default {d.label_smoothing:g})",
    )
    parser.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="feature-extract: run the frozen backbone every epoch instead of caching its features once",
    )
    parser.add_argument(
        "--device",
        default=d.device,
        metavar="auto|cpu|cuda|mps",
        help=f"(default {d.device}: cuda, then mps, then cpu)",
    )
    parser.add_argument(
        "--distribute",
        action="store_true",
        help=(
            "keras: keras.distribution.DataParallel over every visible device and host (jax backend); the batch "
            "size is per device. torch: run under torchrun instead"
        ),
    )
    parser.add_argument(
        "--sync-bn",
        action="store_true",
        help="torchrun with several processes: BatchNorm statistics over all of them (SyncBatchNorm)",
    )
    parser.add_argument(
        "--amp", action="store_true", help="mixed precision on a GPU (torch: float16 autocast; keras: mixed_float16)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="run folder for checkpoints, history.json, curves.png (default runs/<model>-<mode>)",
    )
    parser.add_argument(
        "--resume", metavar="CKPT", help="continue from a checkpoint (.json, its weights file, or a run folder)"
    )
    parser.add_argument("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    parser.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help=f"torch: DataLoader worker processes (default {d.workers}); keras: PyDataset decoding threads",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars or per-epoch lines"
    )
    return parser


def options_from_args(args: argparse.Namespace) -> FinetuneOptions:
    """The options parsed by :func:`add_finetune_arguments` (a ValueError names the bad flag's value)."""
    names = {f.name for f in fields(FinetuneOptions)}
    return FinetuneOptions(**{k: v for k, v in vars(args).items() if k in names})
