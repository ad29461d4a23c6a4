"""Public factories with keras.applications' arguments::

    vgg16(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", name="vgg16", *, dropout=0.5)

then the spec's own options, typed and keyword-only (``dropout``, ``aux_logits``,
``transform_input``, ``zero_init_residual``). ``weights`` is None, ``"imagenet"`` (the model's
DEFAULT published weights), a weights name (``"IMAGENET1K_V1"``; see ``cnnspec.weights_names``), or
a local ``.weights.h5``.
Published weights are torchvision's files converted once by the parity layer and cached under
``$KERAS_HOME`` (see :mod:`keras_impl.pretrained`). Inputs are channels-last (NHWC) and
preprocessed the torch way (``keras_impl.preprocess_input``), since the architectures and their
published weights come from torchvision.
A model with auxiliary heads (GoogLeNet) returns them only when asked (``aux_logits=True``):
``[logits, aux2, aux1]`` (torchvision's order) in training and inference alike, since a functional
model has fixed outputs.
"""

from __future__ import annotations

import inspect
import os  # noqa: F401  (named in the signatures' annotations)
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import keras

import cnnspec
from cnnspec import published, registry

from . import pretrained
from .builder import build_model
from .naming import constructor_name
from .weights import load_weights_file


def list_models(include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None) -> list[str]:
    """The model names, sorted, filtered by fnmatch patterns as torchvision's ``list_models``
    (``list_models(include="resnet*")``)."""
    return registry.matching(include, exclude)


def model_info(name: str) -> cnnspec.ModelSpec:
    """The spec behind a model: input size, mean/std, classifier layer name, stages."""
    return cnnspec.get(name)


def get_model(
    name: str,
    /,
    include_top: bool = True,
    weights: str | None = None,
    input_tensor=None,
    input_shape=None,
    pooling: str | None = None,
    classes: int | None = None,
    classifier_activation="softmax",
    *,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    **options: Any,
) -> keras.Model:
    """Builds ``name`` the way keras.applications builds its models (see the module docstring);
    ``name=`` among the options names the Keras model, as keras.applications' ``name`` does.

    ``features_only=True`` returns timm's features-only model instead (see
    :func:`keras_impl.features.features_only`): the backbone built (``include_top=False``, any
    input size the spec takes) and loaded as above, cut to the NHWC maps of its feature levels
    (``out_indices``: None for all, an int n for the last n, or a tuple, negative indices counting
    from the end), a list of outputs, with ``model.feature_info``.
    """
    if out_indices is not None and not features_only:
        raise ValueError(f"out_indices selects feature levels: pass features_only=True with it (model {name!r})")
    if features_only:
        from .features import features_only as cut_to_features

        spec_options = {k: v for k, v in options.items() if k != "name"}
        if classes is not None:
            spec_options["num_classes"] = classes
        cnnspec.feature_info(cnnspec.get(name, **spec_options), out_indices)  # a bad index fails before any download
        model = get_model(name, False, weights, input_tensor, input_shape, None, classes, **options)
        return cut_to_features(model, out_indices)
    model_name = options.pop("name", None)
    if weights is not None and not isinstance(weights, (str, bytes)) and not hasattr(weights, "__fspath__"):
        raise TypeError(
            "weights must be None, 'imagenet', a weights name or a path to a .weights.h5 file. "
            f"Received: weights={weights!r}"
        )
    entry = published.lookup(name, weights)
    if classes is not None:
        options["num_classes"] = classes
    if entry is not None:
        options = published.fixed_options(entry, options, head=include_top, argument="classes")
        published.warn_unusable_head(entry, options, head=include_top, stacklevel=3)
    spec = cnnspec.get(name, **options)
    if spec.aux_heads and "aux_logits" not in options:  # fixed outputs: aux heads only when asked for
        spec = replace(spec, aux_heads=())
    model = build_model(spec, include_top, input_tensor, input_shape, pooling, classifier_activation, model_name)
    if entry is not None:
        pretrained.load_pretrained(model, entry, options)
    elif weights is not None:
        load_weights_file(model, weights, name, options)
    return model


# keras.applications' parameters, typed (Keras leaves them unannotated): the stubs and IDEs show these
_KERAS_TYPES = {
    "include_top": "bool",
    "weights": "str | os.PathLike[str] | None",
    "input_tensor": "Any",
    "input_shape": "tuple[int | None, ...] | None",
    "alpha": "float",
    "pooling": "str | None",
    "classes": "int",
    "classifier_activation": "str | Callable[..., Any] | None",
    "name": "str | None",
}


