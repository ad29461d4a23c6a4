"""Loading weights into keras_impl models: our own .weights.h5, keras.applications' VGG16, and the
variables file parity's export children read (:func:`save_variables` / :func:`load_variables`)."""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import keras

import cnnspec
from cnnspec.nodes import Linear

from .builder import build_model, layer_name

PathLike = str | os.PathLike


def load_weights_file(
    model: keras.Model, path: PathLike, name: str | None = None, options: dict[str, Any] | None = None
) -> None:
    """Loads a Keras ``.weights.h5`` file (no code in it, nothing unpickled).

    A file with auxiliary heads (a converted torchvision GoogLeNet) loads into a model built
    without them: the heads' weights are ignored, as torch_impl and torchvision do. ``name`` and
    ``options`` (the spec options the model was built with) make that possible.
    """
    path = Path(path)
    if not path.is_file():
        from cnnspec.published import not_found_hint

        raise FileNotFoundError(f"weights file not found: {path}{not_found_hint(str(path))}")
    if not path.name.endswith(".weights.h5"):
        raise ValueError(
            f"unsupported weights file {path.name!r}: keras_impl loads Keras '.weights.h5' files; "
            "convert a torch checkpoint with `python -m parity convert`"
        )
    with warnings.catch_warnings(record=True) as caught:  # re-emitted only if this first attempt is the answer
        warnings.simplefilter("always")
        try:
            model.load_weights(str(path))
            first_error = None
        except (ValueError, OSError, KeyError) as err:
            first_error = err
    if first_error is None:
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return
    options = dict(options or {})
    if name is not None and cnnspec.get(name).aux_heads and not options.get("aux_logits"):
        twin = build_model(cnnspec.get(name, **{**options, "aux_logits": True}), classifier_activation=None)
        try:
            twin.load_weights(str(path))
        except (ValueError, OSError, KeyError):
            pass  # not a file with aux heads either: report the first error
        else:
            copy_weights_by_name(twin, model, label=str(path))
            return
    reason = keras_load_error(first_error, name or model.name)
    if isinstance(first_error, OSError):  # h5py: not an HDF5 file, or a truncated one
        raise ValueError(f"{path} is not a readable Keras .weights.h5 file: {reason}") from None
    raise ValueError(f"{path} does not fit {model.name}: {reason}") from None


def classifier_layers(model: str | None = None) -> set[str]:
    """The Keras layer names of the classifiers (the main one and each aux head's last Linear) of
    ``model``'s spec, or of every registered spec when ``model`` is not one: read from the spec."""
    names = [model] if model in cnnspec.names() else cnnspec.names()
    found = set()
    for name in names:
        spec = cnnspec.get(name)
        found.add(layer_name(spec.classifier))
        for aux in spec.aux_heads:
            linears = [
                path for path, node in spec.walk() if path.startswith(f"{aux.name}.") and isinstance(node, Linear)
            ]
            found.update(layer_name(path) for path in linears[-1:])
    return found


def keras_load_error(err: BaseException, model: str | None = None) -> str:
    """Keras' load error in one line: which variable, its shape in the file and in the model
    (Keras' own text spans a dozen lines and prints the variable's values); a classifier's
    mismatch (of ``model``'s spec, or any spec's) says how to get another number of classes."""
    text = str(err)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text)
    where = re.search(r"path=([^,\s]+)", text)
    count = re.search(r"A total of (\d+) objects could not be loaded", text)
    if shapes:
        more = f" (and {int(count.group(1)) - 1} more layer(s))" if count and int(count.group(1)) > 1 else ""
        hint = (
            " (another num_classes? build with the file's, then replace the head)"
            if where and where.group(1).split("/")[0] in classifier_layers(model)
            else ""
        )
        return (
            f"{where.group(1) if where else 'a variable'} has shape {shapes.group(2)} in the file, "
            f"{shapes.group(1)} in the model{more}{hint}"
        )
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def copy_weights_by_name(source: keras.Model, target: keras.Model, label: str = "") -> list[str]:
    """Copies every weighted layer of ``target`` from the layer of the same name in ``source``
    (layer names are spec paths, so this works across include_top, aux heads and input sizes).
    Returns the target's layers that ``source`` does not have; a shape mismatch is an error."""
    label = label or source.name
    available = {layer.name: layer for layer in source.layers if layer.weights}
    pairs, missing = [], []
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name not in available:
            missing.append(layer.name)
            continue
        values = available[layer.name].get_weights()
        shapes = [tuple(w.shape) for w in layer.weights]
        if [tuple(v.shape) for v in values] != shapes:
            raise ValueError(
                f"{label}: layer {layer.name} has shapes {[tuple(v.shape) for v in values]}, the model {shapes}"
            )
        pairs.append((layer, values))
    for layer, values in pairs:  # all checked before anything is written
        layer.set_weights(values)
    return missing


