"""Published weights by name: ``resnet18(weights="IMAGENET1K_V1")``, ``"DEFAULT"`` or a torchvision enum.

The files come through torch.hub's cache, in the folder and under the names torchvision uses
(``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth``), so a user who already has torchvision's
weights downloads nothing. A download is hash-checked against the sha256 prefix in the file name
(torch.hub's rule), written to a temporary file and renamed, so a tampered or interrupted download
leaves nothing in the cache. ``$CLASSIC_CNNS_WEIGHTS_MIRROR`` points the downloads at a mirror.
Files already in the cache are trusted, as torch.hub trusts them.
"""

from __future__ import annotations

import enum
import functools
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import cnnspec
from cnnspec import published
from cnnspec.published import PublishedWeights


class _TorchvisionWeights:
    """torchvision's weights interface over ``self.entry`` (a :class:`PublishedWeights`): ``url``,
    ``meta``, ``transforms()``, ``get_state_dict()``; written once for :class:`Weights` and for the
    members of every :class:`WeightsEnum`."""

    entry: PublishedWeights

    @property
    def url(self) -> str:
        return self.entry.url

    @property
    def meta(self) -> dict[str, Any]:
        e = self.entry
        return {
            "categories": None if e.features_only else e.category_names(),
            "num_params": e.num_params,
            "min_size": e.min_size,
            "recipe": e.recipe,
            "_metrics": {"ImageNet-1K": {"acc@1": e.acc1, "acc@5": e.acc5}},
            "_ops": e.gflops,
            "_file_size": e.file_size_mb,
            "_docs": e.docs,
        }

    def transforms(self):
        """The evaluation preprocessing: torchvision's ``ImageClassification`` preset with the entry's sizes."""
        from .vision import torchvision

        torchvision()  # one clear error where importing it would crash the process
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms._presets import (
            ImageClassification,  # what torchvision's weights.transforms() returns
        )

        t = self.entry.transforms
        return ImageClassification(
            crop_size=t.crop_size,
            resize_size=t.resize_size,
            mean=t.mean,
            std=t.std,
            interpolation=InterpolationMode(t.interpolation),
        )

    def get_state_dict(self, progress: bool = True) -> dict[str, torch.Tensor]:
        from .weights import read_state_dict

        return read_state_dict(download(self.entry, progress=progress))


@dataclass(frozen=True)
class Weights(_TorchvisionWeights):
    """A published-weights entry with torch-side helpers, shaped like torchvision's ``Weights``: ``url``,
    ``meta``, ``transforms()``, ``get_state_dict()``."""

    entry: PublishedWeights

    @property
    def name(self) -> str:
        return self.entry.name


class WeightsEnum(_TorchvisionWeights, enum.Enum):
    """One model's published weights as torchvision's ``<Model>_Weights`` enums are: members by name,
    ``DEFAULT`` an alias of the recommended one, each with ``url``, ``meta``, ``transforms()`` and
    ``get_state_dict()``; a member is accepted wherever ``weights=`` is. A member's value is its
    :class:`Weights`; ``name`` is the enum's (the alias's target for ``DEFAULT``)."""

    # every model's enum has this member (an alias); declared for type checkers, which cannot see
    # members made at run time (an annotation without a value is not a member)
    DEFAULT: WeightsEnum

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    @property
    def entry(self) -> PublishedWeights:
        return self.value.entry


@functools.cache
def weights_enum(model: str) -> type[WeightsEnum]:
    """The :class:`WeightsEnum` of ``model`` (``RESNET50_Weights``), made once per model."""
    names = cnnspec.weights_names(model)
    if not names:
        reason = published.no_weights_reasons().get(model)
        cnnspec.get(model)  # an unknown name fails with the closest one
        raise ValueError(f"{model} has no published weights" + (f": {reason}" if reason else ""))
    members = [(name, Weights(cnnspec.published_weights(model, name))) for name in names]
    members.append((published.DEFAULT, Weights(cnnspec.published_weights(model))))  # an alias, as torchvision's
    return WeightsEnum(f"{model.upper()}_Weights", members, module=__name__)  # type: ignore[return-value]


def get_weights(model: str, name: str = published.DEFAULT) -> Weights:
    """``get_weights("resnet50")`` is resnet50's DEFAULT entry; ``.transforms()`` preprocesses for it."""
    return Weights(cnnspec.published_weights(model, name))


def cache_path(entry: PublishedWeights) -> Path:
    """Where torch.hub (and torchvision) keep this file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / entry.file_name


def download(entry: PublishedWeights, progress: bool = True) -> Path:
    """The cached file of ``entry``, downloaded (hash-checked, atomically) when it is not there."""
    path = cache_path(entry)
    if path.is_file():
        return path
    url = entry.download_url()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # writes <file>.<uuid>.partial, checks the sha256 prefix, then moves it into place; removes
        # the partial file on any error
        torch.hub.download_url_to_file(url, str(path), hash_prefix=entry.sha256_prefix, progress=progress)
    except RuntimeError as err:
        if "invalid hash value" in str(err):
            raise ValueError(
                f"{url} does not match its sha256 prefix {entry.sha256_prefix} (tampered or truncated); "
                f"nothing was written to {path.parent}: {err}"
            ) from None
        raise
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise OSError(
            f"could not download {entry.key} from {url}: {reason}. Without internet, set "
            f"{published.MIRROR_ENV} to a mirror's base URL, or copy {entry.file_name} to {path}"
        ) from None
    return path
