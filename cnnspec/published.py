"""Published weights: the one owner of what a published checkpoint is, fixes and warns about.

Each family's spec file (``cnnspec/models/<family>.py``) registers its entries beside its
``@register`` builder, written with keywords, so adding a model with published weights touches
one file; a model without them says why there (:func:`no_published_weights`). Builders (torch_impl,
keras_impl) and parity only do the framework mechanics: download, convert, load. They take the
options a file fixes from :func:`fixed_options` (the one rule, with the one error message), the
feature-only warning from :func:`warn_unusable_head`, and write or read a Keras conversion through
:class:`ConversionRecord` (one type for the writer in parity and the reader in keras_impl).

Every entry is torchvision's (its URL, the sha256 prefix in the file name, categories, evaluation
preprocessing, published accuracy and the options the file fixes); ``tests/test_catalog.py``
compares them with torchvision's own weight enums field by field, so they cannot drift.

>>> import cnnspec
>>> w = cnnspec.published_weights("resnet50")           # the DEFAULT entry
>>> w.name, w.acc1, w.transforms.resize_size
('IMAGENET1K_V2', 80.858, 232)

``CLASSIC_CNNS_WEIGHTS_MIRROR`` (a base URL such as ``https://mirror.example/models/``) makes every
download go to an internal mirror instead of download.pytorch.org; the file names, and so the
hash checks, stay the same.
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
import warnings
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from .model import IMAGENET_MEAN, IMAGENET_STD
from .registry import builder
from .registry import options as spec_options

TORCHVISION_BASE = "https://download.pytorch.org/models/"
TORCHVISION_RECIPES = "https://github.com/pytorch/vision/tree/main/references/classification#"
SIMPLE_RECIPE = "These weights reproduce closely the results of the paper using a simple training recipe."
MIRROR_ENV = "CLASSIC_CNNS_WEIGHTS_MIRROR"
DEFAULT = "DEFAULT"
KERAS_ALIAS = "imagenet"  # keras.applications' spelling: the DEFAULT entry
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,})\.")  # torch.hub's rule for the sha256 prefix in a file name


@dataclass(frozen=True)
class EvalTransform:
    """torchvision's ``ImageClassification`` preset: resize the short side, centre-crop, scale to
    [0, 1], normalise. ``mean``/``std`` apply to [0, 1] RGB values."""

    resize_size: int = 256
    crop_size: int = 224
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True, kw_only=True)
class PublishedWeights:
    """One published checkpoint of one model, written with keywords (a positional entry is refused).

    ``options`` are the spec options the file needs (GoogLeNet's ``transform_input=True``);
    ``dropped`` the top-level modules present in the file that the default model leaves out and
    whose weights are ignored (GoogLeNet's aux heads, as torchvision does). ``features_only`` marks
    a file whose classifier holds no valid values (vgg16 IMAGENET1K_FEATURES); such an entry has
    ``categories=None``. ``categories`` names a category list shipped in ``cnnspec/data``.
    """

    model: str
    name: str
    url: str
    transforms: EvalTransform = EvalTransform()
    acc1: float
    acc5: float
    num_params: int
    gflops: float
    file_size_mb: float
    min_size: tuple[int, int]
    recipe: str
    docs: str
    categories: str | None = "imagenet1k"
    features_only: bool = False
    options: tuple[tuple[str, object], ...] = ()
    dropped: tuple[str, ...] = ()
    num_classes: int = 1000  # the classifier's width in the file

    def __post_init__(self) -> None:
        if self.features_only and self.categories is not None:
            raise ValueError(f"{self.key}: feature-only weights have no categories; write categories=None")

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
        """False for feature-only weights: the head is not usable."""
        return not self.features_only

    def download_url(self) -> str:
        """The URL to fetch, with ``$CLASSIC_CNNS_WEIGHTS_MIRROR`` as the base when it is set."""
        mirror = os.environ.get(MIRROR_ENV, "").strip()
        if not mirror:
            return self.url
        return mirror.rstrip("/") + "/" + self.file_name

    def model_options(self) -> dict[str, object]:
        """The spec options the file needs, as written in the entry."""
        return dict(self.options)

    def fixed_options(self, options: dict[str, object] | None = None, **how: Any) -> dict[str, object]:
        """:func:`fixed_options` of this entry."""
        return fixed_options(self, options, **how)

    def category_names(self) -> list[str]:
        if self.categories is None:
            what = "feature-only weights" if self.features_only else "weights without a category list"
            raise ValueError(f"{self.key} are {what}: they have no categories")
        return categories(self.categories)


# ----------------------------------------------------------------------------- the rule and the warning
def fixed_options(
    entry: PublishedWeights, options: dict[str, Any] | None = None, *, head: bool = True, argument: str = "num_classes"
) -> dict[str, Any]:
    """``options`` with what ``entry``'s file fixes, the way torchvision's factories and
    keras.applications set them; the one rule for torch, Keras, parity and fine-tuning.

    Always: the entry's model options (GoogLeNet's ``transform_input``, ViT SWAG's ``image_size``)
    unless the user chose them. With ``head`` (the file's classifier is kept: torch always,
    Keras with ``include_top=True``): ``num_classes`` must be the file's (``argument`` is how the
    caller spells it, for the error line) and heads the file holds but the default model leaves out
    are left out (``aux_logits=False``) unless asked for. Fine-tuning replaces the head
    (``head=False``).
    """
    options = dict(options or {})
    if head:
        if not entry.features_only:
            given = options.get("num_classes")
            if given is not None and given != entry.num_classes:
                n = entry.num_classes
                raise ValueError(
                    f"weights {entry.key} have {n} classes, received {argument}={given}: a model with their head takes "
                    f"{n} classes (Keras: with include_top=True, classes must be {n}; torch: num_classes={n}); "
                    "replace the head after loading (surgery.replace_head), build without it (Keras: "
                    "include_top=False), or fine-tune from these weights (--weights)"
                )
            options["num_classes"] = entry.num_classes
        if entry.dropped:
            options.setdefault("aux_logits", False)
    for key, value in entry.options:
        options.setdefault(key, value)
    return options


def warn_unusable_head(entry: PublishedWeights, options: dict[str, Any], *, head: bool = True, stacklevel: int = 2):
    """The one warning for a model built with parts the file does not hold: a feature-only file's
    classifier, or auxiliary heads the file's default model leaves out (asked for with aux_logits)."""
    if head and entry.features_only:
        warnings.warn(
            f"{entry.key} are feature-only weights: the classifier holds no valid values; replace the head "
            "(or build without it: include_top=False in Keras)",
            stacklevel=stacklevel + 1,
        )
    if head and entry.dropped and options.get("aux_logits"):
        warnings.warn(
            f"the auxiliary heads in {entry.key} ({', '.join(entry.dropped)}) are NOT pretrained, so make sure "
            "to train them",
            stacklevel=stacklevel + 1,
        )


# ----------------------------------------------------------------------------- the Keras conversion record
@dataclass(frozen=True, kw_only=True)
class ConversionRecord:
    """What parity writes beside a Keras conversion of a published file, and keras_impl reads to
    trust the cached file: the source file and its sha256, the converted file's sha256 (checked at
    every load, so a damaged cache is converted again) and the measured agreement on a probe."""

    model: str
    weights: str
    source_file: str
    source_url: str
    source_sha256: str
    keras_file: str
    weights_sha256: str
    probe: dict[str, Any]
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ConversionRecord:
        """The record in ``text``; ValueError when it is not one (damaged, or another format)."""
        data = json.loads(text)
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not {"model", "weights", "source_file", "weights_sha256"} <= set(data):
            raise ValueError("not a conversion record")
        return cls(**{k: v for k, v in data.items() if k in names})

    def describes(self, entry: PublishedWeights, weights_sha256: str) -> bool:
        """True when this record is of ``entry``'s file and the converted file is unchanged."""
        return self.source_file == entry.file_name and self.weights_sha256 == weights_sha256

    def __getitem__(self, key: str) -> Any:
        """``record["probe"]`` reads as the JSON file does (callers that print a record use it)."""
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)