def load_keras_applications_vgg16(model: keras.Model, source: keras.Model | PathLike) -> keras.Model:
    """Copies keras.applications.VGG16's weights into keras_impl's ``vgg16``.

    ``source`` is a ``keras.applications.VGG16`` model or a weights file saved from one. Both
    models have the same 16 weighted layers in the same order and both flatten (H, W, C), so the
    weights copy one to one; the classifier must have the same number of classes.
    """
    if not isinstance(source, keras.Model):
        path = Path(source)
        reference = keras.applications.VGG16(weights=None, include_top=True, classes=_classes(model))
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        reference.load_weights(str(path))
        source = reference
    src = [lyr for lyr in source.layers if lyr.weights]
    dst = [lyr for lyr in model.layers if lyr.weights]
    if len(src) != len(dst):
        raise ValueError(
            f"keras.applications model has {len(src)} weighted layers, {model.name} has {len(dst)}: "
            "is this VGG16 with include_top=True?"
        )
    for a, b in zip(src, dst):
        wa, wb = a.get_weights(), b.get_weights()
        shapes_a, shapes_b = [w.shape for w in wa], [w.shape for w in wb]
        if shapes_a != shapes_b:
            raise ValueError(f"layer {a.name} {shapes_a} does not fit {b.name} {shapes_b}")
    for a, b in zip(src, dst):
        b.set_weights(a.get_weights())
    return model


def _classes(model: keras.Model) -> int:
    return int(model.outputs[0].shape[-1])


def config_json(model: keras.Model) -> str:
    """``model.to_json()``, without importing TensorFlow where it is not loaded. Keras' serializer asks
    whether TensorFlow is installed (importing it: 2.3 s in a torch-backend process) to test objects
    for TensorFlow types; in a process that has not loaded TensorFlow, none can be one."""
    from keras.src.utils import module_utils

    probe = module_utils.tensorflow
    if "tensorflow" in sys.modules or getattr(probe, "_available", True) is not None:
        return model.to_json()
    probe._available = False
    try:
        return model.to_json()
    finally:
        probe._available = None


def without_initializers(config: Any) -> Any:
    """A model config (parsed JSON) with every ``*_initializer`` set to zeros, for a rebuild whose
    weights are read next (:func:`load_variables`): drawing VGG19's 143 M random numbers took 0.9 of
    the build's 1.1 s. Parity's export children rebuild their model this way."""
    if isinstance(config, dict):
        return {
            k: (
                {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}
                if k.endswith("_initializer") and isinstance(v, dict) and "class_name" in v
                else without_initializers(v)
            )
            for k, v in config.items()
        }
    if isinstance(config, list):
        return [without_initializers(v) for v in config]
    return config


def save_variables(model: keras.Model, path: str | os.PathLike) -> None:
    """Every variable of a Keras model, in ``model.weights`` order, as one safetensors file (its
    variable paths in the metadata, so :func:`load_variables` can check it rebuilt the same model).
    Faster to write and read than a ``.weights.h5``: VGG19's 575 MB took 2.5 s + 3 s that way."""
    import numpy as np
    from safetensors.numpy import save_file

    arrays = {
        f"{i:05d}": np.ascontiguousarray(np.asarray(v.numpy() if hasattr(v, "numpy") else v))
        for i, v in enumerate(model.weights)
    }
    save_file(arrays, str(path), metadata={"paths": json.dumps([v.path for v in model.weights])})


def load_variables(model: keras.Model, path: str | os.PathLike) -> None:
    """Sets ``model``'s variables from the file :func:`save_variables` wrote (parity's export
    children rebuild the model from its config, then read this)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        paths = json.loads(f.metadata()["paths"])
        if paths != [v.path for v in model.weights]:
            raise ValueError(
                f"{path} holds the weights of another model "
                f"({len(paths)} variables, the model has {len(model.weights)})"
            )
        for i, variable in enumerate(model.weights):
            variable.assign(f.get_tensor(f"{i:05d}"))
