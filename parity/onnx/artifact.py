"""``export(name, framework, out)``: one ONNX file for users who want the artifact."""

from __future__ import annotations

import gc
import os
import sys

from .export import ExportInfo, export_torch, prestart_keras_export, start_export_keras


def prefer_torch_backend() -> None:
    """Has this process build the model it only hands to the export child on Keras' torch backend,
    unless ``KERAS_BACKEND`` names one or Keras is already loaded. The ONNX file is the same on any
    backend (the child rebuilds the model on torch), and torch is loaded here already, while
    TensorFlow would add ~5 s of imports and ~1 GB to a VGG19 export."""
    if "keras" not in sys.modules and not os.environ.get("KERAS_BACKEND"):
        os.environ["KERAS_BACKEND"] = "torch"


def export(
    name: str, framework: str, out, weights=None, size: tuple[int, int] | None = None, seed: int = 0
) -> ExportInfo:
    """Exports ``name`` from ``framework`` ("torch" or "keras") to ``out``.

    ``weights``: a torch checkpoint (either framework: it is transferred for keras), a Keras
    ``.weights.h5`` (keras), or None for seeded random weights.
    """
    from cnnbase.atomic import check_writable

    from ..twins import model_to_export

    check_writable(out, (".onnx",))  # before the export, not after it
    if framework == "keras":
        prestart_keras_export()  # the child imports while this process builds the model
        prefer_torch_backend()
    model = model_to_export(name, framework, weights, size, seed)
    if framework == "torch":
        return export_torch(model, out, size=size)
    import keras

    backend = keras.backend.backend()
    job = start_export_keras(model, out)  # returns once the weights are written for the child
    del model  # this process's copy is no longer needed while the child exports (VGG19: 575 MB)
    gc.collect()
    info = job.wait()
    info.parent_backend = backend
    return info