# ----------------------------------------------------------------------------- categories
@cache
def _categories(name: str) -> tuple[str, ...]:
    path = Path(__file__).with_name("data") / f"{name}_categories.txt"
    if not path.is_file():
        raise KeyError(f"no category list {name!r} in {path.parent}")
    return tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line)


def categories(name: str = "imagenet1k") -> list[str]:
    """The category names of a list shipped with the package (index i = class i)."""
    return list(_categories(name))


@cache
def _class_index(name: str) -> tuple[tuple[str, str], ...]:
    path = Path(__file__).with_name("data") / f"{name}_class_index.json"
    if not path.is_file():
        raise KeyError(f"no class index {name!r} in {path.parent}")
    table = json.loads(path.read_text(encoding="utf-8"))
    return tuple((wnid, label) for wnid, label in (table[str(i)] for i in range(len(table))))


def class_index(name: str = "imagenet1k") -> list[tuple[str, str]]:
    """``(WordNet id, keras.applications' class name)`` per class (index i = class i), from the
    package's copy of keras.applications' ``imagenet_class_index.json`` (the same bytes: Keras'
    own md5 accepts it), so ``decode_predictions`` needs no download. :func:`categories` holds
    torchvision's names for the same classes."""
    return list(_class_index(name))


# ----------------------------------------------------------------------------- registration
_ENTRIES: dict[str, dict[str, PublishedWeights]] = {}
_DEFAULTS: dict[str, str] = {}
_NO_WEIGHTS: dict[str, str] = {}


