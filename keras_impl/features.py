"""Intermediate maps the way torchvision's and timm's users take them, on a keras_impl model.

* :func:`features_only` (also ``get_model(name, features_only=True, out_indices=...)`` and every
  factory's keywords): timm's features-only model, a multi-output functional ``keras.Model`` whose
  outputs are the NHWC maps, one per level of :func:`cnnspec.feature_levels` that ``out_indices``
  selects (a list, in that order), with timm's ``model.feature_info`` (``channels()``,
  ``reduction()``, ``module_name()``, ``[i]``). A transformer block's tokens come back as a map,
  the class token dropped and the patches on their grid: (N, H / 16, W / 16, D) for ViT-B/16, the
  torch side's (N, D, H / 16, W / 16) in NHWC.
* :func:`feature_extractor`: the outputs of named nodes as a dict, the names torch's (the spec's
  dotted paths: ``"layer2.1"``, ``"features.3"``, torch_impl's module names); a container gives its
  output. A misspelt name is one ValueError line naming the closest valid one.

Both cut the model's own graph (no layer is copied: the layers and their weights are shared with
the model they came from). A torch path maps to the Keras layer whose output it is through the
spec: a Sequential's output is its last child's, a Residual's its ``post`` activation's (or its sum,
named by its path), everything else the layer named :func:`keras_impl.layer_name` of the path.

>>> from keras_impl import resnet18
>>> backbone = resnet18(weights=None, include_top=False, features_only=True, out_indices=(1, 2))
>>> backbone.feature_info.channels(), [tuple(o.shape) for o in backbone.outputs]
([64, 128], [(None, None, None, 64), (None, None, None, 128)])
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import keras
from keras import layers

import cnnspec
from cnnspec import nodes as n
from cnnspec.features import FeatureLevel

from .builder import layer_name
from .surgery import spec_of


def features_only(
    model: keras.Model, out_indices: int | Sequence[int] | None = None, spec: cnnspec.ModelSpec | None = None
) -> keras.Model:
    """timm's ``features_only=True`` on a built keras_impl model: a functional model (same name,
    layers shared) returning the NHWC maps of the levels ``out_indices`` selects (None: all; an int
    n: the last n; negative indices count from the end), as a list in that order, with
    ``.feature_info`` (cnnspec's FeatureInfo). Each output is the layer of the level's module where
    it has one (``features_3``), else an ``Identity`` named after the module (``layer2``), or, for
    a transformer block's tokens, ``<module>_map`` (the tokens on their grid)."""
    spec = spec or spec_of(model)
    info = cnnspec.feature_info(spec, out_indices)
    names = {layer.name for layer in model.layers}
    outputs = []
    for level in info.selected:
        source = _layer_of(spec, level.module)
        x = model.get_layer(source).output
        if level.tokens:
            x = _tokens_to_map(x, level, model)
        elif source != layer_name(level.module) and layer_name(level.module) not in names:
            x = layers.Identity(name=layer_name(level.module))(x)
        outputs.append(x)
    cut = keras.Model(_inputs(model), outputs, name=model.name)
    cut.feature_info = info
    cut.spec = spec
    return cut


def feature_extractor(model: keras.Model, names: Sequence[str] | str, spec: cnnspec.ModelSpec | None = None):
    """The outputs of ``names`` (torch's module paths: ``"features.3"``, ``"layer2.1"``; a container
    gives its output) as a functional model returning a dict name -> tensor, in the order given
    (Keras' layout: NHWC maps, (N, T, D) tokens). A name the model lacks is one ValueError line
    naming the closest valid name.

    >>> from keras_impl import vgg16
    >>> maps = feature_extractor(vgg16(weights=None), ["features.3", "features.8"])
    >>> {k: tuple(v.shape) for k, v in maps.output.items()}
    {'features.3': (None, 224, 224, 64), 'features.8': (None, 112, 112, 128)}
    """
    names = [names] if isinstance(names, str) else list(names)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"feature_extractor takes a list of module names, received {names!r}")
    spec = spec or spec_of(model)
    valid = valid_names(model, spec)
    outputs = {}
    for name in names:
        if name not in valid:
            closest = difflib.get_close_matches(name, list(valid), n=1) or difflib.get_close_matches(
                name, list(valid), 1, 0.0
            )
            raise ValueError(
                f"{model.name} has no module {name!r}; the closest is {closest[0]!r} "
                "(keras_impl.features.valid_names(model) lists them)"
            )
        outputs[name] = model.get_layer(valid[name]).output
    return keras.Model(_inputs(model), outputs, name=f"{model.name}_features")


def valid_names(model: keras.Model, spec: cnnspec.ModelSpec | None = None) -> dict[str, str]:
    """Every torch module path of ``model`` that has an output in it -> the Keras layer giving it."""
    spec = spec or spec_of(model)
    present = {layer.name for layer in model.layers}
    found = {}
    for path, _ in spec.walk():
        source = _layer_of(spec, path)
        if source is not None and source in present:
            found[path] = source
    return found


def _layer_of(spec: cnnspec.ModelSpec, path: str) -> str | None:
    """The Keras layer whose output the module at ``path`` gives (None: an empty container)."""
    node = spec.node(path)
    if isinstance(node, n.Sequential):
        return _layer_of(spec, f"{path}.{node.children[-1].name}") if node.children else None
    if isinstance(node, n.Residual) and node.post is not None:
        return _layer_of(spec, f"{path}.{node.post.name}")
    return layer_name(path)


def _tokens_to_map(tokens, level: FeatureLevel, model: keras.Model):
    """(N, prefix + rows * cols, D) tokens -> (N, rows, cols, D): the class token dropped, the
    patches (row-major, as PatchTokens laid them out) on their grid, read from the model's input."""
    height, width = model.inputs[0].shape[1:3]
    rows, cols = level.grid
    if height is not None and width is not None:
        rows, cols = height // level.reduction, width // level.reduction
    base = layer_name(level.module)
    x = layers.Cropping1D((level.prefix_tokens, 0), name=f"{base}_patches")(tokens)
    return layers.Reshape((rows, cols, tokens.shape[-1]), name=f"{base}_map")(x)


def _inputs(model: keras.Model):
    """The model's inputs as it was built with them: one tensor, not a list of one."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs
