"""The catalog of published checkpoints: which weights exist for which model, and what they need.

Framework-free data beside the spec. Every entry is torchvision's (its URL, the sha256 prefix in
the file name, categories, evaluation preprocessing, published accuracy, and the model options the
file fixes); ``tests/test_catalog.py`` compares it with torchvision's own weight enums field by
field, so it cannot drift. torch_impl downloads the file; keras_impl gets it converted by parity.

>>> import cnnspec
>>> w = cnnspec.published_weights("resnet50")           # the DEFAULT entry
>>> w.name, w.acc1, w.transforms.resize_size
('IMAGENET1K_V2', 80.858, 232)

``CLASSIC_CNNS_WEIGHTS_MIRROR`` (a base URL such as ``https://mirror.example/models/``) makes every
download go to an internal mirror instead of download.pytorch.org; the file names, and so the
hash checks, stay the same.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .model import IMAGENET_MEAN, IMAGENET_STD

TORCHVISION_BASE = "https://download.pytorch.org/models/"
MIRROR_ENV = "CLASSIC_CNNS_WEIGHTS_MIRROR"
DEFAULT = "DEFAULT"
KERAS_ALIAS = "imagenet"  # keras.applications' spelling: the DEFAULT entry
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")  # torch.hub's rule for the sha256 prefix in a file name
NO_WEIGHTS_REASON = {
    "lenet5": "torchvision publishes no LeNet-5 weights; LeNet-5 trains from scratch in minutes (python -m torch_impl finetune --model lenet5)",
    "alexnet_original": "the 2012 paper's Caffe weights are not in torchvision's catalog; 'alexnet' (torchvision's variant) has IMAGENET1K_V1",
}


@dataclass(frozen=True)
class EvalTransform:
    """torchvision's ``ImageClassification`` preset: resize the short side, centre-crop, scale to
    [0, 1], normalise. ``mean``/``std`` apply to [0, 1] RGB values."""

    resize_size: int = 256
    crop_size: int = 224
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class PublishedWeights:
    """One published checkpoint of one model.

    ``options`` are the spec options the file needs (GoogLeNet's ``transform_input=True``);
    ``dropped`` the top-level modules present in the file that the default model leaves out and
    whose weights are ignored (GoogLeNet's aux heads, as torchvision does). ``categories`` names a
    category list shipped in ``cnnspec/data`` (None for feature-only weights, whose classifier
    holds no valid values).
    """

    model: str
    name: str
    url: str
    transforms: EvalTransform
    acc1: float
    acc5: float
    num_params: int
    gflops: float
    file_size_mb: float
    min_size: tuple[int, int]
    recipe: str
    docs: str
    categories: str | None = "imagenet1k"
    options: tuple[tuple[str, object], ...] = ()
    dropped: tuple[str, ...] = ()
    num_classes: int = 1000  # the classifier's width in the file

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha256_prefix(self) -> str:
        """The leading hex digits of the file's sha256, written in its name (torch.hub's rule)."""
        match = _HASH_IN_NAME.search(self.file_name)
        if not match:
            raise ValueError(f"{self.file_name!r} carries no sha256 prefix")
        return match.group(1)

    @property
    def key(self) -> str:
        return f"{self.model}/{self.name}"

    @property
    def classifies(self) -> bool:
        """False for feature-only weights (vgg16 IMAGENET1K_FEATURES): the head is not usable."""
        return self.categories is not None

    def download_url(self) -> str:
        """The URL to fetch, with ``$CLASSIC_CNNS_WEIGHTS_MIRROR`` as the base when it is set."""
        mirror = os.environ.get(MIRROR_ENV, "").strip()
        if not mirror:
            return self.url
        return mirror.rstrip("/") + "/" + self.file_name

    def model_options(self) -> dict[str, object]:
        return dict(self.options)

    def fixed_options(self, options: dict[str, object] | None = None) -> dict[str, object]:
        """``options`` with what this file needs unless the user chose otherwise: its model options
        (GoogLeNet's ``transform_input``) and, when the file holds heads the default model leaves
        out, ``aux_logits=False`` (torchvision drops them). One rule for both frameworks."""
        options = dict(options or {})
        for key, value in self.options:
            options.setdefault(key, value)
        if self.dropped:
            options.setdefault("aux_logits", False)
        return options

    def category_names(self) -> list[str]:
        if self.categories is None:
            raise ValueError(f"{self.key} are feature-only weights: they have no categories")
        return categories(self.categories)


@cache
def _categories(name: str) -> tuple[str, ...]:
    path = Path(__file__).with_name("data") / f"{name}_categories.txt"
    if not path.is_file():
        raise KeyError(f"no category list {name!r} in {path.parent}")
    return tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line)


def categories(name: str = "imagenet1k") -> list[str]:
    """The category names of a list shipped with the package (index i = class i)."""
    return list(_categories(name))


# ----------------------------------------------------------------------------- the entries
_V1 = EvalTransform()
_V2 = EvalTransform(resize_size=232)
_CAFFE = EvalTransform(mean=(0.48235, 0.45882, 0.40784), std=(1.0 / 255.0,) * 3)
_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#"
_SIMPLE = "These weights reproduce closely the results of the paper using a simple training recipe."
_SIMPLIFIED_VGG = "These weights were trained from scratch by using a simplified training recipe."
_NEW_RECIPE = (
    "These weights improve upon the results of the original paper by using TorchVision's `new training recipe "
    "<https://pytorch.org/blog/how-to-train-state-of-the-art-models-using-torchvision-latest-primitives/>`_."
)

# model: [(name, file, transforms, acc@1, acc@5, num_params, GFLOPs, file MB, min size, recipe, docs), ...]; the first is DEFAULT
_TABLE: dict[str, list[tuple]] = {
    "alexnet": [
        (
            "IMAGENET1K_V1",
            "alexnet-owt-7be5be79.pth",
            _V1,
            56.522,
            79.066,
            61100840,
            0.714,
            233.087,
            (63, 63),
            _RECIPE + "alexnet-and-vgg",
            "These weights reproduce closely the results of the paper using a simplified training recipe.",
        )
    ],
    "vgg11": [
        (
            "IMAGENET1K_V1",
            "vgg11-8a719046.pth",
            _V1,
            69.02,
            88.628,
            132863336,
            7.609,
            506.84,
            (32, 32),
            _RECIPE + "alexnet-and-vgg",
            _SIMPLIFIED_VGG,
        )
    ],
    "vgg11_bn": [
        (
            "IMAGENET1K_V1",
            "vgg11_bn-6002323d.pth",
            _V1,
            70.37,
            89.81,
            132868840,
            7.609,
            506.881,
            (32, 32),
            _RECIPE + "alexnet-and-vgg",
            _SIMPLIFIED_VGG,
        )
    ],
    "vgg13": [
        (
            "IMAGENET1K_V1",
            "vgg13-19584684.pth",
            _V1,
            69.928,
            89.246,
            133047848,
            11.308,
            507.545,
            (32, 32),
            _RECIPE + "alexnet-and-vgg",
            _SIMPLIFIED_VGG,
        )
    ],
    "vgg13_bn": [
        (
            "IMAGENET1K_V1",
            "vgg13_bn-abd245e5.pth",
            _V1,
            71.586,
            90.374,
            133053736,
            11.308,
            507.59,
            (32, 32),
            _RECIPE + "alexnet-and-vgg",
            _SIMPLIFIED_VGG,
        )
    ],
    "vgg16": [
        (
            "IMAGENET1K_V1",
            "vgg16-397923af.pth",
            _V1,
            71.592,
            90.382,
            138357544,
            15.47,
            527.796,
            (32, 32),
            _RECIPE + "alexnet-and-vgg",
            _SIMPLIFIED_VGG,
        ),
        (
            "IMAGENET1K_FEATURES",
            "vgg16_features-amdegroot-88682ab5.pth",
            _CAFFE,
            math.nan,
            math.nan,
            138357544,
            15.47,
            527.802,
            (32, 32),
            "https://github.com/amdegroot/ssd.pytorch#training-ssd",
            "These weights can't be used for classification because they are missing values in the `classifier` module. Only the "
            "`features` module has valid values and can be used for feature extraction. The weights were trained using the original "
            "input standardization method as described in the paper.",
        ),
    ],
    "vgg16_bn": [
        (
            "IMAGENET1K_V1",
            "vgg16_bn-6c64b313.pth",
            _V1,
            73.36,
            91.516,
            138365992,
            15.47,
            527.866,
            (32, 32),
            _RECIPE + "alexnet-and-vgg",
            _SIMPLIFIED_VGG,
        )
    ],
    "vgg19": [
        (
            "IMAGENET1K_V1",
            "vgg19-dcbb9e9d.pth",
            _V1,
            72.376,
            90.876,
            143667240,
            19.632,
            548.051,
            (32, 32),
            _RECIPE + "alexnet-and-vgg",
            _SIMPLIFIED_VGG,
        )
    ],
    "vgg19_bn": [
        (
            "IMAGENET1K_V1",
            "vgg19_bn-c79401a0.pth",
            _V1,
            74.218,
            91.842,
            143678248,
            19.632,
            548.143,
            (32, 32),
            _RECIPE + "alexnet-and-vgg",
            _SIMPLIFIED_VGG,
        )
    ],
    "googlenet": [
        (
            "IMAGENET1K_V1",
            "googlenet-1378be20.pth",
            _V1,
            69.778,
            89.53,
            6624904,
            1.498,
            49.731,
            (15, 15),
            _RECIPE + "googlenet",
            "These weights are ported from the original paper.",
        )
    ],
    "resnet18": [
        (
            "IMAGENET1K_V1",
            "resnet18-f37072fd.pth",
            _V1,
            69.758,
            89.078,
            11689512,
            1.814,
            44.661,
            (1, 1),
            _RECIPE + "resnet",
            _SIMPLE,
        )
    ],
    "resnet34": [
        (
            "IMAGENET1K_V1",
            "resnet34-b627a593.pth",
            _V1,
            73.314,
            91.42,
            21797672,
            3.664,
            83.275,
            (1, 1),
            _RECIPE + "resnet",
            _SIMPLE,
        )
    ],
    "resnet50": [
        (
            "IMAGENET1K_V2",
            "resnet50-11ad3fa6.pth",
            _V2,
            80.858,
            95.434,
            25557032,
            4.089,
            97.79,
            (1, 1),
            "https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621",
            _NEW_RECIPE,
        ),
        (
            "IMAGENET1K_V1",
            "resnet50-0676ba61.pth",
            _V1,
            76.13,
            92.862,
            25557032,
            4.089,
            97.781,
            (1, 1),
            _RECIPE + "resnet",
            _SIMPLE,
        ),
    ],
    "resnet101": [
        (
            "IMAGENET1K_V2",
            "resnet101-cd907fc2.pth",
            _V2,
            81.886,
            95.78,
            44549160,
            7.801,
            170.53,
            (1, 1),
            "https://github.com/pytorch/vision/issues/3995#new-recipe",
            _NEW_RECIPE,
        ),
        (
            "IMAGENET1K_V1",
            "resnet101-63fe2227.pth",
            _V1,
            77.374,
            93.546,
            44549160,
            7.801,
            170.511,
            (1, 1),
            _RECIPE + "resnet",
            _SIMPLE,
        ),
    ],
    "resnet152": [
        (
            "IMAGENET1K_V2",
            "resnet152-f82ba261.pth",
            _V2,
            82.284,
            96.002,
            60192808,
            11.514,
            230.474,
            (1, 1),
            "https://github.com/pytorch/vision/issues/3995#new-recipe",
            _NEW_RECIPE,
        ),
        (
            "IMAGENET1K_V1",
            "resnet152-394f9c45.pth",
            _V1,
            78.312,
            94.046,
            60192808,
            11.514,
            230.434,
            (1, 1),
            _RECIPE + "resnet",
            _SIMPLE,
        ),
    ],
    "mobilenet_v2": [
        (
            "IMAGENET1K_V2",
            "mobilenet_v2-7ebf99e0.pth",
            _V2,
            72.154,
            90.822,
            3504872,
            0.301,
            13.598,
            (1, 1),
            "https://github.com/pytorch/vision/issues/3995#new-recipe-with-reg-tuning",
            "These weights improve upon the results of the original paper by using a modified version of TorchVision's `new training recipe "
            "<https://pytorch.org/blog/how-to-train-state-of-the-art-models-using-torchvision-latest-primitives/>`_.",
        ),
        (
            "IMAGENET1K_V1",
            "mobilenet_v2-b0353104.pth",
            _V1,
            71.878,
            90.286,
            3504872,
            0.301,
            13.555,
            (1, 1),
            _RECIPE + "mobilenetv2",
            _SIMPLE,
        ),
    ],
    "efficientnet_b0": [
        (
            "IMAGENET1K_V1",
            "efficientnet_b0_rwightman-7f5810bc.pth",
            EvalTransform(interpolation="bicubic"),
            77.692,
            93.532,
            5288548,
            0.386,
            20.451,
            (1, 1),
            "https://github.com/pytorch/vision/tree/main/references/classification#efficientnet-v1",
            "These weights are ported from the original paper.",
        ),
    ],
    "vit_b_16": [
        (
            "IMAGENET1K_V1",
            "vit_b_16-c867db91.pth",
            _V1,
            81.072,
            95.318,
            86567656,
            17.564,
            330.285,
            (224, 224),
            _RECIPE + "vit_b_16",
            "These weights were trained from scratch by using a modified version of `DeIT <https://arxiv.org/abs/2012.12877>`_'s training recipe.",
        ),
        (
            "IMAGENET1K_SWAG_E2E_V1",
            "vit_b_16_swag-9ac1b537.pth",
            EvalTransform(resize_size=384, crop_size=384, interpolation="bicubic"),
            85.304,
            97.65,
            86859496,
            55.484,
            331.398,
            (384, 384),
            "https://github.com/facebookresearch/SWAG",
            "These weights are learnt via transfer learning by end-to-end fine-tuning the original `SWAG <https://arxiv.org/abs/2201.08371>`_ "
            "weights on ImageNet-1K data.",
        ),
        (
            "IMAGENET1K_SWAG_LINEAR_V1",
            "vit_b_16_lc_swag-4e70ced5.pth",
            EvalTransform(resize_size=224, crop_size=224, interpolation="bicubic"),
            81.886,
            96.18,
            86567656,
            17.564,
            330.285,
            (224, 224),
            "https://github.com/pytorch/vision/pull/5793",
            "These weights are composed of the original frozen `SWAG <https://arxiv.org/abs/2201.08371>`_ trunk weights and a linear "
            "classifier learnt on top of them trained on ImageNet-1K data.",
        ),
    ],
}
# What a checkpoint fixes beyond its weights (torchvision's factories set the same), by model or by model/weights.
_OPTIONS: dict[str, tuple[tuple[str, object], ...]] = {
    "googlenet": (("transform_input", True),),
    "vit_b_16/IMAGENET1K_SWAG_E2E_V1": (("image_size", 384),),
}
_DROPPED: dict[str, tuple[str, ...]] = {"googlenet": ("aux1", "aux2")}


def _build_registry() -> dict[str, dict[str, PublishedWeights]]:
    registry: dict[str, dict[str, PublishedWeights]] = {}
    for model, rows in _TABLE.items():
        entries = {}
        for name, file, tf, acc1, acc5, params, gflops, size_mb, min_size, recipe, docs in rows:
            features_only = name == "IMAGENET1K_FEATURES"
            entries[name] = PublishedWeights(
                model=model,
                name=name,
                url=TORCHVISION_BASE + file,
                transforms=tf,
                acc1=acc1,
                acc5=acc5,
                num_params=params,
                gflops=gflops,
                file_size_mb=size_mb,
                min_size=min_size,
                recipe=recipe,
                docs=docs,
                categories=None if features_only else "imagenet1k",
                options=_OPTIONS.get(f"{model}/{name}", _OPTIONS.get(model, ())),
                dropped=_DROPPED.get(model, ()),
            )
        registry[model] = entries
    return registry


_REGISTRY = _build_registry()
_DEFAULTS: dict[str, str] = {model: rows[0][0] for model, rows in _TABLE.items()}


# ----------------------------------------------------------------------------- lookup
def models_with_weights() -> list[str]:
    return list(_REGISTRY)


def weights_names(model: str) -> list[str]:
    """The weight names of ``model``, DEFAULT's first (empty for models with no published weights)."""
    return list(_REGISTRY.get(model, {}))


def default_name(model: str) -> str:
    _require(model)
    return _DEFAULTS[model]


def is_weights_name(value: object) -> bool:
    """True for strings that name catalog weights (``IMAGENET1K_V1``, ``DEFAULT``, ``imagenet``),
    False for anything that looks like a file path."""
    return (
        isinstance(value, str)
        and bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value))
        and (value.upper() == value or value == KERAS_ALIAS)
    )


