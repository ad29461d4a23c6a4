"""Public factories, named and shaped like torchvision's: ``vgg16(weights=None, num_classes=1000)``.

Every factory is one line around :func:`get_model`; the architecture lives in the cnnspec spec.
``weights`` is a published checkpoint's name (``"IMAGENET1K_V1"``, ``"DEFAULT"``; see
``cnnspec.weights_names``) or torchvision's enum member, fetched through torch.hub's cache; or a
local checkpoint (.pth/.pt loaded with weights_only=True, or .safetensors; a torchvision
checkpoint works as is); or a state dict.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from types import ModuleType
from typing import Any, Literal  # noqa: F401  (Literal: in the factories' signatures)

from torch import fx

import cnnspec
from cnnspec import published, registry

from . import pretrained
from .builder import SpecModel
from .features import features_only as cut_to_features
from .init import initialise
from .pretrained import WeightsEnum
from .weights import WeightsLike, load_into


def list_models(
    module: ModuleType | None = None,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> list[str]:
    """torchvision's ``list_models``: the model names, sorted, filtered by fnmatch patterns
    (``list_models(include="vgg1*", exclude="*_bn")``). ``module`` selects models by the module
    that holds them, as torchvision's does: every model is in torch_impl."""
    if module is not None and not __name__.startswith(module.__name__.split(".")[0] + "."):
        return []
    return registry.matching(include, exclude)


def get_model_weights(name: str | Callable[..., Any]) -> type[WeightsEnum]:
    """torchvision's ``get_model_weights``: the enum of a model's published weights
    (``get_model_weights("resnet50").DEFAULT``, ``["IMAGENET1K_V1"]``, iteration); takes the name or
    the factory."""
    return pretrained.weights_enum(getattr(name, "__name__", name))


def get_model(
    name: str,
    *,
    weights: WeightsLike | None = None,
    progress: bool = True,
    init_weights: bool | None = None,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    **options: Any,
) -> SpecModel | fx.GraphModule:
    """Builds ``name`` with spec options (``num_classes``, ``dropout``, ``aux_logits``...).

    ``init_weights`` (default True) applies torchvision's initialisation for the family; it is
    skipped when ``weights`` are given. ``progress`` shows a download's progress bar, as
    torchvision's factories do. Published weights fix ``num_classes`` (another value is an
    error) and set the options the file needs (GoogLeNet's ``transform_input=True``) unless given.
    A checkpoint's auxiliary-head weights are ignored when the model is built without them
    (``aux_logits=False``), as torchvision does.

    ``features_only=True`` returns timm's features-only model instead (see
    :func:`torch_impl.features.features_only`): the model built and loaded as above, cut to the maps
    of its feature levels (``out_indices``: None for all, an int n for the last n, or a tuple,
    negative indices counting from the end), a list of NCHW tensors, with ``.feature_info``.
    """
    if out_indices is not None and not features_only:
        raise ValueError(f"out_indices selects feature levels: pass features_only=True with it (model {name!r})")
    if features_only:
        cnnspec.feature_info(cnnspec.get(name, **options), out_indices)  # a bad index fails before any download
        model = get_model(name, weights=weights, progress=progress, init_weights=init_weights, **options)
        return cut_to_features(model, out_indices)
    entry = published.lookup(name, weights)
    if entry is not None:
        options = published.fixed_options(entry, options)
        published.warn_unusable_head(entry, options, stacklevel=3)
        cnnspec.get(name, **options)  # bad options fail before any download
        weights = pretrained.download(entry, progress=progress)
    spec = cnnspec.get(name, **options)
    model = SpecModel(spec)
    if weights is None:
        if init_weights is None or init_weights:
            initialise(model, spec.init)
        return model
    absent_aux = tuple(a.name for a in cnnspec.get(name).aux_heads if a.name not in {x.name for x in spec.aux_heads})
    load_into(model, weights, ignore_prefixes=absent_aux)
    return model


def _signature(name: str, features: bool | None = None) -> inspect.Signature:
    """The factory's keywords, typed: torchvision's (``weights``, ``progress``), timm's
    (``features_only``, ``out_indices``), then the spec's options. ``features`` True/False gives
    the overload a checker picks for ``features_only=True``/``False`` (its return type)."""
    P = inspect.Parameter
    kw = P.KEYWORD_ONLY
    features_only = {
        None: P("features_only", kw, default=False, annotation="bool"),
        False: P("features_only", kw, default=False, annotation="Literal[False]"),
        True: P("features_only", kw, annotation="Literal[True]"),
    }[features]
    params = [
        P("weights", kw, default=None, annotation="WeightsLike | None"),
        P("progress", kw, default=True, annotation="bool"),
        P("init_weights", kw, default=None, annotation="bool | None"),
        features_only,
        P("out_indices", kw, default=None, annotation="None" if features is False else "int | Sequence[int] | None"),
        *(p.replace(kind=kw) for p in inspect.signature(registry.builder(name)).parameters.values()),
    ]
    returns = {None: "SpecModel | fx.GraphModule", False: "SpecModel", True: "fx.GraphModule"}[features]
    return inspect.Signature(params, return_annotation=returns)


def _factory(name: str):
    """``name(*, weights=None, progress=True, ..., **spec options)``: :func:`get_model` for one
    registered spec, with a typed signature that ``inspect``, IDEs and the stubs read."""

    def factory(**kwargs: Any) -> SpecModel | fx.GraphModule:
        return get_model(name, **kwargs)

    factory.__name__ = factory.__qualname__ = name
    factory.__module__ = __name__
    factory.__signature__ = _signature(name)  # type: ignore[attr-defined]
    factory.__overloads__ = [_signature(name, False), _signature(name, True)]  # type: ignore[attr-defined]
    doc = inspect.cleandoc(registry.builder(name).__doc__ or name)
    factory.__doc__ = (
        f'{doc}\n\nA torch model with torchvision\'s state_dict keys, e.g. ``{name}(weights="DEFAULT")`` '
        f"or ``{name}(num_classes=10)``; options: {', '.join(cnnspec.options(name))}. "
        f"``features_only=True, out_indices=(...)`` gives timm's features-only model (a list of maps)."
    )
    return factory


# One factory per registered spec (``vgg16``, ``resnet50``...): a new spec file needs no code here.
FACTORIES = {name: _factory(name) for name in cnnspec.names()}
globals().update(FACTORIES)
__all__ = ["get_model", "get_model_weights", "list_models", *FACTORIES]
