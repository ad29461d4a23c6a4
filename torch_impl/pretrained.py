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
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import cnnspec
from cnnspec import catalog
from cnnspec.catalog import PublishedWeights


@dataclass(frozen=True)
class Weights:
    """A catalog entry with torch-side helpers, shaped like torchvision's ``Weights``: ``url``,
    ``meta``, ``transforms()``, ``get_state_dict()``."""

    entry: PublishedWeights

    @property
    def url(self) -> str:
        return self.entry.url

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def meta(self) -> dict[str, Any]:
        e = self.entry
        return {
            "categories": e.category_names() if e.classifies else None,
            "num_params": e.num_params,
            "min_size": e.min_size,
            "recipe": e.recipe,
            "_metrics": {"ImageNet-1K": {"acc@1": e.acc1, "acc@5": e.acc5}},
            "_ops": e.gflops,
            "_file_size": e.file_size_mb,
            "_docs": e.docs,
        }

    def transforms(self):
        """The evaluation preprocessing: torchvision's ``ImageClassification`` preset with the catalog's sizes."""
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


def get_weights(model: str, name: str = catalog.DEFAULT) -> Weights:
    """``get_weights("resnet50")`` is resnet50's DEFAULT entry; ``.transforms()`` preprocesses for it."""
    return Weights(cnnspec.published_weights(model, name))


def resolve(model: str, weights: Any) -> PublishedWeights | None:
    """The catalog entry ``weights`` names (a name, a torchvision enum member, a :class:`Weights`),
    or None when ``weights`` is a file or a state dict."""
    if isinstance(weights, Weights):
        weights = weights.entry
    if isinstance(weights, PublishedWeights):
        entry = weights
    elif isinstance(weights, enum.Enum) and hasattr(
        weights, "url"
    ):  # torchvision.models.ResNet50_Weights.IMAGENET1K_V2
        entry = catalog.find_by_url(weights.url)
        if entry is None:
            raise ValueError(f"weights={weights}: {weights.url} is not in the catalog of published weights")
    elif catalog.is_weights_name(weights):
        return cnnspec.published_weights(model, weights)
    else:
        return None
    if entry.model != model:
        raise ValueError(
            f"weights={weights} are {entry.model}'s; {model} takes {', '.join(catalog.weights_names(model)) or 'none'}"
        )
    return entry


def checkpoint_options(entry: PublishedWeights, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with what the checkpoint fixes, the way torchvision's factories set them:
    ``num_classes`` must be the file's (else an error says how to get another head), options such
    as GoogLeNet's ``transform_input`` are set unless the user chose them."""
    options = dict(options)
    if entry.classifies:
        given = options.get("num_classes", entry.num_classes)
        if given != entry.num_classes:
            raise ValueError(
                f"weights {entry.key} have {entry.num_classes} classes, received num_classes={given}: build with the "
                f"default and replace the head (torch_impl.transfer.replace_head(model, {given})), or fine-tune with --weights"
            )
        options["num_classes"] = entry.num_classes
    return entry.fixed_options(options)


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
            f"{catalog.MIRROR_ENV} to a mirror's base URL, or copy {entry.file_name} to {path}"
        ) from None
    return path