def not_found_hint(value: object) -> str:
    """For a weights argument that is neither a file nor a catalog name: the name it may have meant
    (``'imagenett'`` -> ``imagenet``), or ''."""
    text = str(value)
    if not isinstance(value, str) or "/" in text or os.sep in text or "." in text:
        return ""
    from cnnbase.cli import closest

    known = sorted({KERAS_ALIAS, DEFAULT} | {name for entries in _REGISTRY.values() for name in entries})
    guess = closest(text, known)
    return f" (not a file either; published weights are named {', '.join(known)}" + (
        f": did you mean {guess!r}?)" if guess else ")"
    )


def published_weights(model: str, name: str = DEFAULT) -> PublishedWeights:
    """The catalog entry ``model``/``name``; ``DEFAULT`` and ``imagenet`` mean the model's default.

    Unknown names fail with the names that exist; models without published weights say why.
    """
    entries = _require(model)
    if not isinstance(name, str):
        raise TypeError(f"weights name must be a str such as 'IMAGENET1K_V1', received {name!r}")
    key = _DEFAULTS[model] if name in (DEFAULT, KERAS_ALIAS) else name
    if key not in entries:
        known = ", ".join(f"{k} (DEFAULT)" if k == _DEFAULTS[model] else k for k in entries)
        raise ValueError(f"{model} has no published weights named {name!r}; it has {known}")
    return entries[key]


