"""Public factories, named and shaped like torchvision's: ``vgg16(weights=None, num_classes=1000)``.

Every factory is one line around :func:`get_model`; the architecture lives in the cnnspec spec.
``weights`` is a published checkpoint's name (``"IMAGENET1K_V1"``, ``"DEFAULT"``; see
``cnnspec.weights_names``) or torchvision's enum member, fetched through torch.hub's cache; or a
local checkpoint (.pth/.pt loaded with weights_only=True, or .safetensors; a torchvision
checkpoint works as is); or a state dict.
"""
from __future__ import annotations

from typing import Any, List, Optional

import warnings

import cnnspec

from . import pretrained
from .builder import SpecModel
from .init import initialise
from .weights import WeightsLike, load_into


def list_models() -> List[str]:
    return cnnspec.names()


def get_model(name: str, *, weights: Optional[WeightsLike] = None, init_weights: Optional[bool] = None, **options: Any) -> SpecModel:
    """Builds ``name`` with spec options (``num_classes``, ``dropout``, ``aux_logits``...).

    ``init_weights`` (default True) applies torchvision's initialisation for the family; it is
    skipped when ``weights`` are given. Published weights fix ``num_classes`` (another value is an
    error) and set the options the file needs (GoogLeNet's ``transform_input=True``) unless given.
    A checkpoint's auxiliary-head weights are ignored when the model is built without them
    (``aux_logits=False``), as torchvision does.
    """
    entry = pretrained.resolve(name, weights)
    if entry is not None:
        options = pretrained.checkpoint_options(entry, options)
        if not entry.classifies:
            warnings.warn(f"{entry.key} are feature-only weights: the classifier holds no valid values; replace the head", stacklevel=3)
        if options.get("aux_logits") and entry.dropped:
            warnings.warn(f"the auxiliary heads in {entry.key} are NOT pretrained, so make sure to train them", stacklevel=3)
        cnnspec.get(name, **options)  # bad options fail before any download
        weights = pretrained.download(entry)
    spec = cnnspec.get(name, **options)
    model = SpecModel(spec)
    if weights is None:
        if init_weights is None or init_weights:
            initialise(model, spec.init)
        return model
    absent_aux = tuple(a.name for a in cnnspec.get(name).aux_heads if a.name not in {x.name for x in spec.aux_heads})
    load_into(model, weights, ignore_prefixes=absent_aux)
    return model


def lenet5(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """LeNet-5 (LeCun et al. 1998) on 1x32x32 inputs, 10 classes. ``lenet5()(torch.zeros(1, 1, 32, 32))``"""
    return get_model("lenet5", weights=weights, **kwargs)


def alexnet(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """AlexNet, torchvision's 64-192-384-256-256 variant (Krizhevsky 2014). Any input >= 63x63."""
    return get_model("alexnet", weights=weights, **kwargs)


def alexnet_original(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """AlexNet as in the 2012 paper: LRN, grouped convs, 227x227 inputs only."""
    return get_model("alexnet_original", weights=weights, **kwargs)


def vgg11(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """VGG-11, configuration A (Simonyan & Zisserman 2015)."""
    return get_model("vgg11", weights=weights, **kwargs)


def vgg11_bn(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """VGG-11 with BatchNorm."""
    return get_model("vgg11_bn", weights=weights, **kwargs)


def vgg13(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """VGG-13, configuration B."""
    return get_model("vgg13", weights=weights, **kwargs)


def vgg13_bn(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """VGG-13 with BatchNorm."""
    return get_model("vgg13_bn", weights=weights, **kwargs)


def vgg16(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """VGG-16, configuration D. ``vgg16(weights="vgg16-397923af.pth")`` loads torchvision's file."""
    return get_model("vgg16", weights=weights, **kwargs)


def vgg16_bn(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """VGG-16 with BatchNorm."""
    return get_model("vgg16_bn", weights=weights, **kwargs)


def vgg19(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """VGG-19, configuration E."""
    return get_model("vgg19", weights=weights, **kwargs)


def vgg19_bn(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """VGG-19 with BatchNorm."""
    return get_model("vgg19_bn", weights=weights, **kwargs)


def googlenet(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """GoogLeNet / Inception v1 (Szegedy et al. 2015), torchvision's layout; options ``aux_logits``,
    ``transform_input`` (set it True for torchvision's ImageNet checkpoint, as torchvision does)."""
    return get_model("googlenet", weights=weights, **kwargs)


def resnet18(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """ResNet-18 (He et al. 2016)."""
    return get_model("resnet18", weights=weights, **kwargs)


def resnet34(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """ResNet-34."""
    return get_model("resnet34", weights=weights, **kwargs)


def resnet50(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """ResNet-50 (v1.5: stride on the bottleneck's 3x3 conv, like torchvision)."""
    return get_model("resnet50", weights=weights, **kwargs)


def resnet101(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """ResNet-101."""
    return get_model("resnet101", weights=weights, **kwargs)


def resnet152(*, weights: Optional[WeightsLike] = None, **kwargs: Any) -> SpecModel:
    """ResNet-152."""
    return get_model("resnet152", weights=weights, **kwargs)