def register_weights(entry: PublishedWeights, default: bool = False) -> PublishedWeights:
    """Adds ``entry`` (a spec file's, or a checkpoint on a site's own server); a model's first
    entry is its DEFAULT unless another says ``default=True``. Refused with one line: anything but
    a keyword-built :class:`PublishedWeights`, an unregistered model, a file name without the sha256
    prefix (downloads are verified by it), an option the model does not take, a duplicate name."""
    if not isinstance(entry, PublishedWeights):
        raise TypeError(
            "register_weights takes a PublishedWeights(model=..., name=..., url=..., ...) written with keywords, "
            f"received {type(entry).__name__}"
        )
    builder(entry.model)  # unknown models fail here, with the closest name
    entry.sha256_prefix  # noqa: B018  (validates the file name)
    unknown = sorted({k for k, _ in entry.options} - set(spec_options(entry.model)))
    if unknown:
        raise ValueError(f"{entry.key} fixes options {unknown} that {entry.model} does not take")
    if entry.name in _ENTRIES.get(entry.model, {}):
        raise ValueError(f"{entry.key} is already registered")
    if entry.model in _NO_WEIGHTS:
        raise ValueError(f"{entry.model} is declared without published weights ({_NO_WEIGHTS[entry.model]})")
    _ENTRIES.setdefault(entry.model, {})[entry.name] = entry
    if default or entry.model not in _DEFAULTS:
        _DEFAULTS[entry.model] = entry.name
    return entry


def unregister_weights(entry: PublishedWeights) -> None:
    """Removes an entry added by :func:`register_weights` (tests use it to clean up)."""
    entries = _ENTRIES.get(entry.model, {})
    entries.pop(entry.name, None)
    if not entries:
        _ENTRIES.pop(entry.model, None)
        _DEFAULTS.pop(entry.model, None)
    elif _DEFAULTS.get(entry.model) == entry.name:
        _DEFAULTS[entry.model] = next(iter(entries))


def no_published_weights(model: str, reason: str) -> None:
    """Declares that ``model`` has no published weights, and why (the error and the README say it)."""
    builder(model)
    if model in _ENTRIES:
        raise ValueError(f"{model} has published weights ({', '.join(_ENTRIES[model])}); it cannot be declared without")
    _NO_WEIGHTS[model] = reason


def forget_model(model: str) -> None:
    """Removes every entry of ``model`` and its no-weights reason (a test's spec file cleaning up)."""
    _ENTRIES.pop(model, None)
    _DEFAULTS.pop(model, None)
    _NO_WEIGHTS.pop(model, None)


# ----------------------------------------------------------------------------- lookup
def models_with_weights() -> list[str]:
    """Models with published weights, in registry order."""
    from .registry import names

    return [m for m in names() if m in _ENTRIES]


def no_weights_reasons() -> dict[str, str]:
    """model -> why it has no published weights, in registry order."""
    from .registry import names

    return {m: _NO_WEIGHTS[m] for m in names() if m in _NO_WEIGHTS}