def find_by_url(url: str) -> PublishedWeights | None:
    """The entry whose file name matches ``url``'s (torchvision's enums carry only the URL)."""
    file = url.rsplit("/", 1)[-1]
    for entries in _REGISTRY.values():
        for entry in entries.values():
            if entry.file_name == file:
                return entry
    return None


def register_weights(entry: PublishedWeights, default: bool = False) -> PublishedWeights:
    """Adds ``entry`` (e.g. a checkpoint on a site's own server) to the catalog; its URL's file
    name must carry the sha256 prefix so downloads are verified."""
    entry.sha256_prefix  # noqa: B018  (validates the file name)
    from .registry import builder

    builder(entry.model)  # unknown models fail here
    _REGISTRY.setdefault(entry.model, {})[entry.name] = entry
    if default or entry.model not in _DEFAULTS:
        _DEFAULTS[entry.model] = entry.name
    return entry


def unregister_weights(entry: PublishedWeights) -> None:
    """Removes an entry added by :func:`register_weights` (tests use it to clean up)."""
    entries = _REGISTRY.get(entry.model, {})
    entries.pop(entry.name, None)
    if not entries:
        _REGISTRY.pop(entry.model, None)
        _DEFAULTS.pop(entry.model, None)
    elif _DEFAULTS.get(entry.model) == entry.name:
        _DEFAULTS[entry.model] = next(iter(entries))