def _signature(name: str, weights: str | None) -> inspect.Signature:
    """keras.applications' parameters, in its order (the anchor's own where Keras has the model,
    MobileNetV2's ``input_shape`` first included), then the spec's options (but ``num_classes``,
    which is ``classes``) as typed keywords: one signature that ``inspect``, IDEs and the stubs read."""
    P = inspect.Parameter
    anchor = getattr(keras.applications, constructor_name(name), None)
    default = cnnspec.get(name).num_classes
    if anchor is not None:
        params = list(inspect.signature(anchor).parameters.values())
    else:
        params = [
            P("include_top", P.POSITIONAL_OR_KEYWORD, default=True),
            P("weights", P.POSITIONAL_OR_KEYWORD, default="imagenet"),
            P("input_tensor", P.POSITIONAL_OR_KEYWORD, default=None),
            P("input_shape", P.POSITIONAL_OR_KEYWORD, default=None),
            P("pooling", P.POSITIONAL_OR_KEYWORD, default=None),
            P("classes", P.POSITIONAL_OR_KEYWORD, default=default),
            P("classifier_activation", P.POSITIONAL_OR_KEYWORD, default="softmax"),
            P("name", P.POSITIONAL_OR_KEYWORD, default=name),
        ]
    fixed = {"weights": weights, "classes": default} if anchor is None or weights is None else {}
    if weights is None:
        fixed["name"] = name
    params = [p.replace(default=fixed.get(p.name, p.default), annotation=_KERAS_TYPES[p.name]) for p in params]
    spec_options = inspect.signature(registry.builder(name)).parameters.values()
    options = [p.replace(kind=P.KEYWORD_ONLY) for p in spec_options if p.name != "num_classes"]
    # a functional model's outputs are fixed: aux heads only when asked for (see get_model)
    options = [p.replace(default=False) if p.name == "aux_logits" else p for p in options]
    pyramid = [
        P("features_only", P.KEYWORD_ONLY, default=False, annotation="bool"),
        P("out_indices", P.KEYWORD_ONLY, default=None, annotation="int | Sequence[int] | None"),
    ]
    return inspect.Signature([*params, *options, *pyramid], return_annotation="keras.Model")


def _constructor(name: str, public: str, weights: str | None):
    """A keras.applications-style constructor of ``name``: positional arguments in its order."""
    signature = _signature(name, weights)

    def constructor(*args: Any, **kwargs: Any) -> keras.Model:
        unknown = sorted(set(kwargs) - set(signature.parameters))
        if unknown:
            raise TypeError(f"{public} does not accept {unknown}; its parameters are {list(signature.parameters)}")
        bound = signature.bind(*args, **kwargs)
        given = dict(bound.arguments)  # spec options only when given: get_model knows their defaults
        bound.apply_defaults()
        keep = given.keys() | _KERAS_TYPES.keys() | {"features_only", "out_indices"}
        arguments = {k: v for k, v in bound.arguments.items() if k in keep}
        alpha = arguments.pop("alpha", 1.0)
        if alpha != 1.0:
            raise ValueError(f"{public} is torchvision's width, alpha=1.0; received alpha={alpha!r}")
        return get_model(name, **arguments)

    constructor.__name__ = constructor.__qualname__ = public
    constructor.__module__ = __name__
    constructor.__signature__ = signature  # type: ignore[attr-defined]
    doc = inspect.cleandoc(registry.builder(name).__doc__ or name)
    constructor.__doc__ = (
        f"{doc}\n\nA functional keras.Model (NHWC) with keras.applications' arguments, in its order; "
        f"weights={weights!r} by default; spec options as keywords: "
        f"{', '.join(o for o in cnnspec.options(name) if o != 'num_classes') or 'none'}. "
        "``features_only=True, out_indices=(...)`` gives timm's features-only model (a list of NHWC maps)."
    )
    return constructor


def _factory(name: str):
    """``name(include_top=True, weights=None, ...)``: :func:`get_model` for one registered spec."""
    return _constructor(name, name, None)


def _default_weights(name: str) -> str | None:
    return published.KERAS_ALIAS if cnnspec.weights_names(name) else None


# One factory per registered spec (``vgg16``, ``resnet50``...): a new spec file needs no code here.
FACTORIES = {name: _factory(name) for name in cnnspec.names()}
# and keras.applications' capitalised constructors (``VGG16``, ``ResNet50``), weights="imagenet"
# by default as there (None for a model without published weights)
CONSTRUCTORS = {constructor_name(n): _constructor(n, constructor_name(n), _default_weights(n)) for n in cnnspec.names()}
globals().update(FACTORIES)
globals().update(CONSTRUCTORS)
__all__ = ["constructor_name", "get_model", "list_models", "model_info", *FACTORIES, *CONSTRUCTORS]