def weights_names(model: str) -> list[str]:
    """The weight names of ``model``, DEFAULT's first (empty for models with no published weights)."""
    entries = _ENTRIES.get(model, {})
    default = _DEFAULTS.get(model)
    return sorted(entries, key=lambda name: name != default)


def default_name(model: str) -> str:
    _require(model)
    return _DEFAULTS[model]


def is_weights_name(value: object) -> bool:
    """True for strings that name published weights (``IMAGENET1K_V1``, ``DEFAULT``, ``imagenet``),
    False for anything that looks like a file path."""
    return (
        isinstance(value, str)
        and bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value))
        and (value.upper() == value or value == KERAS_ALIAS)
    )


def not_found_hint(value: object) -> str:
    """For a weights argument that is neither a file nor a weights name: the name it may have meant
    (``'imagenett'`` -> ``imagenet``), or ''."""
    text = str(value)
    if not isinstance(value, str) or "/" in text or os.sep in text or "." in text:
        return ""
    from cnnbase.cli import closest

    known = sorted({KERAS_ALIAS, DEFAULT} | {name for entries in _ENTRIES.values() for name in entries})
    guess = closest(text, known)
    return f" (not a file either; published weights are named {', '.join(known)}" + (
        f": did you mean {guess!r}?)" if guess else ")"
    )


def published_weights(model: str, name: str = DEFAULT) -> PublishedWeights:
    """The entry ``model``/``name``; ``DEFAULT`` and ``imagenet`` mean the model's default.

    Unknown names fail with the names that exist; models without published weights say why.
    """
    entries = _require(model)
    if not isinstance(name, str):
        raise TypeError(f"weights name must be a str such as 'IMAGENET1K_V1', received {name!r}")
    key = _DEFAULTS[model] if name in (DEFAULT, KERAS_ALIAS) else name
    if key not in entries:
        known = ", ".join(f"{k} (DEFAULT)" if k == _DEFAULTS[model] else k for k in weights_names(model))
        raise ValueError(f"{model} has no published weights named {name!r}; it has {known}")
    return entries[key]


def lookup(model: str, weights: object) -> PublishedWeights | None:
    """The entry ``weights`` names: a name (``IMAGENET1K_V1``, ``DEFAULT``, ``imagenet``), an entry,
    anything holding one (torch_impl's ``Weights``) or a torchvision enum member (matched by its URL's
    file name); None for a file, a state dict or None. The one route from ``weights=`` to an entry."""
    shown = weights
    weights = getattr(weights, "entry", weights)
    if isinstance(weights, enum.Enum) and isinstance(getattr(weights, "url", None), str):
        entry = find_by_url(weights.url)
        if entry is None:
            raise ValueError(f"weights={shown}: {weights.url} is not among the published weights")
    elif isinstance(weights, PublishedWeights):
        entry, shown = weights, weights.key
    elif is_weights_name(weights):
        return published_weights(model, weights)  # type: ignore[arg-type]
    else:
        return None
    if entry.model != model:
        raise ValueError(
            f"weights={shown} are {entry.model}'s; {model} takes {', '.join(weights_names(model)) or 'none'}"
        )
    return entry


def find_by_url(url: str) -> PublishedWeights | None:
    """The entry whose file name matches ``url``'s (torchvision's enums carry only the URL)."""
    file = url.rsplit("/", 1)[-1]
    for entries in _ENTRIES.values():
        for entry in entries.values():
            if entry.file_name == file:
                return entry
    return None


def finetune_model_options(model: str, weights: object) -> dict[str, object]:
    """Spec options a fine-tuning run starting from ``weights`` builds with (its head is replaced);
    empty for files and for training from scratch."""
    entry = lookup(model, weights)
    return {} if entry is None else fixed_options(entry, head=False)


def _require(model: str) -> dict[str, PublishedWeights]:
    builder(model)  # unknown model names fail here, with the list
    if model not in _ENTRIES:
        reason = _NO_WEIGHTS.get(model, "torchvision publishes none")
        raise ValueError(f"{model} has no published weights: {reason}")
    return _ENTRIES[model]


def table_rows() -> list[dict[str, str]]:
    """One row per entry in registry order, for the README table and ``python -m cnnspec weights``."""
    rows = []
    for model in models_with_weights():
        for name in weights_names(model):
            e = _ENTRIES[model][name]
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
