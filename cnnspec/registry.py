"""Name -> spec builder registry, like torchvision's ``register_model`` / ``get_model``."""

from __future__ import annotations

import argparse
import fnmatch
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from .model import ModelSpec

SpecBuilder = Callable[..., ModelSpec]
_BUILDERS: dict[str, SpecBuilder] = {}


def register(name: str) -> Callable[[SpecBuilder], SpecBuilder]:
    """Decorator that adds a spec builder under ``name``; a duplicate name is an error."""

    def add(builder: SpecBuilder) -> SpecBuilder:
        if name in _BUILDERS:
            raise ValueError(f"a model named {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return add


def names() -> list[str]:
    """All registered model names, in registration order (families grouped)."""
    return list(_BUILDERS)


def matching(include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None) -> list[str]:
    """torchvision's ``list_models`` filter, written once for both frameworks: the registered names
    that match any ``include`` pattern (fnmatch, all names when None) and no ``exclude`` one, sorted."""
    every = names()
    include = [include] if isinstance(include, str) else include
    exclude = [exclude] if isinstance(exclude, str) else exclude
    found = set(every) if not include else {m for pattern in include for m in fnmatch.filter(every, pattern)}
    for pattern in exclude or ():
        found -= set(fnmatch.filter(every, pattern))
    return sorted(found)


class UnknownModelError(KeyError, ValueError):
    """A model name that is not registered; the message suggests the closest one. A KeyError (a
    lookup that failed) and a ValueError (a bad argument), printed without KeyError's quotes."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def builder(name: str) -> SpecBuilder:
    try:
        return _BUILDERS[name]
    except (KeyError, TypeError):
        from cnnbase.cli import unknown_name_message

        raise UnknownModelError(unknown_name_message("model", str(name), list(_BUILDERS))) from None


def options(name: str) -> dict[str, Any]:
    """The keyword options a model accepts, with their defaults (e.g. num_classes, dropout)."""
    sig = inspect.signature(builder(name))
    return {k: p.default for k, p in sig.parameters.items()}


def options_for_size(name: str, size: Any, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` options plus ``image_size=size`` when the model is built for one input size that
    is a spec option (ViT: the position embedding) and a square ``size`` (an int or a pair) was
    asked for, unless ``given`` already fixes it (published weights do): ``--size 32`` then builds
    the model for 32x32 instead of refusing the size."""
    if isinstance(size, (tuple, list)):
        size = size[0] if len(size) == 2 and size[0] == size[1] else None
    if size and "image_size" in options(name) and "image_size" not in given:
        return {**given, "image_size": int(size)}
    return dict(given)


def get(name: str, **overrides: Any) -> ModelSpec:
    """The spec of ``name`` with options such as ``num_classes=10`` or ``aux_logits=False``."""
    build = builder(name)
    allowed = options(name)
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(f"{name} does not accept {unknown}; its options are {sorted(allowed)}")
    if "num_classes" in overrides:
        n = overrides["num_classes"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"num_classes must be a positive int, received num_classes={n!r}")
    return build(**overrides)


def model_name(text: str) -> str:
    """argparse ``type=`` for a model name: the error suggests the closest registered name."""
    if text in _BUILDERS:
        return text
    from cnnbase.cli import unknown_name_message

    raise argparse.ArgumentTypeError(unknown_name_message("model", text, names()))
