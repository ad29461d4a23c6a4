"""``convert(model, src, dst)``: a torch checkpoint <-> a Keras ``.weights.h5``, written atomically.

The direction follows the file names: ``.pth/.pt/.safetensors -> .weights.h5`` or back. The number
of classes (and GoogLeNet's aux heads) is read from the source, so torchvision's files just work.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cnnspec
import cnnspec.registry
from cnnbase.atomic import atomic_path
from cnnbase.weight_files import TORCH_SUFFIXES

from .copying import transfer_weights

KERAS_SUFFIX = ".weights.h5"
PathLike = str | os.PathLike


def _is_torch_file(path: Path) -> bool:
    return path.suffix.lower() in TORCH_SUFFIXES


def _is_keras_file(path: Path) -> bool:
    return path.name.endswith(KERAS_SUFFIX)


def convert(name: str, src: PathLike, dst: PathLike, num_classes: int | None = None) -> Path:
    """Converts ``src`` into ``dst`` for model ``name``; returns ``dst``."""
    import keras_impl
    import torch_impl

    from ..twins import keras_factory_options, options_from_checkpoint

    src, dst = Path(src), Path(dst)
    cnnspec.registry.builder(name)  # unknown names fail here, with the list of models
    if src.is_dir():
        raise IsADirectoryError(f"source {src} is a folder; expected a weights file")
    if not src.is_file():
        raise FileNotFoundError(f"source file not found: {src}")
    if num_classes is not None:
        cnnspec.get(name, num_classes=num_classes)  # a positive int, or one clear error
    if _is_torch_file(src) and _is_keras_file(dst):
        options = options_from_checkpoint(name, src)
        if (
            num_classes is not None and num_classes != options["num_classes"]
        ):  # the file decides; say so rather than ignore it
            raise ValueError(
                f"{src} has {options['num_classes']} classes, --num-classes says {num_classes}: drop it "
                f"(the classes are read from the checkpoint) or convert the matching file"
            )
        torch_model = torch_impl.get_model(name, weights=src, **options)
        keras_model = keras_impl.get_model(name, classifier_activation=None, **keras_factory_options(options))
        transfer_weights(torch_model, keras_model)
        with atomic_path(dst, suffix=KERAS_SUFFIX) as tmp:
            keras_model.save_weights(str(tmp))
        return dst
    if _is_keras_file(src) and _is_torch_file(dst):
        classes, aux = _h5_classes_and_aux(src, name)
        options = {"num_classes": num_classes or classes}
        if "aux_logits" in cnnspec.options(name):
            options["aux_logits"] = aux
        keras_model = keras_impl.get_model(
            name, classifier_activation=None, weights=src, **keras_factory_options(options)
        )
        torch_model = torch_impl.get_model(name, init_weights=False, **options)
        transfer_weights(keras_model, torch_model)
        torch_impl.save_state_dict(torch_model.state_dict(), dst)
        return dst
    raise ValueError(
        f"cannot convert {src.name!r} -> {dst.name!r}: expected a torch checkpoint ({', '.join(TORCH_SUFFIXES)}) "
        f"and a Keras '{KERAS_SUFFIX}' file, one on each side"
    )


def _h5_classes_and_aux(path: Path, name: str) -> tuple:
    """The classifier's width and whether aux heads are present, from a Keras weights file.

    Keras names the groups by layer class and creation order (``dense``, ``dense_1``, ...); the
    classifier is the last Dense created, and aux heads add two Dense layers each.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            dense = []
            for key in f.get("layers", {}):
                m = re.fullmatch(r"dense(?:_(\d+))?", key)
                if m and "vars" in f["layers"][key] and "0" in f["layers"][key]["vars"]:
                    dense.append((int(m.group(1) or 0), f["layers"][key]["vars"]["0"].shape))
    except OSError as err:
        raise ValueError(f"{path} is not a Keras weights file: {err}") from None
    if not dense:
        raise ValueError(f"{path} has no Dense layers: not a {name} weights file saved by Keras")
    dense.sort()
    spec = cnnspec.get(name)
    n_plain = sum(1 for _, node in spec.parameterised(include_aux=False) if node.kind == "Linear")
    return int(dense[-1][1][-1]), len(dense) > n_plain