def _require(model: str) -> dict[str, PublishedWeights]:
    from .registry import builder

    builder(model)  # unknown model names fail here, with the list
    if model not in _REGISTRY:
        reason = NO_WEIGHTS_REASON.get(model, "torchvision publishes none")
        raise ValueError(f"{model} has no published weights: {reason}")
    return _REGISTRY[model]


def finetune_model_options(model: str, weights: str | None) -> dict[str, object]:
    """Spec options a fine-tuning run starting from ``weights`` builds with (GoogLeNet's
    ``transform_input`` for its published file); empty for files and for training from scratch."""
    if not is_weights_name(weights):
        return {}
    return published_weights(model, weights).model_options()


def table_rows() -> list[dict]:
    """One row per entry, for the README table and ``python -m cnnspec weights``."""
    rows = []
    for model, entries in _REGISTRY.items():
        for name, e in entries.items():
            rows.append(
                {
                    "model": model,
                    "weights": name + (" (DEFAULT)" if name == _DEFAULTS[model] else ""),
                    "acc@1": "-" if math.isnan(e.acc1) else f"{e.acc1:.3f}",
                    "acc@5": "-" if math.isnan(e.acc5) else f"{e.acc5:.3f}",
                    "file MB": f"{e.file_size_mb:.1f}",
                    "resize/crop": f"{e.transforms.resize_size}/{e.transforms.crop_size}",
                }
            )
    return rows
